"""Attempt counters and lockouts for anything an attacker may try repeatedly (verification, login)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, UTCDateTime


class AttemptCounter(Base):
    """Attempts of one (scope, key) in one fixed window. Incremented with one atomic upsert, so parallel
    attempts each see a distinct count and no more than the limit get through."""

    __tablename__ = "attempt_counters"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. verify:contact, login:client
    key: Mapped[str] = mapped_column(String(128), primary_key=True)  # hashed when it is personal data
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # window start, seconds since epoch
    count: Mapped[int] = mapped_column(default=0)


class Lockout(Base):
    """A (scope, key) over its limit: locked until `locked_until`; each new strike doubles the lock."""

    __tablename__ = "attempt_lockouts"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    strikes: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    last_strike_at: Mapped[datetime] = mapped_column(UTCDateTime)
