"""Retention: legal holds, marketing suppression, sweep worklist and checks, anonymised staging.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import RETENTION_TABLES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), RETENTION_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), RETENTION_TABLES)
