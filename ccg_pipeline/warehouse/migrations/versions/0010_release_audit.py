"""The release audit: per run and table, how narrowly an attacker can bound a cell; the class
counts of every customer_profiles snapshot (ops.profile_margins), which the audit adds up.

customer_profiles now holds only the customers on its quarter's last day, so its `status`
column goes (two snapshots with ceased records in them would give each class's exact leavers).

Also empties `statistics.frozen_periods`, once: periods frozen before cell-key perturbation were
published exact, and carrying them on would keep exact figures (and the stock-flow identity
between them) in every release for good. The next release recomputes every closed period with
the perturbation and freezes it again; the one-off change is in the README ("Disclosure
control"). Downgrading does not bring the old ledger back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "release_audits",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column(
            "cells_checked", sa.Integer(), nullable=False, comment="Cells and derived flows."
        ),
        sa.Column(
            "narrowest_width",
            sa.Float(),
            nullable=True,
            comment="Narrowest attacker interval; NULL if none.",
        ),
        sa.Column(
            "protection_width", sa.Float(), nullable=False, comment="Policy's minimum width."
        ),
        sa.Column("cells_below_protection", sa.Integer(), nullable=False),
        sa.Column(
            "hidden_cells", sa.Integer(), nullable=False, comment="Suppressed cells checked."
        ),
        sa.Column("lp_solves", sa.Integer(), nullable=False),
        sa.Column(
            "inconsistent_components",
            sa.Integer(),
            nullable=False,
            comment="Groups of cells no true values within the noise bounds reconcile (fails).",
        ),
        sa.Column(
            "relaxed_components",
            sa.Integer(),
            nullable=False,
            comment="Groups reconciled only without the identities between periods frozen apart.",
        ),
        sa.Column(
            "sum_protection_share",
            sa.Float(),
            nullable=True,
            comment="Least noise share of a sum's top value.",
        ),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "table_name"),
        schema="ops",
        comment="The release audit per statistics run and table (validation/release_audit.py): how narrowly an attacker holding every release can bound any hidden or perturbed cell. Counts and widths only, never a value.",
    ),
    sa.Table(
        "profile_margins",
        metadata,
        sa.Column("quarter", sa.Text(), nullable=False, comment="Quarter the snapshot describes."),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("sector", sa.Text(), nullable=False),
        sa.Column("customer_since", sa.Text(), nullable=False),
        sa.Column(
            "records", sa.Integer(), nullable=False, comment="Published records in the class."
        ),
        sa.Column(
            "records_suppressed", sa.Integer(), nullable=False, comment="Of the whole snapshot."
        ),
        sa.Column(
            "snapshot_as_of", sa.Date(), nullable=False, comment="As-of date of the release."
        ),
        sa.PrimaryKeyConstraint("quarter", "region", "sector", "customer_since"),
        schema="ops",
        comment="Record counts of every customer_profiles snapshot ever published, by the columns it shares with customers_by_quarter: what an attacker who kept the old snapshots can add up, so that the release audit (validation/release_audit.py) can too. Counts of published records only.",
    ),
)


PROFILE_TABLES = (("statistics", "customer_profiles"), ("staging", "build_customer_profiles"))


def upgrade() -> None:
    bind = op.get_bind()
    create_tables(bind, TABLES)
    bind.execute(sa.delete(sa.table("frozen_periods", schema="statistics")))
    for schema, table in PROFILE_TABLES:
        columns = {c["name"] for c in sa.inspect(bind).get_columns(table, schema=schema)}
        if "status" in columns:  # 0004 created it
            op.drop_column(table, "status", schema=schema)


def downgrade() -> None:
    for schema, table in PROFILE_TABLES:
        op.add_column(table, sa.Column("status", sa.Text), schema=schema)
    drop_tables(op.get_bind(), TABLES)
