"""Comments and an index the schema changed without a revision, caught by the drift test.

The published tables' column comments (the analysts' data dictionary) gained what the perturbation
and suppression mean for a value; two tables gained their comments; the web log index gained the
columns the daily roll-up filters on. Comments exist on PostgreSQL only (SQLite has none).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Published table -> its comment, and (published table, column) -> the column's comment, as set
# by this revision on the table and on its staging build (`staging.build_<table>`).
TABLE_COMMENTS = {
    "customer_profiles": "Anonymised customer records, one per company that was a customer on the last day of the newest closed quarter, k-anonymous over region, sector, size band, revenue band and start period. A value of * means generalised away. Replaced once per quarter.",
    "revenue_by_service_month": "Invoiced revenue by calendar month of issue and service. A row is suppressed when fewer than 5 customers contributed to it (plus secondary suppression).",
}
COLUMN_COMMENTS = {
    (
        "customers_by_quarter",
        "new_customers",
    ): "Customers whose account opened in the quarter. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "customers_by_quarter",
        "active_customers",
    ): "Customers with an open account during the quarter. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "customers_by_quarter",
        "ceased_customers",
    ): "Customers whose account closed in the quarter. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "marketing_consent_monthly",
        "contacts",
    ): "CRM contacts held at the end of the month. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "marketing_consent_monthly",
        "consents",
    ): "Consents given or mailing-list sign-ups. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "marketing_consent_monthly",
        "opt_outs",
    ): "Opt-outs, consent withdrawals or unsubscribes. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "revenue_by_service_month",
        "invoices",
    ): "Invoices issued. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "revenue_by_service_month",
        "revenue_pence",
    ): "Invoiced amount before VAT, in pence (GBP). Perturbed by 10-38% of the largest customer's part, up or down. NULL when suppressed.",
    (
        "subject_requests_monthly",
        "requests",
    ): "Requests received. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "subject_requests_monthly",
        "completed",
    ): "Of those, requests completed by the as-of date. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
    (
        "web_traffic_daily",
        "requests",
    ): "HTTP requests. Perturbed: within 3 of the true count, never 1 or 2. NULL when suppressed.",
}
WEB_INDEX = "ix_web_access_requested_at"
WEB_INDEX_COLUMNS = ["requested_at", "site_section", "status"]


def _placements(table: str) -> tuple[tuple[str, str], ...]:
    return (("statistics", table), ("staging", f"build_{table}"))


def upgrade() -> None:
    bind = op.get_bind()
    indexes = {
        i["name"]: i["column_names"]
        for i in sa.inspect(bind).get_indexes("web_access", schema="personal")
    }
    if indexes.get(WEB_INDEX) != WEB_INDEX_COLUMNS:
        if WEB_INDEX in indexes:
            op.drop_index(WEB_INDEX, table_name="web_access", schema="personal")
        op.create_index(WEB_INDEX, "web_access", WEB_INDEX_COLUMNS, schema="personal")
    if not bind.dialect.supports_comments:
        return
    preparer = bind.dialect.identifier_preparer
    for (table, column), comment in COLUMN_COMMENTS.items():
        for schema, placed in _placements(table):
            target = f"{schema}.{preparer.quote(placed)}.{preparer.quote(column)}"
            bind.execute(sa.text(f"COMMENT ON COLUMN {target} IS :c").bindparams(c=comment))
    for table, comment in TABLE_COMMENTS.items():
        bind.execute(
            sa.text(f"COMMENT ON TABLE statistics.{preparer.quote(table)} IS :c").bindparams(
                c=comment
            )
        )


def downgrade() -> None:
    op.drop_index(WEB_INDEX, table_name="web_access", schema="personal")
    op.create_index(WEB_INDEX, "web_access", ["requested_at"], schema="personal")
