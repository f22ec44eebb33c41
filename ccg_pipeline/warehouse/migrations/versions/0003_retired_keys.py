"""Retired keys, and a count of rows ingest skipped because retention had retired them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "retired_keys",
        metadata,
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("retired_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "key"),
        schema="personal",
        comment="Source keys retention retired: ingest does not bring an unchanged row back (which would also count its anonymised value twice).",
    ),
)


def upgrade() -> None:
    bind = op.get_bind()
    create_tables(bind, TABLES)
    columns = {c["name"] for c in sa.inspect(bind).get_columns("ingest_batches", schema="ops")}
    if "rows_retired" not in columns:  # a fresh warehouse already has it from the baseline
        op.add_column(
            "ingest_batches",
            sa.Column("rows_retired", sa.Integer, nullable=False, server_default="0"),
            schema="ops",
        )


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
    op.drop_column("ingest_batches", "rows_retired", schema="ops")
