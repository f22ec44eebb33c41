"""Statistics zone: published tables and their staging builds, subject requests (counts for
statistics), and the richer keys the aggregates need (browser and region of web traffic, start
quarter of retired customers, service of retired invoices).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.statistics.access import ensure_analyst_role
from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import (
    STATISTICS_TABLES,
    anon_customers,
    anon_invoices,
    anon_web_traffic,
    web_access,
)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _columns(bind: sa.Connection, table: sa.Table) -> set[str]:
    return {c["name"] for c in sa.inspect(bind).get_columns(table.name, schema=table.schema)}


def _rekey(bind: sa.Connection, table: sa.Table) -> None:
    """Rebuild a staging roll-up whose primary key gained columns: copy the rows into the new
    shape (new key columns take their defaults), then swap names. A no-op when already new."""
    old = _columns(bind, table)
    if old >= {c.name for c in table.columns}:
        return
    temporary = table.to_metadata(sa.MetaData(), name=f"{table.name}_0004")
    temporary.create(bind)
    shared = [c.name for c in table.columns if c.name in old]
    bind.execute(
        sa.insert(temporary).from_select(
            shared,
            sa.select(*(sa.column(c) for c in shared)).select_from(
                sa.table(table.name, schema=table.schema)
            ),
        )
    )
    bind.execute(sa.text(f"DROP TABLE {table.schema}.{table.name}"))
    bind.execute(sa.text(f"ALTER TABLE {table.schema}.{temporary.name} RENAME TO {table.name}"))


def upgrade() -> None:
    bind = op.get_bind()
    present = _columns(bind, web_access)
    for name in ("browser_family", "visitor_region"):
        if name not in present:
            op.add_column("web_access", web_access.c[name]._copy(), schema="personal")
    for table in (anon_web_traffic, anon_customers, anon_invoices):
        _rekey(bind, table)
    create_tables(bind, STATISTICS_TABLES)
    ensure_analyst_role(bind)


def downgrade() -> None:
    drop_tables(op.get_bind(), STATISTICS_TABLES)
