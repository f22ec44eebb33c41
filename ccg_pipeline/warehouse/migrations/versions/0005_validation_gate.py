"""Validation gate: per-expectation outcomes of every statistics run (`ops.validation_results`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "validation_results",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("expectation", sa.Text(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("unexpected_count", sa.BigInteger(), nullable=True),
        sa.Column("observed_value", sa.Float(), nullable=True),
        sa.Column("raised_error", sa.Boolean(), nullable=False),
        sa.Column("suite_version", sa.Text(), nullable=False),
        sa.Column("validated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "table_name", "position"),
        schema="ops",
        comment="The validation gate's outcome per statistics run, table and expectation (position in the suite): counts and measured sizes only, never a value. Migration 0005.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
