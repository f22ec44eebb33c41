"""Table definitions of the warehouse zones, in SQLAlchemy Core.

Zones follow docs/DESIGN.md section 3: `personal` holds identifiable data and is read only by the
pipeline; `staging` and `statistics` hold anonymised outputs; `ops` holds evidence and never a
raw identifier (subjects appear there only as keyed pseudonyms). On PostgreSQL a zone is a schema;
on SQLite it is a database file attached under the zone's name.

Conventions: timestamps are naive UTC; money is integer minor units (pence) so sums are exact on
both backends.

This is the schema the code reads and writes; the migrations under `migrations/versions/` build
it, each revision with its own frozen copy of what it creates. A change here needs a new
revision: `tests/integration/test_migrations.py` compares a migrated warehouse with this module
on both backends and fails on any difference (tables, columns, types, defaults, indexes,
comments).
"""

from __future__ import annotations

import sqlalchemy as sa

ZONES = ("personal", "staging", "statistics", "ops")
PERSONAL, STAGING, STATISTICS, OPS = ZONES

metadata = sa.MetaData()


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


# --- personal zone -----------------------------------------------------------------------------

subjects = sa.Table(
    "subjects",
    metadata,
    sa.Column("subject_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email_norm", sa.Text, nullable=False, unique=True),
    sa.Column("subject_key", sa.String(64), nullable=False, unique=True),
    _ts("first_seen_at", nullable=False),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
    comment="One row per data subject, matched across sources by normalised email.",
)

companies = sa.Table(
    "companies",
    metadata,
    sa.Column("company_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("registration_number", sa.Text),
    sa.Column("vat_number", sa.Text),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("sector", sa.Text),
    sa.Column("employees", sa.Integer),
    sa.Column("annual_revenue_gbp", sa.BigInteger),
    sa.Column("billing_address", sa.Text),
    sa.Column("postcode", sa.Text),
    sa.Column("city", sa.Text),
    _ts("created_at", nullable=False),
    _ts("closed_at"),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

portal_users = sa.Table(
    "portal_users",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_id", sa.Integer, nullable=False, index=True),
    sa.Column("subject_id", sa.Integer, nullable=False, index=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("job_title", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("password_hash", sa.Text),
    sa.Column("interests", sa.Text),
    sa.Column("time_zone", sa.Text),
    _ts("created_at", nullable=False),
    _ts("closed_at"),
    _ts("last_login_at"),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("contract_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_id", sa.Integer, nullable=False, index=True),
    sa.Column("licence_type", sa.String(16), nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date),
    sa.Column("annual_fee_minor", sa.BigInteger, nullable=False),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_id", sa.Integer, nullable=False, index=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("service", sa.Text, nullable=False),
    _ts("ordered_at", nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_id", sa.Integer, nullable=False, index=True),
    sa.Column("order_id", sa.Integer),
    sa.Column("invoice_number", sa.Text, nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("vat_minor", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("invoice_id", sa.Integer, nullable=False, index=True),
    # The invoice's company, looked up in the portal at ingest (migration 0008): retention reaches
    # a payment by its company key even when its invoice row was quarantined.
    sa.Column("company_id", sa.Integer, index=True),
    _ts("paid_at", nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("card_masked", sa.Text),
    sa.Column("bank_account_masked", sa.Text),
    _ts("updated_at", nullable=False),
    schema=PERSONAL,
)

crm_companies = sa.Table(
    "crm_companies",
    metadata,
    sa.Column("crm_company_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("domain", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("industry", sa.Text),
    sa.Column("employees", sa.Integer),
    sa.Column("annual_revenue_gbp", sa.BigInteger),
    _ts("created_at", nullable=False),
    sa.Column("export_date", sa.Date, nullable=False),
    schema=PERSONAL,
)

crm_contacts = sa.Table(
    "crm_contacts",
    metadata,
    sa.Column("crm_contact_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("subject_id", sa.Integer, nullable=False, index=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("job_title", sa.Text),
    sa.Column("company_name", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("lifecycle_stage", sa.Text, nullable=False),
    sa.Column("marketing_status", sa.Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("last_activity_at"),
    sa.Column("export_date", sa.Date, nullable=False),
    schema=PERSONAL,
)

crm_activities = sa.Table(
    "crm_activities",
    metadata,
    sa.Column("activity_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("crm_contact_id", sa.Integer, nullable=False, index=True),
    sa.Column("subject_id", sa.Integer, index=True),
    sa.Column("activity_type", sa.Text, nullable=False),
    _ts("occurred_at", nullable=False),
    sa.Column("channel", sa.Text),
    sa.Column("subject_line", sa.Text),
    sa.Column("body", sa.Text),
    sa.Column("export_date", sa.Date, nullable=False),
    schema=PERSONAL,
)

web_access = sa.Table(
    "web_access",
    metadata,
    sa.Column("source_file", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    _ts("requested_at", nullable=False),
    sa.Column("ip_prefix", sa.Text, nullable=False),
    sa.Column("method", sa.String(16)),
    sa.Column("url", sa.Text),
    sa.Column("site_section", sa.Text, nullable=False, server_default="other"),
    sa.Column("protocol", sa.String(16)),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("bytes_sent", sa.BigInteger),
    sa.Column("referrer", sa.Text),
    sa.Column("user_agent", sa.Text),
    # Derived at ingest so statistics never need the agent string or the address again.
    sa.Column("browser_family", sa.Text, nullable=False, server_default="Other"),
    sa.Column("visitor_region", sa.Text, nullable=False, server_default="Unknown"),
    # Time first for retention ranges; covering the anonymised columns lets the sweep aggregate
    # expired rows from the index alone before deleting them.
    sa.Index("ix_web_access_requested_at", "requested_at", "site_section", "status"),
    schema=PERSONAL,
)

auth_events = sa.Table(
    "auth_events",
    metadata,
    sa.Column("source_file", sa.Text, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    _ts("occurred_at", nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("username", sa.Text),
    sa.Column("user_id", sa.Integer),
    sa.Column("subject_id", sa.Integer, index=True),
    sa.Column("ip_prefix", sa.Text),
    sa.Column("user_agent", sa.Text),
    sa.Index("ix_auth_events_occurred_at", "occurred_at"),
    schema=PERSONAL,
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("source_ref", sa.Text, nullable=False),
    sa.Column("record_ref", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw_record", sa.Text),
    sa.Column("run_id", sa.Text, nullable=False),
    _ts("quarantined_at", nullable=False),
    # Who and which company the raw record is about, read from it where its source has those
    # fields (personal_model.QUARANTINE_LINKS, migration 0008): retention and erasure reach a
    # quarantined record by key, as they reach a loaded row.
    sa.Column("subject_key", sa.String(64), index=True),
    sa.Column("company_id", sa.Integer, index=True),
    sa.UniqueConstraint("source", "source_ref", "record_ref", name="uq_quarantine_record"),
    schema=PERSONAL,
    comment="Rejected records, kept whole so nothing is lost; swept by retention rule quarantine_raw.",
)

# --- ops zone: evidence, never raw identifiers ----------------------------------------------------

ingest_batches = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("batch_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("source_ref", sa.Text, nullable=False),
    sa.Column("content_sha256", sa.String(64)),
    _ts("window_start"),
    _ts("window_end", nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_loaded", sa.Integer, nullable=False),
    sa.Column("rows_quarantined", sa.Integer, nullable=False),
    sa.Column("rows_retired", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_erased", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    _ts("finished_at", nullable=False),
    sa.Index("ix_ingest_batches_source_ref", "source", "source_ref"),
    schema=OPS,
    comment="One row per source batch (file or table window) per run, with counts only.",
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    _ts("high_water_mark", nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    schema=OPS,
)

quarantine_summary = sa.Table(
    "quarantine_summary",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("source_ref", sa.Text, primary_key=True),
    sa.Column("reason_code", sa.Text, primary_key=True),
    sa.Column("row_count", sa.Integer, nullable=False),
    schema=OPS,
    comment="Counts of quarantined records per run, source, batch (file) and reason code; no "
    "record content.",
)

audit_ledger = sa.Table(
    "audit_ledger",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("rule_id", sa.Text, nullable=False, server_default=""),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("subject_pseudonym", sa.String(64), nullable=False, server_default=""),
    _ts("recorded_at", nullable=False),
    sa.UniqueConstraint(
        "run_id", "action", "rule_id", "table_name", "subject_pseudonym", name="uq_audit_entry"
    ),
    schema=OPS,
    comment="Every action on personal data: rule, table, count, run id, keyed pseudonym.",
)

# The tables ingest writes, parents first.
INGESTED_TABLES = (
    subjects,
    companies,
    portal_users,
    contracts,
    orders,
    invoices,
    payments,
    crm_companies,
    crm_contacts,
    crm_activities,
    web_access,
    auth_events,
    quarantine,
    ingest_batches,
    watermarks,
    quarantine_summary,
    audit_ledger,
)

# --- retention (migration 0002) --------------------------------------------------------------------

legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("hold_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_key", sa.String(64), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("origin", sa.String(32), nullable=False),
    _ts("created_at", nullable=False),
    _ts("released_at"),
    sa.Column("release_note", sa.Text),
    schema=OPS,
    comment="Holds block deletion and exclude the subject from all processing but storage.",
)

marketing_suppression = sa.Table(
    "marketing_suppression",
    metadata,
    sa.Column("subject_key", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    _ts("suppressed_at", nullable=False),
    schema=OPS,
    comment="Keyed hashes of people who must never be marketed to or re-added (N-MKT).",
)

retention_worklist = sa.Table(
    "retention_worklist",
    metadata,
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("entity", sa.Text, primary_key=True),
    sa.Column("entity_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.Text, nullable=False),
    schema=PERSONAL,
    comment="Entities a sweep has decided to retire, kept until every table is swept (crash-safe).",
)

retention_checks = sa.Table(
    "retention_checks",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("due", sa.Integer, nullable=False),
    sa.Column("held", sa.Integer, nullable=False),
    sa.Column("anonymised", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    sa.Column("expired_unheld_remaining", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    schema=OPS,
    comment="Per run, rule and table: what was due, held, anonymised, deleted, and what is left.",
)


def _anon(name: str, keys: list[sa.Column], measures: list[str], comment: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        *keys,
        *(sa.Column(m, sa.BigInteger, nullable=False, server_default="0") for m in measures),
        schema=STAGING,
        comment=comment,
    )


anon_web_traffic = _anon(
    "anon_web_traffic",
    [
        sa.Column("source_file", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("site_section", sa.Text, primary_key=True),
        sa.Column("status_class", sa.String(3), primary_key=True),
        sa.Column("browser_family", sa.Text, primary_key=True, server_default="Other"),
        sa.Column("region", sa.Text, primary_key=True, server_default="Unknown"),
    ],
    ["requests"],
    "Web-log lines as daily counts per log file, rolled up when the file is loaded (so retention "
    "can delete raw lines without a second pass): no address, no agent, no query string.",
)
anon_auth_events = _anon(
    "anon_auth_events",
    [
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("event", sa.Text, primary_key=True),
        sa.Column("outcome", sa.Text, primary_key=True),
    ],
    ["events"],
    "Retired authentication events as daily counts.",
)
anon_customers = _anon(
    "anon_customers",
    [
        sa.Column("started_quarter", sa.String(7), primary_key=True, server_default="unknown"),
        sa.Column("ceased_quarter", sa.String(7), primary_key=True),
        sa.Column("country", sa.String(2), primary_key=True),
        sa.Column("sector", sa.Text, primary_key=True),
    ],
    ["customers"],
    "Retired customers (companies) counted by the quarters they started and ceased, country and "
    "sector.",
)
anon_invoices = _anon(
    "anon_invoices",
    [
        sa.Column("issued_month", sa.String(7), primary_key=True),
        sa.Column("country", sa.String(2), primary_key=True),
        sa.Column("service", sa.Text, primary_key=True, server_default="unknown"),
    ],
    ["invoices", "amount_minor"],
    "Retired invoices as monthly counts and totals per country and service.",
)
anon_contracts = _anon(
    "anon_contracts",
    [
        sa.Column("start_quarter", sa.String(7), primary_key=True),
        sa.Column("licence_type", sa.String(16), primary_key=True),
        sa.Column("service", sa.Text, primary_key=True),
    ],
    ["contracts", "annual_fee_minor"],
    "Retired contracts by start quarter, licence type and service.",
)
anon_prospects = _anon(
    "anon_prospects",
    [
        sa.Column("created_quarter", sa.String(7), primary_key=True),
        sa.Column("country", sa.Text, primary_key=True),
        sa.Column("lifecycle_stage", sa.Text, primary_key=True),
    ],
    ["prospects"],
    "Retired prospects by the quarter they were created, country and stage.",
)


# --- retired keys (migration 0003) -------------------------------------------------------------------

retired_keys = sa.Table(
    "retired_keys",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("retired_on", sa.Date, nullable=False),
    schema=PERSONAL,
    comment="Source keys retention retired: ingest does not bring an unchanged row back (which "
    "would also count its anonymised value twice).",
)


# --- statistics (migration 0004) ---------------------------------------------------------------------

# The rights a data-subject request can exercise (N-RIGHTS), as stored and published.
REQUEST_TYPES = ("access", "rectify", "erase", "restrict", "object", "withdraw-consent")

subject_requests = sa.Table(
    "subject_requests",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("request_type", sa.String(24), nullable=False),
    # A keyed pseudonym of the requester's normalised email; the ops zone holds no raw identifier.
    sa.Column("subject_key", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(24), nullable=False),
    _ts("received_at", nullable=False),
    _ts("verified_at"),
    sa.Column("due_on", sa.Date),
    _ts("completed_at"),
    # Migration 0006: intake, duplicates, the extension and the outcome.
    sa.Column("email_masked", sa.Text, comment="For operators: `an***@ex***.se`."),
    sa.Column("source", sa.String(16), comment="cli or drop_folder."),
    sa.Column(
        "source_ref", sa.Text, comment="Drop-folder file name (a re-read file is a duplicate)."
    ),
    sa.Column(
        "dedup_key", sa.String(64), index=True, comment="Keyed hash of type, subject, payload."
    ),
    sa.Column("scope", sa.String(24), comment="Objections: marketing or legitimate_interest."),
    sa.Column("first_due_on", sa.Date, comment="Due date before any extension."),
    sa.Column("extension_months", sa.Integer),
    sa.Column("extension_reason", sa.Text),
    sa.Column(
        "extended_on", sa.Date, comment="When the extension was decided and the subject told."
    ),
    sa.Column("outcome", sa.Text, comment="What was done, in counts (JSON)."),
    _ts("updated_at"),
    schema=OPS,
    comment="Data-subject requests (N-RIGHTS): type, status and the clock; no personal data.",
)

# The statuses a request moves through.
AWAITING_VERIFICATION, VERIFIED, AWAITING_CRM, COMPLETED, REJECTED = (
    "awaiting_verification",
    "verified",
    "awaiting_crm",
    "completed",
    "rejected",
)
OPEN_STATUSES = (AWAITING_VERIFICATION, VERIFIED, AWAITING_CRM)

request_payloads = sa.Table(
    "request_payloads",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
    schema=PERSONAL,
    comment="The requester's email and request details (corrections, export name), kept in the "
    "personal zone only until the request is closed (migration 0006).",
)

erasure_tombstones = sa.Table(
    "erasure_tombstones",
    metadata,
    sa.Column("subject_key", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False),
    _ts("erased_at", nullable=False),
    _ts("last_seen_in_crm_at"),
    schema=OPS,
    comment="Keyed hashes of erased people: ingest skips their rows, so a re-ingest of the same "
    "sources does not bring them back; last_seen_in_crm_at tracks the CRM erasure.",
)

# --- erased CRM records (migration 0013) ------------------------------------------------------------

erased_crm_contacts = sa.Table(
    "erased_crm_contacts",
    metadata,
    sa.Column("contact_key", sa.String(64), primary_key=True),
    sa.Column("subject_key", sa.String(64), nullable=False, index=True),
    _ts("noted_at", nullable=False),
    schema=OPS,
    comment="Keyed hashes of the CRM record ids of erased people (from the erasure, and from "
    "any later export that still holds them): ingest skips their activities, which carry the "
    "record id but no address.",
)

crm_outbox = sa.Table(
    "crm_outbox",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("subject_key", sa.String(64), nullable=False),
    sa.Column("instruction", sa.String(16), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("confirmed_at"),
    schema=OPS,
    comment="Erasure instructions for the CRM (a file per request in the outbox folder), open "
    "until a CRM export taken afterwards no longer holds the subject.",
)

processing_objections = sa.Table(
    "processing_objections",
    metadata,
    sa.Column("subject_key", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(24), primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False),
    _ts("recorded_at", nullable=False),
    schema=OPS,
    comment="Objections to legitimate-interest processing: the subject is left out of it "
    "(statistics).",
)

purpose_checks = sa.Table(
    "purpose_checks",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("processing_id", sa.Text, primary_key=True, comment="A declared processing."),
    sa.Column("purpose", sa.Text, nullable=False, comment="Its notice processing activity."),
    sa.Column("basis", sa.Text, nullable=False, comment="The lawful basis it relies on."),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("statements", sa.Integer, nullable=False, comment="SQL statements inspected."),
    sa.Column(
        "columns_read",
        sa.Text,
        nullable=False,
        comment="Personal columns the statements referenced (zone.table.column, comma-separated).",
    ),
    sa.Column(
        "subjects_excluded",
        sa.Integer,
        comment="People left out for the basis (objections, or no consent); NULL on a violation.",
    ),
    sa.Column("violation", sa.Text, comment="What it read beyond its purpose; NULL if nothing."),
    _ts("checked_at", nullable=False),
    schema=OPS,
    comment="Purpose limitation per run and processing (ccg_pipeline/purposes.py, N-BASIS): "
    "column names and counts, never a value.",
)

statistics_reports = sa.Table(
    "statistics_reports",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("rows_published", sa.Integer, nullable=False),
    sa.Column("cells", sa.Integer, nullable=False),
    sa.Column("cells_suppressed_primary", sa.Integer, nullable=False),
    sa.Column("cells_suppressed_secondary", sa.Integer, nullable=False),
    sa.Column("records_in", sa.Integer, nullable=False),
    sa.Column("records_suppressed", sa.Integer, nullable=False),
    sa.Column("generalisation", sa.Text, nullable=False, server_default=""),
    sa.Column("precision_loss", sa.Float, nullable=False, server_default="0"),
    sa.Column("min_group_size", sa.Integer),
    sa.Column("min_l_diversity", sa.Integer),
    sa.Column("failures", sa.Text, nullable=False, server_default=""),
    sa.Column("passed", sa.Boolean, nullable=False),
    schema=OPS,
    comment="Per statistics run and table: information lost (suppression, generalisation) and "
    "the outcome of the k and cell checks. Counts and levels only.",
)

validation_results = sa.Table(
    "validation_results",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("expectation", sa.Text, nullable=False),
    sa.Column("column_name", sa.Text),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("unexpected_count", sa.BigInteger),
    sa.Column("observed_value", sa.Float),
    sa.Column("raised_error", sa.Boolean, nullable=False),
    sa.Column("suite_version", sa.Text, nullable=False),
    _ts("validated_at", nullable=False),
    schema=OPS,
    comment="The validation gate's outcome per statistics run, table and expectation (position "
    "in the suite): counts and measured sizes only, never a value. Migration 0005.",
)

build_manifest = sa.Table(
    "build_manifest",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("rows_built", sa.Integer, nullable=False),
    schema=STAGING,
    comment="Which run built each staging table, so publication never ships another run's build.",
)


def _published(name: str, comment: str, *columns: sa.Column) -> tuple[sa.Table, sa.Table]:
    """A statistics table and its staging twin (`build_<name>`), defined once."""
    published = sa.Table(name, metadata, *columns, schema=STATISTICS, comment=comment)
    build = sa.Table(
        f"build_{name}",
        metadata,
        *(c._copy() for c in columns),
        schema=STAGING,
        comment=f"Staging build of statistics.{name}, validated before publication.",
    )
    return build, published


# Column kinds the statistics checks read from `Column.info`.
COUNT, SUM, QUASI_IDENTIFIER = "count", "sum", "quasi_identifier"


def columns_of_kind(table: sa.Table, kind: str) -> list[str]:
    return [c.name for c in table.columns if c.info.get("kind") == kind]


def dimensions_of(table: sa.Table) -> list[str]:
    """The dimensions of a published aggregate: its primary key."""
    return [c.name for c in table.primary_key.columns]


def _count(name: str, comment: str, kind: str = COUNT) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=True, comment=comment, info={"kind": kind})


def _qi(name: str, comment: str) -> sa.Column:
    return sa.Column(
        name, sa.Text, nullable=False, comment=comment, info={"kind": QUASI_IDENTIFIER}
    )


# Counts carry cell-key noise (anonymise/cellkey.py; bounds in docs/data-dictionary.md).
SUPPRESSED_NOTE = " Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed."

build_customers_by_quarter, customers_by_quarter = _published(
    "customers_by_quarter",
    "Customer companies by quarter, country and sector: how many started, were active at any "
    "time in the quarter, and ceased.",
    sa.Column("quarter", sa.String(7), primary_key=True, comment="Calendar quarter, YYYY-Qn."),
    sa.Column("country", sa.String(2), primary_key=True, comment="ISO 3166 country code."),
    sa.Column("sector", sa.Text, primary_key=True, comment="Business sector of the customer."),
    _count("new_customers", "Customers whose account opened in the quarter." + SUPPRESSED_NOTE),
    _count(
        "active_customers", "Customers with an open account during the quarter." + SUPPRESSED_NOTE
    ),
    _count("ceased_customers", "Customers whose account closed in the quarter." + SUPPRESSED_NOTE),
)

build_revenue_by_service_month, revenue_by_service_month = _published(
    "revenue_by_service_month",
    "Invoiced revenue by calendar month of issue and service. A row is suppressed when fewer "
    "than 5 customers contributed to it (plus secondary suppression).",
    sa.Column("month", sa.String(7), primary_key=True, comment="Calendar month of issue, YYYY-MM."),
    sa.Column("service", sa.Text, primary_key=True, comment="CCG service invoiced."),
    _count("invoices", "Invoices issued." + SUPPRESSED_NOTE),
    _count(
        "revenue_pence",
        "Invoiced amount before VAT, in pence (GBP). Perturbed by 10-38% of the largest "
        "customer's part, up or down. NULL when suppressed.",
        SUM,
    ),
)

build_web_traffic_daily, web_traffic_daily = _published(
    "web_traffic_daily",
    "Website requests by day, site section, browser family and visitor region. No address, "
    "agent string or query string is kept.",
    sa.Column("day", sa.Date, primary_key=True, comment="Calendar day (UTC)."),
    sa.Column("site_section", sa.Text, primary_key=True, comment="First path segment of the URL."),
    sa.Column(
        "browser_family",
        sa.Text,
        primary_key=True,
        comment="Chrome, Firefox, Safari, Edge, Bot, Other.",
    ),
    sa.Column(
        "region",
        sa.Text,
        primary_key=True,
        comment="Visitor region from the address's registry country; Unknown when not found.",
    ),
    _count("requests", "HTTP requests." + SUPPRESSED_NOTE),
)

build_marketing_consent_monthly, marketing_consent_monthly = _published(
    "marketing_consent_monthly",
    "Marketing consent and opt-outs by calendar month, as counts and as rates of the contacts "
    "held at the end of the month.",
    sa.Column("month", sa.String(7), primary_key=True, comment="Calendar month, YYYY-MM."),
    _count("contacts", "CRM contacts held at the end of the month." + SUPPRESSED_NOTE),
    _count("consents", "Consents given or mailing-list sign-ups." + SUPPRESSED_NOTE),
    _count("opt_outs", "Opt-outs, consent withdrawals or unsubscribes." + SUPPRESSED_NOTE),
    sa.Column(
        "consent_rate",
        sa.Float,
        comment="consents / contacts. NULL when either is suppressed.",
    ),
    sa.Column(
        "opt_out_rate",
        sa.Float,
        comment="opt_outs / contacts. NULL when either is suppressed.",
    ),
)

build_subject_requests_monthly, subject_requests_monthly = _published(
    "subject_requests_monthly",
    "Data-subject requests by month received and type, with the median days to complete.",
    sa.Column("month", sa.String(7), primary_key=True, comment="Month received, YYYY-MM."),
    sa.Column(
        "request_type",
        sa.String(24),
        primary_key=True,
        comment="access, rectify, erase, restrict, object or withdraw-consent.",
    ),
    _count("requests", "Requests received." + SUPPRESSED_NOTE),
    _count("completed", "Of those, requests completed by the as-of date." + SUPPRESSED_NOTE),
    sa.Column(
        "median_days_to_complete",
        sa.Float,
        comment="Median calendar days from receipt to completion. NULL when `completed` is.",
    ),
)

build_customer_profiles, customer_profiles = _published(
    "customer_profiles",
    "Anonymised customer records, one per company that was a customer on the last day of the "
    "newest closed quarter, k-anonymous over region, sector, size band, revenue band and start "
    "period. A value of * means generalised away. Replaced once per quarter.",
    sa.Column(
        "profile_id",
        sa.Integer,
        primary_key=True,
        autoincrement=False,
        comment="Row number of this publication; not stable between publications.",
    ),
    _qi("region", "Region of the customer's country."),
    _qi("sector", "Business sector."),
    _qi("size_band", "Employees, banded."),
    _qi("revenue_band", "Annual revenue, banded."),
    _qi("customer_since", "Quarter or year the account opened."),
    sa.Column("main_service", sa.Text, nullable=False, comment="Service of the largest contract."),
)

publications = sa.Table(
    "publications",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True, comment="Airflow run that published."),
    sa.Column("as_of", sa.Date, nullable=False, comment="Date the figures describe."),
    sa.Column("published_at", sa.DateTime(), nullable=False, comment="When (UTC)."),
    sa.Column("k", sa.Integer, nullable=False, comment="Minimum group size enforced."),
    sa.Column("min_cell", sa.Integer, nullable=False, comment="Smallest count published."),
    sa.Column("tables", sa.Text, nullable=False, comment="Published tables and row counts (JSON)."),
    schema=STATISTICS,
    comment="One row per publication of the statistics zone; the newest is what you are reading.",
)

frozen_periods = sa.Table(
    "frozen_periods",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True, comment="Published table."),
    sa.Column("period", sa.Text, primary_key=True, comment="Its period (day, month or quarter)."),
    sa.Column("frozen_as_of", sa.Date, nullable=False, comment="As-of date of the release."),
    sa.Column("run_id", sa.Text, nullable=False, comment="Run that first published it."),
    schema=STATISTICS,
    comment="Periods whose figures are final: once a closed period is published, its rows are "
    "published unchanged in every later release, whatever happens to the people behind them "
    "(erasure, restriction, objection, retention). Periods not listed here are not published.",
)

# Published statistics tables, paired with their staging builds, in publication order.
PUBLISHED = (
    (build_customers_by_quarter, customers_by_quarter),
    (build_revenue_by_service_month, revenue_by_service_month),
    (build_web_traffic_daily, web_traffic_daily),
    (build_marketing_consent_monthly, marketing_consent_monthly),
    (build_subject_requests_monthly, subject_requests_monthly),
    (build_customer_profiles, customer_profiles),
)


release_audits = sa.Table(
    "release_audits",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("cells_checked", sa.Integer, nullable=False, comment="Cells and derived flows."),
    sa.Column("narrowest_width", sa.Float, comment="Narrowest attacker interval; NULL if none."),
    sa.Column("protection_width", sa.Float, nullable=False, comment="Policy's minimum width."),
    sa.Column("cells_below_protection", sa.Integer, nullable=False),
    sa.Column("hidden_cells", sa.Integer, nullable=False, comment="Suppressed cells checked."),
    sa.Column("lp_solves", sa.Integer, nullable=False),
    sa.Column(
        "inconsistent_components",
        sa.Integer,
        nullable=False,
        comment="Groups of cells no true values within the noise bounds reconcile (fails).",
    ),
    sa.Column(
        "relaxed_components",
        sa.Integer,
        nullable=False,
        comment="Groups reconciled only without the identities between periods frozen apart.",
    ),
    sa.Column("sum_protection_share", sa.Float, comment="Least noise share of a sum's top value."),
    sa.Column("passed", sa.Boolean, nullable=False),
    schema=OPS,
    comment="The release audit per statistics run and table (validation/release_audit.py): how "
    "narrowly an attacker holding every release can bound any hidden or perturbed cell. Counts "
    "and widths only, never a value.",
)

profile_margins = sa.Table(
    "profile_margins",
    metadata,
    sa.Column("quarter", sa.Text, primary_key=True, comment="Quarter the snapshot describes."),
    sa.Column("region", sa.Text, primary_key=True),
    sa.Column("sector", sa.Text, primary_key=True),
    sa.Column("customer_since", sa.Text, primary_key=True),
    sa.Column("records", sa.Integer, nullable=False, comment="Published records in the class."),
    sa.Column("records_suppressed", sa.Integer, nullable=False, comment="Of the whole snapshot."),
    sa.Column("snapshot_as_of", sa.Date, nullable=False, comment="As-of date of the release."),
    schema=OPS,
    comment="Record counts of every customer_profiles snapshot ever published, by the columns it "
    "shares with customers_by_quarter: what an attacker who kept the old snapshots can add up, so "
    "that the release audit (validation/release_audit.py) can too. Counts of published records "
    "only.",
)


# --- compliance evidence (migration 0007) -------------------------------------------------------

clause_evidence = sa.Table(
    "clause_evidence",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("clause", sa.String(16), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("figures", sa.Text, nullable=False, comment="The check's figures (JSON, counts)."),
    sa.Column("findings", sa.Text, nullable=False, server_default="[]", comment="JSON list."),
    _ts("checked_at", nullable=False),
    schema=OPS,
    comment="Per evidence run and notice clause: pass or fail with its figures (counts only).",
)

evidence_reports = sa.Table(
    "evidence_reports",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("clauses_checked", sa.Integer, nullable=False),
    sa.Column(
        "clauses_failed", sa.Text, nullable=False, comment="Failed clause ids, comma-separated."
    ),
    sa.Column(
        "report_file", sa.Text, comment="The stored report (HTML), under $CCG_HOME/evidence."
    ),
    _ts("created_at", nullable=False),
    schema=OPS,
    comment="One row per evidence run: the clause-by-clause report an auditor is handed.",
)
