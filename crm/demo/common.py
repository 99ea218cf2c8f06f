"""What every part of the demo seed shares: the seeded clock, the seed's error, time-zone and text helpers."""
from __future__ import annotations

import random
import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
AS_OF_UTC = time(15, 0)  # the seeded "now" on the anchor day


class SeedError(RuntimeError):
    """The target database is not empty (or the arguments cannot produce a sensible shop)."""


def seed_clock(anchor: date) -> datetime:
    """The instant the seeded data treats as "now" (nothing is dated later)."""
    return datetime.combine(anchor, AS_OF_UTC, UTC)


def live_anchor(now: datetime) -> date:
    """The latest anchor whose seed clock is not in the future, so a live demo never shows future events."""
    anchor = now.astimezone(UTC).date()
    return anchor if seed_clock(anchor) <= now else anchor - timedelta(days=1)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch in ".-")


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------

_TZ: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    if name not in _TZ:
        _TZ[name] = ZoneInfo(name)
    return _TZ[name]


def _local_window(t: datetime, tz: str, start_h: int, end_h: int, rng: random.Random,
                  no_sunday: bool = False) -> datetime:
    """Move ``t`` forward into [start_h, end_h) local time of ``tz`` (optionally never on Sunday)."""
    loc = t.astimezone(_zone(tz))
    day = loc.date()
    if loc.hour >= end_h:
        day += timedelta(days=1)
        loc = None
    elif loc.hour < start_h:
        loc = None
    while no_sunday and day.weekday() == 6:
        day += timedelta(days=1)
        loc = None
    if loc is None:
        minutes = rng.randint(0, max(1, (end_h - start_h) * 60 // 3))
        loc = datetime.combine(day, time(start_h), _zone(tz)) + timedelta(minutes=minutes)
    return loc.astimezone(UTC)


def _hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(minutes=rng.randint(int(lo * 60), int(hi * 60)))
