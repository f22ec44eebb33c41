"""Closed periods of the published statistics are frozen: the ledger of final periods.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import FREEZE_TABLES

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), FREEZE_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), FREEZE_TABLES)
