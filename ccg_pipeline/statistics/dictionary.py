"""The analysts' data dictionary, generated from the table definitions in
`ccg_pipeline/warehouse/schema.py` (table and column comments), with one example query per
table. `ccg statistics dictionary` writes it to `docs/data-dictionary.md`; a test fails when the
committed file drifts from the definitions, and another runs every example query.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ccg_pipeline.anonymise.cellkey import CellKeyPerturbation
from ccg_pipeline.policy import load_notice
from ccg_pipeline.warehouse import schema as s

# One example per table, in SQL that runs unchanged on the SQLite file and on PostgreSQL (after
# `SET search_path TO statistics`).
EXAMPLES: dict[str, tuple[str, str]] = {
    "customers_by_quarter": (
        "Active customers per quarter, summed over countries and sectors (each cell carries "
        "its own noise, so the sum's error grows with the square root of the cells summed)",
        "SELECT quarter, SUM(active_customers) AS active_customers,\n"
        "       COUNT(*) AS cells_summed\n"
        "FROM customers_by_quarter\nGROUP BY quarter\nORDER BY quarter DESC\nLIMIT 8",
    ),
    "revenue_by_service_month": (
        "The most recent revenue figures per service",
        "SELECT month, service, invoices, ROUND(revenue_pence / 100.0, 2) AS revenue_gbp\n"
        "FROM revenue_by_service_month\nWHERE invoices IS NOT NULL\n"
        "ORDER BY month DESC, revenue_gbp DESC\nLIMIT 10",
    ),
    "web_traffic_daily": (
        "Requests per browser family and region (shown cells)",
        "SELECT browser_family, region, SUM(requests) AS requests\n"
        "FROM web_traffic_daily\nWHERE requests IS NOT NULL\n"
        "GROUP BY browser_family, region\nORDER BY requests DESC\nLIMIT 10",
    ),
    "marketing_consent_monthly": (
        "Consent and opt-out rates over the last year",
        "SELECT month, contacts, consent_rate, opt_out_rate\n"
        "FROM marketing_consent_monthly\nWHERE contacts IS NOT NULL\n"
        "ORDER BY month DESC\nLIMIT 12",
    ),
    "subject_requests_monthly": (
        "Requests and median days to complete, by type",
        "SELECT request_type, SUM(requests) AS requests,\n"
        "       AVG(median_days_to_complete) AS mean_of_monthly_medians\n"
        "FROM subject_requests_monthly\nWHERE requests IS NOT NULL\n"
        "GROUP BY request_type\nORDER BY request_type",
    ),
    "customer_profiles": (
        "Customers by region, sector and size band (a * is a value generalised away)",
        "SELECT region, sector, size_band, COUNT(*) AS customers\n"
        "FROM customer_profiles\nGROUP BY region, sector, size_band\nORDER BY customers DESC",
    ),
    "frozen_periods": (
        "Which periods are final (their figures never change again)",
        "SELECT table_name, MIN(period) AS first_final, MAX(period) AS last_final,\n"
        "       COUNT(*) AS final_periods\n"
        "FROM frozen_periods\nGROUP BY table_name\nORDER BY table_name",
    ),
    "publications": (
        "What you are reading: the newest publication",
        "SELECT as_of, published_at, k, min_cell\n"
        "FROM publications\nORDER BY published_at DESC\nLIMIT 1",
    ),
}

DEMO_EXAMPLE = "revenue_by_service_month"


def analyst_tables() -> list[sa.Table]:
    return [published for _build, published in s.PUBLISHED] + [s.publications, s.frozen_periods]


def _type(column: sa.Column) -> str:
    return str(column.type.compile(dialect=postgresql.dialect()))


def _perturbation_section() -> list[str]:
    """The error bounds an analyst needs, read from the policy's perturbation table."""
    spec = load_notice().settings.perturbation
    perturbation = CellKeyPerturbation(spec)
    rows = len(perturbation.table)
    lines = [
        "**Every count is perturbed** (cell-key perturbation, the method of the ONS and the "
        f"Australian Bureau of Statistics): a published count is within {spec.max_count_noise} "
        "of the true count, the noise averages to zero, and no count of "
        f"1 to {spec.smallest_published_count - 1} is ever published (a true 1 or 2 comes out "
        f"as 0 or as {spec.smallest_published_count} or more). A zero is a true zero or a "
        "small count perturbed to zero; a row whose counts all came out as zero is left out. "
        "The noise of a cell depends only on who is in it, so the same cell has the same "
        "value in every release. Standard deviation of the noise by true count:",
        "",
        "| true count | " + " | ".join(str(v) for v in range(1, rows)) + f" | {rows} or more |",
        "|---" * (rows + 1) + "|",
        "| noise s.d. | "
        + " | ".join(
            f"{math.sqrt(perturbation.mean_and_variance(v)[1]):.2f}" for v in range(1, rows + 1)
        )
        + " |",
        "",
        "Cells are perturbed independently, so a sum of n cells is off by at most "
        f"{spec.max_count_noise} x n and typically by about "
        f"{math.sqrt(perturbation.mean_and_variance(rows)[1]):.1f} x sqrt(n): sums and "
        "margins you compute are additive within those tolerances. A sum column "
        "(`revenue_pence`) is moved up or down by "
        f"{spec.sum_noise_floor * spec.sum_noise_scale:.0%} to {spec.sum_noise_scale:.0%} of "
        "the largest single customer's part of the cell, so whoever knows every other part "
        "still cannot tell the largest within "
        f"{spec.largest_contribution_share:.1%} of its value. A NULL means **suppressed**: a "
        f"revenue row with fewer than {spec.min_sum_contributors} contributing customers or "
        f"a perturbed invoice count of {spec.min_sum_contributors} or less, or a row hidden "
        "beside one so it cannot be worked out from totals; a NULL median of days means fewer "
        "than the minimum cell size of completed requests, as published.",
        "",
    ]
    return lines


def render() -> str:
    lines = [
        "# Statistics data dictionary",
        "",
        "<!-- Generated by `ccg statistics dictionary` from ccg_pipeline/warehouse/schema.py;"
        " do not edit by hand. -->",
        "",
        "Everything an analyst can read. On SQLite it is the file `analyst/statistics.sqlite` "
        "under `CCG_HOME`; on PostgreSQL the `statistics` schema, readable by members of the "
        "`ccg_analyst` role (`SET search_path TO statistics` first).",
        "",
        *_perturbation_section(),
        "Only **closed** periods are published (a day, month or quarter that has ended; request "
        "months three months after they end, when every request in them is due). A closed "
        "period's rows are computed once, at the first release after it closes, and then "
        "published unchanged in every later release, whatever happens to the people behind "
        "them: `frozen_periods` lists the final periods. `customer_profiles` is one snapshot, "
        "taken at the first release after a quarter closes and unchanged until the next "
        "quarter closes (`frozen_periods` names its quarter).",
        "",
    ]
    for table in analyst_tables():
        keys = {c.name for c in table.primary_key.columns}
        lines += [f"## `{table.name}`", "", table.comment or "", ""]
        lines += ["| column | type | key | meaning |", "|---|---|---|---|"]
        for column in table.columns:
            key = "yes" if column.name in keys else ""
            lines.append(f"| `{column.name}` | {_type(column)} | {key} | {column.comment or ''} |")
        title, query = EXAMPLES[table.name]
        lines += ["", f"Example: {title}.", "", "```sql", query, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
