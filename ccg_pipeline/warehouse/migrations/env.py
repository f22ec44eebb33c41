"""Alembic environment: runs migrations on the engine handed over by `migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.schema import ZONES, metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    # Zones must exist before Alembic creates its version table in `ops`.
    backend_of(engine).create_zones(connection, ZONES)
    connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema="ops",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
