"""Migrations: dialect-neutral, idempotent, and matching the table definitions."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from consumers.database import Database, migrate
from consumers.tables import Base


def test_migrations_match_the_tables(any_db: Database) -> None:
    """After `migrate`, Alembic finds no difference between the database and the models."""
    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrate_twice_is_harmless(any_db: Database) -> None:
    """Migrating an up-to-date database changes nothing."""
    migrate(any_db.url)
    with any_db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0003"
