"""Purpose limitation (N-BASIS): what each run of a declared processing read, per run and
processing (`ops.purpose_checks`). Names and counts only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The table as this revision created it, frozen here (see 0010).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "purpose_checks",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("processing_id", sa.Text(), nullable=False, comment="A declared processing."),
        sa.Column("purpose", sa.Text(), nullable=False, comment="Its notice processing activity."),
        sa.Column("basis", sa.Text(), nullable=False, comment="The lawful basis it relies on."),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False, comment="SQL statements inspected."),
        sa.Column(
            "columns_read",
            sa.Text(),
            nullable=False,
            comment="Personal columns the statements referenced (zone.table.column, "
            "comma-separated).",
        ),
        sa.Column(
            "subjects_excluded",
            sa.Integer(),
            nullable=True,
            comment="People left out for the basis (objections, or no consent); NULL on a "
            "violation.",
        ),
        sa.Column(
            "violation",
            sa.Text(),
            nullable=True,
            comment="What it read beyond its purpose; NULL if nothing.",
        ),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "processing_id"),
        schema="ops",
        comment="Purpose limitation per run and processing (ccg_pipeline/purposes.py, N-BASIS): "
        "column names and counts, never a value.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
