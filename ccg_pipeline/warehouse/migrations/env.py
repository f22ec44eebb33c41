"""Alembic environment: runs migrations on the engine handed over by `migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from ccg_pipeline.warehouse.engine import is_sqlite
from ccg_pipeline.warehouse.schema import ZONES, metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    if not is_sqlite(engine):
        # Schemas must exist before Alembic creates its version table in `ops`.
        for zone in ZONES:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {zone}")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema="ops",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
