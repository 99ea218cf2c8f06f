"""Alembic environment: one metadata (crm.db.Base), URL from crossdesk settings unless given."""
from __future__ import annotations

from alembic import context

from crm.config import get_settings
from crm.db import Base, import_all_models, make_engine

import_all_models()
target_metadata = Base.metadata
url = context.config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = context.config.attributes.get("connection")
    connectable = given or make_engine(url)
    if hasattr(connectable, "connect"):
        try:
            with connectable.connect() as connection:
                _run(connection)
        finally:
            if given is None:  # our own engine: don't leave its pooled connection open
                connectable.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode recreates tables when needed.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
