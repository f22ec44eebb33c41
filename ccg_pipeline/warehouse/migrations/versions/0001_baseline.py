"""Baseline: the personal and ops tables of the foundation.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import BASELINE_TABLES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), BASELINE_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), BASELINE_TABLES)
