"""Versioned, idempotent schema creation with Alembic (`ccg db upgrade`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def migrated(url: str) -> Iterator[Engine]:
    """An engine on the warehouse at `url`, brought to the newest revision, disposed after use:
    how every job (DAG task or command) opens the warehouse."""
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    engine = create_warehouse_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


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
