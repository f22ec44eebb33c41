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
from ccg_pipeline.warehouse.schema import AUDIT_TABLES, STAGING, STATISTICS, frozen_periods

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


PROFILE_TABLES = ((STATISTICS, "customer_profiles"), (STAGING, "build_customer_profiles"))


def upgrade() -> None:
    bind = op.get_bind()
    create_tables(bind, AUDIT_TABLES)
    bind.execute(sa.delete(frozen_periods))
    for schema, table in PROFILE_TABLES:
        columns = {c["name"] for c in sa.inspect(bind).get_columns(table, schema=schema)}
        if "status" in columns:  # a fresh warehouse never had it (0004 uses today's definition)
            op.drop_column(table, "status", schema=schema)


def downgrade() -> None:
    for schema, table in PROFILE_TABLES:
        op.add_column(table, sa.Column("status", sa.Text), schema=schema)
    drop_tables(op.get_bind(), AUDIT_TABLES)
