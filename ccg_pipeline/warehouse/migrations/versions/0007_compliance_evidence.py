"""Compliance evidence: per-clause outcomes of every evidence run and the stored reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import EVIDENCE_TABLES

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), EVIDENCE_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), EVIDENCE_TABLES)
