"""Statistics zone: published tables and their staging builds, subject requests (counts for
statistics), and the richer keys the aggregates need (browser and region of web traffic, start
quarter of retired customers, service of retired invoices).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.migrate import create_tables, drop_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables as this revision created them, frozen here: later changes to warehouse/schema.py
# need a revision of their own (tests/integration/test_migrations.py compares the head with it).
metadata = sa.MetaData()
TABLES = (
    sa.Table(
        "subject_requests",
        metadata,
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("request_type", sa.String(length=24), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
        sa.Index("ix_ops_subject_requests_subject_key", "subject_key"),
        schema="ops",
        comment="Data-subject requests (N-RIGHTS): type, status and the clock; no personal data.",
    ),
    sa.Table(
        "statistics_reports",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("rows_published", sa.Integer(), nullable=False),
        sa.Column("cells", sa.Integer(), nullable=False),
        sa.Column("cells_suppressed_primary", sa.Integer(), nullable=False),
        sa.Column("cells_suppressed_secondary", sa.Integer(), nullable=False),
        sa.Column("records_in", sa.Integer(), nullable=False),
        sa.Column("records_suppressed", sa.Integer(), nullable=False),
        sa.Column("generalisation", sa.Text(), server_default="", nullable=False),
        sa.Column("precision_loss", sa.Float(), server_default="0", nullable=False),
        sa.Column("min_group_size", sa.Integer(), nullable=True),
        sa.Column("min_l_diversity", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Text(), server_default="", nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "table_name"),
        schema="ops",
        comment="Per statistics run and table: information lost (suppression, generalisation) and the outcome of the k and cell checks. Counts and levels only.",
    ),
    sa.Table(
        "build_manifest",
        metadata,
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("rows_built", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("table_name"),
        schema="staging",
        comment="Which run built each staging table, so publication never ships another run's build.",
    ),
    sa.Table(
        "build_customers_by_quarter",
        metadata,
        sa.Column(
            "quarter", sa.String(length=7), nullable=False, comment="Calendar quarter, YYYY-Qn."
        ),
        sa.Column("country", sa.String(length=2), nullable=False, comment="ISO 3166 country code."),
        sa.Column("sector", sa.Text(), nullable=False, comment="Business sector of the customer."),
        sa.Column(
            "new_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers whose account opened in the quarter. NULL when suppressed.",
        ),
        sa.Column(
            "active_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers with an open account during the quarter. NULL when suppressed.",
        ),
        sa.Column(
            "ceased_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers whose account closed in the quarter. NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("quarter", "country", "sector"),
        schema="staging",
        comment="Staging build of statistics.customers_by_quarter, validated before publication.",
    ),
    sa.Table(
        "customers_by_quarter",
        metadata,
        sa.Column(
            "quarter", sa.String(length=7), nullable=False, comment="Calendar quarter, YYYY-Qn."
        ),
        sa.Column("country", sa.String(length=2), nullable=False, comment="ISO 3166 country code."),
        sa.Column("sector", sa.Text(), nullable=False, comment="Business sector of the customer."),
        sa.Column(
            "new_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers whose account opened in the quarter. NULL when suppressed.",
        ),
        sa.Column(
            "active_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers with an open account during the quarter. NULL when suppressed.",
        ),
        sa.Column(
            "ceased_customers",
            sa.BigInteger(),
            nullable=True,
            comment="Customers whose account closed in the quarter. NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("quarter", "country", "sector"),
        schema="statistics",
        comment="Customer companies by quarter, country and sector: how many started, were active at any time in the quarter, and ceased.",
    ),
    sa.Table(
        "build_revenue_by_service_month",
        metadata,
        sa.Column(
            "month",
            sa.String(length=7),
            nullable=False,
            comment="Calendar month of issue, YYYY-MM.",
        ),
        sa.Column("service", sa.Text(), nullable=False, comment="CCG service invoiced."),
        sa.Column(
            "invoices",
            sa.BigInteger(),
            nullable=True,
            comment="Invoices issued. NULL when suppressed.",
        ),
        sa.Column(
            "revenue_pence",
            sa.BigInteger(),
            nullable=True,
            comment="Invoiced amount before VAT, in pence (GBP). NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("month", "service"),
        schema="staging",
        comment="Staging build of statistics.revenue_by_service_month, validated before publication.",
    ),
    sa.Table(
        "revenue_by_service_month",
        metadata,
        sa.Column(
            "month",
            sa.String(length=7),
            nullable=False,
            comment="Calendar month of issue, YYYY-MM.",
        ),
        sa.Column("service", sa.Text(), nullable=False, comment="CCG service invoiced."),
        sa.Column(
            "invoices",
            sa.BigInteger(),
            nullable=True,
            comment="Invoices issued. NULL when suppressed.",
        ),
        sa.Column(
            "revenue_pence",
            sa.BigInteger(),
            nullable=True,
            comment="Invoiced amount before VAT, in pence (GBP). NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("month", "service"),
        schema="statistics",
        comment="Invoiced revenue by calendar month of issue and service. A cell is suppressed when fewer customers than the threshold contributed to it.",
    ),
    sa.Table(
        "build_web_traffic_daily",
        metadata,
        sa.Column("day", sa.Date(), nullable=False, comment="Calendar day (UTC)."),
        sa.Column(
            "site_section", sa.Text(), nullable=False, comment="First path segment of the URL."
        ),
        sa.Column(
            "browser_family",
            sa.Text(),
            nullable=False,
            comment="Chrome, Firefox, Safari, Edge, Bot, Other.",
        ),
        sa.Column(
            "region",
            sa.Text(),
            nullable=False,
            comment="Visitor region from the address's registry country; Unknown when not found.",
        ),
        sa.Column(
            "requests",
            sa.BigInteger(),
            nullable=True,
            comment="HTTP requests. NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("day", "site_section", "browser_family", "region"),
        schema="staging",
        comment="Staging build of statistics.web_traffic_daily, validated before publication.",
    ),
    sa.Table(
        "web_traffic_daily",
        metadata,
        sa.Column("day", sa.Date(), nullable=False, comment="Calendar day (UTC)."),
        sa.Column(
            "site_section", sa.Text(), nullable=False, comment="First path segment of the URL."
        ),
        sa.Column(
            "browser_family",
            sa.Text(),
            nullable=False,
            comment="Chrome, Firefox, Safari, Edge, Bot, Other.",
        ),
        sa.Column(
            "region",
            sa.Text(),
            nullable=False,
            comment="Visitor region from the address's registry country; Unknown when not found.",
        ),
        sa.Column(
            "requests",
            sa.BigInteger(),
            nullable=True,
            comment="HTTP requests. NULL when suppressed.",
        ),
        sa.PrimaryKeyConstraint("day", "site_section", "browser_family", "region"),
        schema="statistics",
        comment="Website requests by day, site section, browser family and visitor region. No address, agent string or query string is kept.",
    ),
    sa.Table(
        "build_marketing_consent_monthly",
        metadata,
        sa.Column("month", sa.String(length=7), nullable=False, comment="Calendar month, YYYY-MM."),
        sa.Column(
            "contacts",
            sa.BigInteger(),
            nullable=True,
            comment="CRM contacts held at the end of the month. NULL when suppressed.",
        ),
        sa.Column(
            "consents",
            sa.BigInteger(),
            nullable=True,
            comment="Consents given or mailing-list sign-ups. NULL when suppressed.",
        ),
        sa.Column(
            "opt_outs",
            sa.BigInteger(),
            nullable=True,
            comment="Opt-outs, consent withdrawals or unsubscribes. NULL when suppressed.",
        ),
        sa.Column(
            "consent_rate",
            sa.Float(),
            nullable=True,
            comment="consents / contacts. NULL when either is suppressed.",
        ),
        sa.Column(
            "opt_out_rate",
            sa.Float(),
            nullable=True,
            comment="opt_outs / contacts. NULL when either is suppressed.",
        ),
        sa.PrimaryKeyConstraint("month"),
        schema="staging",
        comment="Staging build of statistics.marketing_consent_monthly, validated before publication.",
    ),
    sa.Table(
        "marketing_consent_monthly",
        metadata,
        sa.Column("month", sa.String(length=7), nullable=False, comment="Calendar month, YYYY-MM."),
        sa.Column(
            "contacts",
            sa.BigInteger(),
            nullable=True,
            comment="CRM contacts held at the end of the month. NULL when suppressed.",
        ),
        sa.Column(
            "consents",
            sa.BigInteger(),
            nullable=True,
            comment="Consents given or mailing-list sign-ups. NULL when suppressed.",
        ),
        sa.Column(
            "opt_outs",
            sa.BigInteger(),
            nullable=True,
            comment="Opt-outs, consent withdrawals or unsubscribes. NULL when suppressed.",
        ),
        sa.Column(
            "consent_rate",
            sa.Float(),
            nullable=True,
            comment="consents / contacts. NULL when either is suppressed.",
        ),
        sa.Column(
            "opt_out_rate",
            sa.Float(),
            nullable=True,
            comment="opt_outs / contacts. NULL when either is suppressed.",
        ),
        sa.PrimaryKeyConstraint("month"),
        schema="statistics",
        comment="Marketing consent and opt-outs by calendar month, as counts and as rates of the contacts held at the end of the month.",
    ),
    sa.Table(
        "build_subject_requests_monthly",
        metadata,
        sa.Column("month", sa.String(length=7), nullable=False, comment="Month received, YYYY-MM."),
        sa.Column(
            "request_type",
            sa.String(length=24),
            nullable=False,
            comment="access, rectify, erase, restrict, object or withdraw-consent.",
        ),
        sa.Column(
            "requests",
            sa.BigInteger(),
            nullable=True,
            comment="Requests received. NULL when suppressed.",
        ),
        sa.Column(
            "completed",
            sa.BigInteger(),
            nullable=True,
            comment="Of those, requests completed by the as-of date. NULL when suppressed.",
        ),
        sa.Column(
            "median_days_to_complete",
            sa.Float(),
            nullable=True,
            comment="Median calendar days from receipt to completion. NULL when `completed` is.",
        ),
        sa.PrimaryKeyConstraint("month", "request_type"),
        schema="staging",
        comment="Staging build of statistics.subject_requests_monthly, validated before publication.",
    ),
    sa.Table(
        "subject_requests_monthly",
        metadata,
        sa.Column("month", sa.String(length=7), nullable=False, comment="Month received, YYYY-MM."),
        sa.Column(
            "request_type",
            sa.String(length=24),
            nullable=False,
            comment="access, rectify, erase, restrict, object or withdraw-consent.",
        ),
        sa.Column(
            "requests",
            sa.BigInteger(),
            nullable=True,
            comment="Requests received. NULL when suppressed.",
        ),
        sa.Column(
            "completed",
            sa.BigInteger(),
            nullable=True,
            comment="Of those, requests completed by the as-of date. NULL when suppressed.",
        ),
        sa.Column(
            "median_days_to_complete",
            sa.Float(),
            nullable=True,
            comment="Median calendar days from receipt to completion. NULL when `completed` is.",
        ),
        sa.PrimaryKeyConstraint("month", "request_type"),
        schema="statistics",
        comment="Data-subject requests by month received and type, with the median days to complete.",
    ),
    sa.Table(
        "build_customer_profiles",
        metadata,
        sa.Column(
            "profile_id",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="Row number of this publication; not stable between publications.",
        ),
        sa.Column("region", sa.Text(), nullable=False, comment="Region of the customer's country."),
        sa.Column("sector", sa.Text(), nullable=False, comment="Business sector."),
        sa.Column("size_band", sa.Text(), nullable=False, comment="Employees, banded."),
        sa.Column("revenue_band", sa.Text(), nullable=False, comment="Annual revenue, banded."),
        sa.Column(
            "customer_since",
            sa.Text(),
            nullable=False,
            comment="Quarter or year the account opened.",
        ),
        sa.Column(
            "status", sa.Text(), nullable=False, comment="active or ceased at the as-of date."
        ),
        sa.Column(
            "main_service", sa.Text(), nullable=False, comment="Service of the largest contract."
        ),
        sa.PrimaryKeyConstraint("profile_id"),
        schema="staging",
        comment="Staging build of statistics.customer_profiles, validated before publication.",
    ),
    sa.Table(
        "customer_profiles",
        metadata,
        sa.Column(
            "profile_id",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="Row number of this publication; not stable between publications.",
        ),
        sa.Column("region", sa.Text(), nullable=False, comment="Region of the customer's country."),
        sa.Column("sector", sa.Text(), nullable=False, comment="Business sector."),
        sa.Column("size_band", sa.Text(), nullable=False, comment="Employees, banded."),
        sa.Column("revenue_band", sa.Text(), nullable=False, comment="Annual revenue, banded."),
        sa.Column(
            "customer_since",
            sa.Text(),
            nullable=False,
            comment="Quarter or year the account opened.",
        ),
        sa.Column(
            "status", sa.Text(), nullable=False, comment="active or ceased at the as-of date."
        ),
        sa.Column(
            "main_service", sa.Text(), nullable=False, comment="Service of the largest contract."
        ),
        sa.PrimaryKeyConstraint("profile_id"),
        schema="statistics",
        comment="Anonymised customer records, one per customer company, k-anonymous over region, sector, size band, revenue band and start period. A value of * means generalised away.",
    ),
    sa.Table(
        "publications",
        metadata,
        sa.Column("run_id", sa.Text(), nullable=False, comment="Airflow run that published."),
        sa.Column("as_of", sa.Date(), nullable=False, comment="Date the figures describe."),
        sa.Column("published_at", sa.DateTime(), nullable=False, comment="When (UTC)."),
        sa.Column("k", sa.Integer(), nullable=False, comment="Minimum group size enforced."),
        sa.Column("min_cell", sa.Integer(), nullable=False, comment="Smallest count published."),
        sa.Column(
            "tables", sa.Text(), nullable=False, comment="Published tables and row counts (JSON)."
        ),
        sa.PrimaryKeyConstraint("run_id"),
        schema="statistics",
        comment="One row per publication of the statistics zone; the newest is what you are reading.",
    ),
)
# The staging roll-ups whose primary keys gained columns, in their new shape.
REKEYED = (
    sa.Table(
        "anon_web_traffic",
        sa.MetaData(),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site_section", sa.Text(), nullable=False),
        sa.Column("status_class", sa.String(length=3), nullable=False),
        sa.Column("browser_family", sa.Text(), server_default="Other", nullable=False),
        sa.Column("region", sa.Text(), server_default="Unknown", nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "source_file", "day", "site_section", "status_class", "browser_family", "region"
        ),
        schema="staging",
        comment="Web-log lines as daily counts per log file, rolled up when the file is loaded (so retention can delete raw lines without a second pass): no address, no agent, no query string.",
    ),
    sa.Table(
        "anon_customers",
        sa.MetaData(),
        sa.Column("started_quarter", sa.String(length=7), server_default="unknown", nullable=False),
        sa.Column("ceased_quarter", sa.String(length=7), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("sector", sa.Text(), nullable=False),
        sa.Column("customers", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("started_quarter", "ceased_quarter", "country", "sector"),
        schema="staging",
        comment="Retired customers (companies) counted by the quarters they started and ceased, country and sector.",
    ),
    sa.Table(
        "anon_invoices",
        sa.MetaData(),
        sa.Column("issued_month", sa.String(length=7), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("service", sa.Text(), server_default="unknown", nullable=False),
        sa.Column("invoices", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("issued_month", "country", "service"),
        schema="staging",
        comment="Retired invoices as monthly counts and totals per country and service.",
    ),
)
WEB_ACCESS_ADDED = (
    sa.Column("browser_family", sa.Text, nullable=False, server_default="Other"),
    sa.Column("visitor_region", sa.Text, nullable=False, server_default="Unknown"),
)


def _columns(bind: sa.Connection, table: sa.Table) -> set[str]:
    return {c["name"] for c in sa.inspect(bind).get_columns(table.name, schema=table.schema)}


def _rekey(bind: sa.Connection, table: sa.Table) -> None:
    """Rebuild a staging roll-up whose primary key gained columns: copy the rows into the new
    shape (new key columns take their defaults), then swap names. A no-op when already new."""
    old = _columns(bind, table)
    if old >= {c.name for c in table.columns}:
        return
    temporary = table.to_metadata(sa.MetaData(), name=f"{table.name}_0004")
    temporary.create(bind)
    shared = [c.name for c in table.columns if c.name in old]
    bind.execute(
        sa.insert(temporary).from_select(
            shared,
            sa.select(*(sa.column(c) for c in shared)).select_from(
                sa.table(table.name, schema=table.schema)
            ),
        )
    )
    bind.execute(sa.text(f"DROP TABLE {table.schema}.{table.name}"))
    bind.execute(sa.text(f"ALTER TABLE {table.schema}.{temporary.name} RENAME TO {table.name}"))


def upgrade() -> None:
    bind = op.get_bind()
    present = {c["name"] for c in sa.inspect(bind).get_columns("web_access", schema="personal")}
    for column in WEB_ACCESS_ADDED:
        if column.name not in present:
            op.add_column("web_access", column._copy(), schema="personal")
    for table in REKEYED:
        _rekey(bind, table)
    create_tables(bind, TABLES)
    backend_of(bind).set_up_analyst_access(bind)


def downgrade() -> None:
    drop_tables(op.get_bind(), TABLES)
