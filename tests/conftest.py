"""Shared database fixtures: every CRM test runs on SQLite and on PostgreSQL.

- ``db_url`` is parametrized over ``sqlite`` and ``postgresql`` and hands out an empty, fully migrated
  database (Alembic, not ``create_all``, so the migrations themselves are exercised).
- SQLite: the schema is migrated once per session into a template file, each test gets a fresh copy in
  its own ``tmp_path``.
- PostgreSQL (``CROSSDESK_TEST_PG_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``):
  a private schema per test session (so a concurrent run against the same database cannot interfere),
  migrated once; every test starts from ``TRUNCATE ... RESTART IDENTITY CASCADE``. The schema is dropped
  at the end of the session. If PostgreSQL is unreachable the PostgreSQL params FAIL (they never skip).
- ``session`` is a plain ``sqlalchemy.orm.Session`` on ``db_url``; its engine is disposed at teardown.
"""
from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

PG_BASE_URL = os.environ.get("CROSSDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _all_table_names() -> list[str]:
    from crm.db import Base, import_all_models

    import_all_models()
    return [t.name for t in Base.metadata.sorted_tables]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> str:
    from crm.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def _pg_schema_url() -> Iterator[str]:
    """A private, migrated schema for this test session; dropped afterwards."""
    from crm.db import make_engine
    from crm.migrate import upgrade

    schema = f"crossdesk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_BASE_URL)
    try:
        # No try/except around this: an unreachable PostgreSQL must fail the PostgreSQL params.
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(PG_BASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        url_str = url.render_as_string(hide_password=False)
        upgrade(url_str)
        yield url_str
    finally:
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()


def _truncate_pg(url: str) -> None:
    from crm.db import make_engine

    tables = ", ".join(f'"{name}"' for name in _all_table_names())
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database at the latest schema (fresh per test)."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "crossdesk.db"
        src, dst = sqlite3.connect(template), sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_pg_schema_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def session(db_url) -> Iterator[Session]:
    from crm.db import make_engine

    engine = make_engine(db_url)
    sess = Session(engine)
    try:
        yield sess
    finally:
        sess.close()
        engine.dispose()


@pytest.fixture(scope="session")
def model():
    """The trained Rasa model (trained once per change of data/config/domain, then cached)."""
    from bot.stack import ensure_model

    return ensure_model()


@pytest.fixture
def app_db(db_url, monkeypatch):
    """Point the app's settings and crm.db.unit_of_work() at the per-test database (in-process app tests)."""
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
