"""Baseline: the personal and ops tables of the foundation.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

from ccg_pipeline.warehouse.schema import BASELINE_TABLES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in BASELINE_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(BASELINE_TABLES):
        table.drop(bind, checkfirst=True)
