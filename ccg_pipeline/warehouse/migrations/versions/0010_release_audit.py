"""The release audit: per run and table, how narrowly an attacker can bound a cell.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import AUDIT_TABLES

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), AUDIT_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), AUDIT_TABLES)
