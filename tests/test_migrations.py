"""The Alembic migrations build exactly the schema the models describe (on SQLite and PostgreSQL): a column,
index or constraint added to a model without a migration — or the other way round — fails here."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm.db import Base, import_all_models, make_engine


def test_migrated_schema_matches_the_models(db_url):
    import_all_models()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
