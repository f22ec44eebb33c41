"""Subject requests: intake and clock columns on ops.subject_requests, request payloads (personal
zone), erasure tombstones, the CRM outbox and objections to legitimate-interest processing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables
from ccg_pipeline.warehouse.schema import REQUEST_TABLES, ingest_batches, subject_requests

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ADDED = (
    "email_masked",
    "source",
    "source_ref",
    "dedup_key",
    "scope",
    "first_due_on",
    "extension_months",
    "extension_reason",
    "extended_on",
    "outcome",
    "updated_at",
)


def upgrade() -> None:
    bind = op.get_bind()
    present = {c["name"] for c in sa.inspect(bind).get_columns("subject_requests", schema="ops")}
    for name in ADDED:
        if name not in present:  # a fresh warehouse has them from 0004's current definition
            column = subject_requests.c[name]
            op.add_column("subject_requests", sa.Column(name, column.type), schema="ops")
    batches = {c["name"] for c in sa.inspect(bind).get_columns("ingest_batches", schema="ops")}
    if "rows_erased" not in batches:
        op.add_column("ingest_batches", ingest_batches.c.rows_erased._copy(), schema="ops")
    create_tables(bind, REQUEST_TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), REQUEST_TABLES)
    op.drop_column("ingest_batches", "rows_erased", schema="ops")
    for name in reversed(ADDED):
        op.drop_column("subject_requests", name, schema="ops")
