"""Closed periods of the published statistics are frozen: the ledger of final periods.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "frozen_periods",
        metadata,
        sa.Column("table_name", sa.Text(), nullable=False, comment="Published table."),
        sa.Column(
            "period", sa.Text(), nullable=False, comment="Its period (day, month or quarter)."
        ),
        sa.Column("frozen_as_of", sa.Date(), nullable=False, comment="As-of date of the release."),
        sa.Column("run_id", sa.Text(), nullable=False, comment="Run that first published it."),
        sa.PrimaryKeyConstraint("table_name", "period"),
        schema="statistics",
        comment="Periods whose figures are final: once a closed period is published, its rows are published unchanged in every later release, whatever happens to the people behind them (erasure, restriction, objection, retention). Periods not listed here are not published.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
