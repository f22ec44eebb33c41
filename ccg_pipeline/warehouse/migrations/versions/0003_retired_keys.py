"""Retired keys, and a count of rows ingest skipped because retention had retired them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import retired_keys

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    create_tables(bind, (retired_keys,))
    columns = {c["name"] for c in sa.inspect(bind).get_columns("ingest_batches", schema="ops")}
    if "rows_retired" not in columns:  # a fresh warehouse already has it from the baseline
        op.add_column(
            "ingest_batches",
            sa.Column("rows_retired", sa.Integer, nullable=False, server_default="0"),
            schema="ops",
        )


def downgrade() -> None:
    drop_tables(op.get_bind(), (retired_keys,))
    op.drop_column("ingest_batches", "rows_retired", schema="ops")
