"""Attempt limits that parallel requests cannot slip past, with doubling lockouts.

Every attempt is counted *before* it is checked, with one atomic upsert (INSERT … ON CONFLICT DO UPDATE …
RETURNING count): two attempts at the same moment get two different counts, so at most `max_attempts`
of them proceed. A success gives its attempt back (`refund`), so only failures stay counted. Going over
the limit is a strike: the key is locked for base × 2^(strikes-1), up to the scope's cap; strikes are
forgotten after a quiet day. Keys that are personal data (an email, a phone) are stored as hashes.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm.db import dialect_insert
from crm.limits.models import AttemptCounter, Lockout

log = logging.getLogger("crossdesk.limits")
STRIKE_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    scope: str
    max_attempts: int
    window_s: int
    lockout_base_s: int
    lockout_cap_s: int


@dataclass(frozen=True)
class Check:
    allowed: bool
    blocked_by: tuple[str, ...] = ()  # scopes that refused
    retry_after_s: int = 0


def hashed(value: str) -> str:
    """A stable key for personal data (emails, phones, IPs): the counter table never holds the value."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:40]


def _window(now: datetime, window_s: int) -> int:
    ts = int(now.timestamp())
    return ts - ts % window_s


def _increment(session: Session, scope: str, key: str, window: int, by: int = 1) -> int:
    table = AttemptCounter.__table__
    stmt = dialect_insert(session)(table).values(scope=scope, key=key, window=window, count=by)
    stmt = stmt.on_conflict_do_update(index_elements=["scope", "key", "window"],
                                      set_={"count": table.c.count + by}).returning(table.c.count)
    return int(session.execute(stmt).scalar_one())


def _locked_until(session: Session, scope: str, key: str) -> datetime | None:
    return session.scalar(select(Lockout.locked_until).where(Lockout.scope == scope, Lockout.key == key))


def _strike(session: Session, limit: Limit, key: str, now: datetime) -> datetime:
    table = Lockout.__table__
    session.execute(update(Lockout).where(Lockout.scope == limit.scope, Lockout.key == key,
                                          Lockout.last_strike_at < now - STRIKE_MEMORY).values(strikes=0))
    stmt = dialect_insert(session)(table).values(scope=limit.scope, key=key, strikes=1, locked_until=now,
                                          last_strike_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["scope", "key"],
                                      set_={"strikes": table.c.strikes + 1, "last_strike_at": now}) \
        .returning(table.c.strikes)
    strikes = int(session.execute(stmt).scalar_one())
    seconds = min(limit.lockout_cap_s, limit.lockout_base_s * 2 ** min(strikes - 1, 30))
    until = now + timedelta(seconds=seconds)
    session.execute(update(Lockout).where(Lockout.scope == limit.scope, Lockout.key == key)
                    .values(locked_until=until))
    log.warning("limit %s reached for a key (strike %d): locked for %d s", limit.scope, strikes, seconds)
    return until


def attempt(session: Session, subjects: Iterable[tuple[Limit, str]], now: datetime) -> Check:
    """Count one attempt against every (limit, key) and say whether it may proceed."""
    blocked: list[str] = []
    retry_after = 0
    for limit, key in subjects:
        if not key:
            continue
        until = _locked_until(session, limit.scope, key)
        if until is not None and until > now:
            blocked.append(limit.scope)
            retry_after = max(retry_after, int((until - now).total_seconds()) + 1)
            continue
        count = _increment(session, limit.scope, key, _window(now, limit.window_s))
        if count > limit.max_attempts:
            if count == limit.max_attempts + 1:  # exactly one attempt strikes, however many run at once
                until = _strike(session, limit, key, now)
            else:
                until = _locked_until(session, limit.scope, key) or now
            blocked.append(limit.scope)
            retry_after = max(retry_after, int((until - now).total_seconds()) + 1)
    return Check(not blocked, tuple(blocked), retry_after)


def refund(session: Session, subjects: Iterable[tuple[Limit, str]], now: datetime) -> None:
    """A successful attempt is not held against anyone: give its count back."""
    for limit, key in subjects:
        if key:
            session.execute(update(AttemptCounter).where(
                AttemptCounter.scope == limit.scope, AttemptCounter.key == key,
                AttemptCounter.window == _window(now, limit.window_s), AttemptCounter.count > 0)
                .values(count=AttemptCounter.count - 1))


def count(session: Session, scope: str, key: str, window_s: int, now: datetime) -> int:
    """How many attempts the key made in the current window (for reports and tests)."""
    return session.scalar(select(AttemptCounter.count).where(
        AttemptCounter.scope == scope, AttemptCounter.key == key,
        AttemptCounter.window == _window(now, window_s))) or 0


def tally(session: Session, scope: str, key: str, window_s: int, now: datetime) -> int:
    """Count one event that limits nothing by itself (e.g. all failures, for the global alarm)."""
    return _increment(session, scope, key, _window(now, window_s))
