"""Subject requests: intake and clock columns on ops.subject_requests, request payloads (personal
zone), erasure tombstones, the CRM outbox and objections to legitimate-interest processing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "request_payloads",
        metadata,
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
        schema="personal",
        comment="The requester's email and request details (corrections, export name), kept in the personal zone only until the request is closed (migration 0006).",
    ),
    sa.Table(
        "erasure_tombstones",
        metadata,
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_in_crm_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subject_key"),
        schema="ops",
        comment="Keyed hashes of erased people: ingest skips their rows, so a re-ingest of the same sources does not bring them back; last_seen_in_crm_at tracks the CRM erasure.",
    ),
    sa.Table(
        "crm_outbox",
        metadata,
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("instruction", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
        schema="ops",
        comment="Erasure instructions for the CRM (a file per request in the outbox folder), open until a CRM export taken afterwards no longer holds the subject.",
    ),
    sa.Table(
        "processing_objections",
        metadata,
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_key", "scope"),
        schema="ops",
        comment="Objections to legitimate-interest processing: the subject is left out of it (statistics).",
    ),
)

# The columns ops.subject_requests gains, as defined at this revision.
ADDED = (
    sa.Column("email_masked", sa.Text, comment="For operators: `an***@ex***.se`."),
    sa.Column("source", sa.String(16), comment="cli or drop_folder."),
    sa.Column(
        "source_ref", sa.Text, comment="Drop-folder file name (a re-read file is a duplicate)."
    ),
    sa.Column("dedup_key", sa.String(64), comment="Keyed hash of type, subject, payload."),
    sa.Column("scope", sa.String(24), comment="Objections: marketing or legitimate_interest."),
    sa.Column("first_due_on", sa.Date, comment="Due date before any extension."),
    sa.Column("extension_months", sa.Integer),
    sa.Column("extension_reason", sa.Text),
    sa.Column(
        "extended_on", sa.Date, comment="When the extension was decided and the subject told."
    ),
    sa.Column("outcome", sa.Text, comment="What was done, in counts (JSON)."),
    sa.Column("updated_at", sa.DateTime),
)
DEDUP_INDEX = "ix_ops_subject_requests_dedup_key"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = {c["name"] for c in inspector.get_columns("subject_requests", schema="ops")}
    for column in ADDED:
        if column.name not in present:  # a warehouse made before the freeze already has them
            op.add_column("subject_requests", column._copy(), schema="ops")
    indexes = {i["name"] for i in inspector.get_indexes("subject_requests", schema="ops")}
    if DEDUP_INDEX not in indexes:
        op.create_index(DEDUP_INDEX, "subject_requests", ["dedup_key"], schema="ops")
    batches = {c["name"] for c in inspector.get_columns("ingest_batches", schema="ops")}
    if "rows_erased" not in batches:
        op.add_column(
            "ingest_batches",
            sa.Column("rows_erased", sa.Integer, nullable=False, server_default="0"),
            schema="ops",
        )
    create_tables(bind, TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
    op.drop_column("ingest_batches", "rows_erased", schema="ops")
    op.drop_index(DEDUP_INDEX, table_name="subject_requests", schema="ops")
    for column in reversed(ADDED):
        op.drop_column("subject_requests", column.name, schema="ops")
