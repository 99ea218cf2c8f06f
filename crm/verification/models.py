"""Proof that a conversation belongs to an order's owner, and the attempts made to get it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, UTCDateTime, utcnow


class VerificationAttempt(Base):
    """Every attempt, kept for rate limiting and audit. The contact itself is never stored."""

    __tablename__ = "verification_attempts"
    __table_args__ = (
        Index("ix_verif_attempt_conv_time", "conversation_key", "created_at"),
        Index("ix_verif_attempt_order_time", "order_number", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_key: Mapped[str] = mapped_column(String(240))
    order_number: Mapped[str] = mapped_column(String(32))
    succeeded: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VerifiedOrder(Base):
    """A grant: this conversation may see this order until expires_at."""

    __tablename__ = "verified_orders"
    __table_args__ = (Index("ix_verified_conv_order", "conversation_key", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_key: Mapped[str] = mapped_column(String(240))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))  # email | phone | identity
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
