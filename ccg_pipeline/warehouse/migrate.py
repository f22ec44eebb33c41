"""Versioned, idempotent schema creation with Alembic (`ccg db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE_SCHEMA = "ops"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the warehouse to `revision`; a no-op when it is already there. Returns the revision."""
    command.upgrade(_config(engine), revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table_schema": VERSION_TABLE_SCHEMA}
        )
        return context.get_current_revision()


def create_tables(bind, tables) -> None:
    """Create the tables a migration introduces (idempotent: existing tables are left alone)."""
    for table in tables:
        table.create(bind, checkfirst=True)


def drop_tables(bind, tables) -> None:
    for table in reversed(tables):
        table.drop(bind, checkfirst=True)
