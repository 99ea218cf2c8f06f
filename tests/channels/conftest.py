"""Point the app's settings and engine at a test database for in-process channel-core tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def app_db(db_url, monkeypatch):
    """Make crm.db.unit_of_work() (used by the channel core) use the per-test database."""
    from crm import config, db

    monkeypatch.setenv("DATABASE_URL", db_url)
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db._session_factory.cache_clear()
    yield db_url
    for engine_fn in (db.get_engine,):
        try:
            engine_fn().dispose()
        except Exception:
            pass
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db._session_factory.cache_clear()
