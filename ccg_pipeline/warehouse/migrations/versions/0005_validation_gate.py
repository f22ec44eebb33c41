"""Validation gate: per-expectation outcomes of every statistics run (`ops.validation_results`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import VALIDATION_TABLES

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), VALIDATION_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), VALIDATION_TABLES)
