"""Retention: legal holds, marketing suppression, sweep worklist and checks, anonymised staging.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "legal_holds",
        metadata,
        sa.Column("hold_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("release_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("hold_id"),
        sa.Index("ix_ops_legal_holds_subject_key", "subject_key"),
        schema="ops",
        comment="Holds block deletion and exclude the subject from all processing but storage.",
    ),
    sa.Table(
        "marketing_suppression",
        metadata,
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("suppressed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_key"),
        schema="ops",
        comment="Keyed hashes of people who must never be marketed to or re-added (N-MKT).",
    ),
    sa.Table(
        "retention_worklist",
        metadata,
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "entity", "entity_id"),
        schema="personal",
        comment="Entities a sweep has decided to retire, kept until every table is swept (crash-safe).",
    ),
    sa.Table(
        "retention_checks",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("anonymised", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("expired_unheld_remaining", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "rule_id", "table_name"),
        schema="ops",
        comment="Per run, rule and table: what was due, held, anonymised, deleted, and what is left.",
    ),
    sa.Table(
        "anon_web_traffic",
        metadata,
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site_section", sa.Text(), nullable=False),
        sa.Column("status_class", sa.String(length=3), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "site_section", "status_class"),
        schema="staging",
        comment="Retired web-log lines as daily counts: no address, no agent, no query string.",
    ),
    sa.Table(
        "anon_auth_events",
        metadata,
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("events", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "event", "outcome"),
        schema="staging",
        comment="Retired authentication events as daily counts.",
    ),
    sa.Table(
        "anon_customers",
        metadata,
        sa.Column("ceased_quarter", sa.String(length=7), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sector", sa.Text(), nullable=False),
        sa.Column("customers", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("ceased_quarter", "country", "sector"),
        schema="staging",
        comment="Retired customers (companies) counted by the quarter they ceased, country and sector.",
    ),
    sa.Table(
        "anon_invoices",
        metadata,
        sa.Column("issued_month", sa.String(length=7), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("invoices", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("issued_month", "country"),
        schema="staging",
        comment="Retired invoices as monthly counts and totals per country.",
    ),
    sa.Table(
        "anon_contracts",
        metadata,
        sa.Column("start_quarter", sa.String(length=7), nullable=False),
        sa.Column("licence_type", sa.String(length=16), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("contracts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("annual_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("start_quarter", "licence_type", "service"),
        schema="staging",
        comment="Retired contracts by start quarter, licence type and service.",
    ),
    sa.Table(
        "anon_prospects",
        metadata,
        sa.Column("created_quarter", sa.String(length=7), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("lifecycle_stage", sa.Text(), nullable=False),
        sa.Column("prospects", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("created_quarter", "country", "lifecycle_stage"),
        schema="staging",
        comment="Retired prospects by the quarter they were created, country and stage.",
    ),
)


def upgrade() -> None:
    create_tables(op.get_bind(), TABLES)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
