"""Runtime settings, read from the environment once.

Embedded defaults (SQLite file, no Redis) let a newcomer run everything with nothing installed;
DATABASE_URL / REDIS_URL switch to PostgreSQL and Redis without code changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Where runtime files live (SQLite db, logs, generated Rasa endpoints); outside git's view."""
    path = Path(os.environ.get("CROSSDESK_HOME", REPO_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    rasa_url: str
    verification_ttl_minutes: int = 120
    verification_max_attempts_per_conversation: int = 5
    verification_max_attempts_per_order: int = 10
    verification_window_minutes: int = 60
    handoff_expected_wait_minutes: int = 15
    max_message_chars: int = 4000
    sender_rate_limit: int = 30  # messages per sender per window; a human types far fewer
    sender_rate_window_s: int = 60


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{state_dir() / 'crossdesk.db'}",
        redis_url=os.environ.get("REDIS_URL") or None,
        rasa_url=os.environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
        sender_rate_limit=int(os.environ.get("CROSSDESK_SENDER_RATE_LIMIT", "30")),
        sender_rate_window_s=int(os.environ.get("CROSSDESK_SENDER_RATE_WINDOW", "60")),
    )
