"""The release audit: per run and table, how narrowly an attacker can bound a cell.

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
from ccg_pipeline.warehouse.schema import AUDIT_TABLES, frozen_periods

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(op.get_bind(), AUDIT_TABLES)
    op.get_bind().execute(sa.delete(frozen_periods))


def downgrade() -> None:
    drop_tables(op.get_bind(), AUDIT_TABLES)
