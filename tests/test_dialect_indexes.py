"""Indexes with options of one database (portal.db.dialect_index): the models name them
without SQLAlchemy's PostgreSQL dialect, and the tables created from the models still get
them on each database (the test database is built with ``metadata.create_all``)."""

from __future__ import annotations

import sqlalchemy as sa

from portal.db import make_engine
from portal.models import load_all_models

PARTIAL = {  # index: what its WHERE names (PostgreSQL writes it with more brackets)
    "ix_outbox_emails_unsent": ("sent_at IS NULL", "failed_at IS NULL"),
    "ix_payments_pending": ("state", "'pending'"),
}


def _definitions(database_url: str) -> dict[str, str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                rows = conn.execute(
                    sa.text(
                        "SELECT indexname, indexdef FROM pg_indexes"
                        " WHERE schemaname = current_schema()"
                    )
                )
            else:
                rows = conn.execute(
                    sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
                )
            return {name: sql or "" for name, sql in rows}
    finally:
        engine.dispose()


def test_created_tables_get_each_databases_index_options(database_url):
    definitions = _definitions(database_url)
    for name, parts in PARTIAL.items():
        condition = definitions[name].partition(" WHERE ")[2]
        assert condition and all(part in condition for part in parts), definitions[name]
    search = definitions["ix_people_search_key"]
    if database_url.startswith("postgresql"):
        assert "USING gin (search_key gin_trgm_ops)" in search
    else:
        assert search == "CREATE INDEX ix_people_search_key ON people (search_key)"


def test_the_models_keep_the_options_aside_until_a_table_is_created():
    indexes = {ix.name: ix for table in load_all_models().tables.values() for ix in table.indexes}
    options = indexes["ix_people_search_key"].info["dialect_options"]
    assert options == {"postgresql": {"using": "gin", "ops": {"search_key": "gin_trgm_ops"}}}
    assert set(indexes["ix_payments_pending"].info["dialect_options"]) == {"sqlite", "postgresql"}
