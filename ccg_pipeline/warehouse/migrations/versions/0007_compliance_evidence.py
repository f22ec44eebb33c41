"""Compliance evidence: per-clause outcomes of every evidence run and the stored reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "clause_evidence",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("clause", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column(
            "figures", sa.Text(), nullable=False, comment="The check's figures (JSON, counts)."
        ),
        sa.Column("findings", sa.Text(), server_default="[]", nullable=False, comment="JSON list."),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "clause"),
        schema="ops",
        comment="Per evidence run and notice clause: pass or fail with its figures (counts only).",
    ),
    sa.Table(
        "evidence_reports",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("clauses_checked", sa.Integer(), nullable=False),
        sa.Column(
            "clauses_failed",
            sa.Text(),
            nullable=False,
            comment="Failed clause ids, comma-separated.",
        ),
        sa.Column(
            "report_file",
            sa.Text(),
            nullable=True,
            comment="The stored report (HTML), under $CCG_HOME/evidence.",
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
        schema="ops",
        comment="One row per evidence run: the clause-by-clause report an auditor is handed.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
