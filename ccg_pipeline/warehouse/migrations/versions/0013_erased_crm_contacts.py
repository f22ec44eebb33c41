"""Erased people's CRM record ids, as keyed hashes (`ops.erased_crm_contacts`): a CRM activity
carries its contact's record id but no address, so the erasure tombstone (a hash of the address)
cannot stop it; this list does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The table as this revision created it, frozen here (see 0010).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "erased_crm_contacts",
        metadata,
        sa.Column("contact_key", sa.String(64), primary_key=True),
        sa.Column("subject_key", sa.String(64), nullable=False, index=True),
        sa.Column("noted_at", sa.DateTime(), nullable=False),
        schema="ops",
        comment="Keyed hashes of the CRM record ids of erased people (from the erasure, and from "
        "any later export that still holds them): ingest skips their activities, which carry the "
        "record id but no address.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
