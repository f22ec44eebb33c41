"""Build every published statistics table as a DataFrame, protected and ready for staging.

Each builder reads the personal zone (live rows, minus held subjects: a hold excludes a person
from all processing but storage) and the anonymised roll-ups in staging (the statistical value of
rows retention has deleted), as of one date. Counts are then protected row by row: a row with any
count between 1 and the threshold is suppressed whole (primary), and more rows are suppressed so
no margin group hides exactly one (secondary, `anonymise.cells`). Whole rows, because a row's
counts are tied to each other (active customers follow from new and ceased ones), so hiding one
count alone could be undone from its neighbours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.anonymise import hierarchies as h
from ccg_pipeline.anonymise.cells import suppression_pattern
from ccg_pipeline.anonymise.kanon import QuasiIdentifier, enforce_k_anonymity, min_l_diversity
from ccg_pipeline.policy.models import Notice
from ccg_pipeline.retention.rules import (
    CONSENT_TYPES,
    OPT_OUT_TYPES,
    SweepDates,
    restricted_company_ids,
    restricted_subject_ids,
)
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import month_label

# At most this share of customer records may be dropped by local suppression; beyond it the
# search generalises further instead.
MAX_RECORD_SUPPRESSION = 0.05


@dataclass(frozen=True)
class StatisticsContext:
    conn: Connection
    as_of: dt.date
    k: int
    min_cell: int
    dates: SweepDates

    @classmethod
    def create(cls, conn: Connection, notice: Notice, as_of: dt.date) -> StatisticsContext:
        dates = SweepDates.for_date(notice, as_of, use_worklist=False)
        settings = notice.settings
        return cls(conn, as_of, settings.k_anonymity, settings.min_cell_count, dates)

    @property
    def end(self) -> dt.datetime:
        """Everything strictly before this happened on or before the as-of date."""
        return self.dates.as_of_end

    def frame(self, query: sa.Select) -> pd.DataFrame:
        return read_frame(self.conn, query)


def read_frame(conn: Connection, query: sa.Select) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


@dataclass
class BuiltTable:
    """One table ready for staging, with what protecting it cost (counts only)."""

    build: sa.Table
    frame: pd.DataFrame
    cells: int = 0
    primary: int = 0
    secondary: int = 0
    records_in: int = 0
    records_suppressed: int = 0
    generalisation: dict[str, int] = field(default_factory=dict)
    precision_loss: float = 0.0
    min_group_size: int | None = None
    min_l_diversity: int | None = None
    # Rows of final periods carried over unchanged from the published table (`freeze`).
    frozen_rows: int = 0


def protect_rows(
    table: pd.DataFrame,
    dimensions: list[str],
    counts: list[str],
    threshold: int,
    *,
    driver: pd.Series | None = None,
    dependents: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, int, int]:
    """Suppress whole rows (set `counts` and `dependents` to NULL) by the smallest non-zero
    count of the row, or by `driver` (for example the number of contributors behind a sum).
    Returns the table, and the primary and secondary suppression counts."""
    if driver is None:
        values = table[counts].astype("float64").where(table[counts] > 0)
        driver = values.min(axis=1).fillna(0)
    judged = table[dimensions].assign(_driver=driver.to_numpy())
    hidden, report = suppression_pattern(judged, dimensions, "_driver", threshold)
    out = table.copy()
    for column in counts:
        out[column] = out[column].astype("Int64").mask(hidden)
    for column in dependents:
        out[column] = out[column].mask(hidden)
    return out, report.primary, report.secondary


def protected(
    ctx: StatisticsContext,
    build: sa.Table,
    frame: pd.DataFrame,
    *,
    records_in: int,
    driver: pd.Series | None = None,
) -> BuiltTable:
    """`protect_rows` with everything read from the table definition: the primary key is the
    dimensions, count and sum columns (`Column.info`) are suppressed as integers, and every other
    column (rates, medians) goes with its row."""
    dimensions = s.dimensions_of(build)
    counts = s.columns_of_kind(build, s.COUNT)
    sums = s.columns_of_kind(build, s.SUM)
    if sums and driver is None:
        raise ValueError(f"{build.name} has sums, so it needs a contributor count to judge by")
    dependents = tuple(c.name for c in build.columns if c.name not in {*dimensions, *counts, *sums})
    frame, primary, secondary = protect_rows(
        frame[[c.name for c in build.columns]],
        dimensions,
        counts + sums,
        ctx.min_cell,
        driver=driver,
        dependents=dependents,
    )
    return BuiltTable(
        build, frame, cells=len(frame), primary=primary, secondary=secondary, records_in=records_in
    )


def _quarter_index(labels: pd.Series) -> pd.Series:
    """`2024-Q3` -> 2024 * 4 + 2, so quarter arithmetic is integer arithmetic."""
    parts = labels.str.extract(r"^(\d{4})-Q([1-4])$").astype("float64")
    return parts[0] * 4 + parts[1] - 1


def _quarter_label(index: np.ndarray) -> np.ndarray:
    index = index.astype(np.int64)
    years, quarters = index // 4, index % 4 + 1
    return np.char.add(np.char.add(years.astype(str), "-Q"), quarters.astype(str))


def _as_quarter(timestamps: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(timestamps)
    return (stamps.dt.year * 4 + (stamps.dt.month - 1) // 3).astype("float64")


def customers_by_quarter(ctx: StatisticsContext) -> BuiltTable:
    c, anon = s.companies, s.anon_customers
    live = ctx.frame(
        sa.select(
            c.c.country,
            sa.func.coalesce(c.c.sector, "unknown").label("sector"),
            c.c.created_at,
            c.c.closed_at,
        ).where(c.c.created_at < ctx.end, c.c.company_id.not_in(restricted_company_ids(ctx.dates)))
    )
    closed = pd.to_datetime(live["closed_at"])
    live_records = pd.DataFrame(
        {
            "country": live["country"],
            "sector": live["sector"],
            "start": _as_quarter(live["created_at"]),
            # Closed after the as-of date means still a customer on it.
            "end": _as_quarter(closed.where(closed < pd.Timestamp(ctx.end))),
            "weight": 1,
        }
    )
    retired = ctx.frame(sa.select(anon))
    retired_end = _quarter_index(retired["ceased_quarter"])
    retired_records = pd.DataFrame(
        {
            "country": retired["country"],
            "sector": retired["sector"],
            # Roll-ups from before start quarters were kept count as active in their last one.
            "start": _quarter_index(retired["started_quarter"]).fillna(retired_end),
            "end": retired_end,
            "weight": retired["customers"].astype(np.int64),
        }
    )
    records = pd.concat([live_records, retired_records], ignore_index=True)
    now = ctx.as_of.year * 4 + (ctx.as_of.month - 1) // 3
    records = records[records["start"] <= now]
    return protected(
        ctx,
        s.build_customers_by_quarter,
        _stock_and_flows(records, now),
        records_in=int(records["weight"].sum()),
    )


def _stock_and_flows(records: pd.DataFrame, now: int) -> pd.DataFrame:
    """New, active-during and ceased counts per quarter and group, from start/end quarters
    (end NaN = still active), by difference arrays: one pass, whatever the number of quarters."""
    if records.empty:
        return pd.DataFrame(columns=[c.name for c in s.build_customers_by_quarter.columns])
    groups = ["country", "sector"]
    first = int(records["start"].min())
    span = now - first + 1
    start = records["start"].astype(np.int64) - first
    ended = records["end"].notna()
    end = records["end"].fillna(now).astype(np.int64).clip(upper=now) - first
    group_codes, group_values = pd.factorize(pd.MultiIndex.from_frame(records[groups]), sort=True)
    n_groups = len(group_values)
    weight = records["weight"].to_numpy(dtype=np.int64)

    def per_cell(offsets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        w = weight if mask is None else weight * mask
        flat = group_codes * (span + 1) + offsets
        return np.bincount(flat, weights=w, minlength=n_groups * (span + 1)).reshape(
            n_groups, span + 1
        )

    new = per_cell(start.to_numpy())[:, :span]
    ceased = per_cell(end.to_numpy(), ended.to_numpy())[:, :span]
    delta = per_cell(start.to_numpy()) - per_cell(end.to_numpy() + 1)
    active = np.cumsum(delta, axis=1)[:, :span]
    quarters = np.tile(_quarter_label(np.arange(first, now + 1)), n_groups)
    table = pd.DataFrame(
        {
            "quarter": quarters,
            "country": np.repeat(group_values.get_level_values(0).to_numpy(), span),
            "sector": np.repeat(group_values.get_level_values(1).to_numpy(), span),
            "new_customers": new.ravel().astype(np.int64),
            "active_customers": active.ravel().astype(np.int64),
            "ceased_customers": ceased.ravel().astype(np.int64),
        }
    )
    return table[table[["new_customers", "active_customers", "ceased_customers"]].any(axis=1)]


def revenue_by_service_month(ctx: StatisticsContext) -> BuiltTable:
    i, o, anon = s.invoices, s.orders, s.anon_invoices
    dialect = ctx.conn.dialect.name
    month = month_label(i.c.issued_on, dialect)
    service = sa.func.coalesce(o.c.service, "unknown")
    live = ctx.frame(
        sa.select(
            month.label("month"),
            service.label("service"),
            sa.func.count().label("invoices"),
            sa.func.sum(i.c.amount_minor).label("revenue_pence"),
            sa.func.count(sa.distinct(i.c.company_id)).label("contributors"),
        )
        .select_from(i.outerjoin(o, o.c.order_id == i.c.order_id))
        .where(i.c.issued_on <= ctx.as_of, i.c.company_id.not_in(restricted_company_ids(ctx.dates)))
        .group_by(month, service)
    )
    retired = ctx.frame(
        sa.select(
            anon.c.issued_month.label("month"),
            anon.c.service,
            sa.func.sum(anon.c.invoices).label("invoices"),
            sa.func.sum(anon.c.amount_minor).label("revenue_pence"),
            # Customers are invoiced at most once per service and month, so a retired invoice
            # stands for one contributor.
            sa.func.sum(anon.c.invoices).label("contributors"),
        )
        .where(anon.c.issued_month <= ctx.as_of.strftime("%Y-%m"))
        .group_by(anon.c.issued_month, anon.c.service)
    )
    combined = (
        pd.concat([live, retired], ignore_index=True)
        .groupby(["month", "service"], as_index=False)[
            ["invoices", "revenue_pence", "contributors"]
        ]
        .sum()
    )
    return protected(
        ctx,
        s.build_revenue_by_service_month,
        combined,
        records_in=int(combined["invoices"].sum()),
        driver=combined["contributors"],
    )


def web_traffic_daily(ctx: StatisticsContext) -> BuiltTable:
    """From the roll-ups written at ingest: the raw log lines are never read here."""
    w = s.anon_web_traffic
    keys = [w.c.day, w.c.site_section, w.c.browser_family, w.c.region]
    combined = ctx.frame(
        sa.select(*keys, sa.func.sum(w.c.requests).label("requests"))
        .where(w.c.day <= ctx.as_of)
        .group_by(*keys)
    )
    combined["day"] = pd.to_datetime(combined["day"]).dt.date
    return protected(
        ctx, s.build_web_traffic_daily, combined, records_in=int(combined["requests"].sum())
    )


def _months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def marketing_consent_monthly(ctx: StatisticsContext) -> BuiltTable:
    a, cc = s.crm_activities, s.crm_contacts
    dialect = ctx.conn.dialect.name
    held = restricted_subject_ids(ctx.dates)
    month = month_label(a.c.occurred_at, dialect)
    kind = sa.case((a.c.activity_type.in_(CONSENT_TYPES), "consents"), else_="opt_outs")
    events = ctx.frame(
        sa.select(month.label("month"), kind.label("kind"), sa.func.count().label("n"))
        .where(
            a.c.activity_type.in_(CONSENT_TYPES + OPT_OUT_TYPES),
            a.c.occurred_at < ctx.end,
            sa.or_(a.c.subject_id.is_(None), a.c.subject_id.not_in(held)),
        )
        .group_by(month, kind)
    )
    created = month_label(cc.c.created_at, dialect)
    contacts = ctx.frame(
        sa.select(created.label("month"), sa.func.count().label("n"))
        .where(cc.c.created_at < ctx.end, cc.c.subject_id.not_in(held))
        .group_by(created)
    )
    if events.empty:
        frame = pd.DataFrame(columns=[c.name for c in s.build_marketing_consent_monthly.columns])
        return BuiltTable(s.build_marketing_consent_monthly, frame)
    flows = events.pivot_table(index="month", columns="kind", values="n", fill_value=0)
    first = min([flows.index.min(), *contacts["month"].dropna()])
    months = _months(first, ctx.as_of.strftime("%Y-%m"))
    table = pd.DataFrame({"month": months})
    table = table.merge(flows.reset_index(), on="month", how="left")
    table = table.merge(contacts.rename(columns={"n": "new_contacts"}), on="month", how="left")
    for column in ("consents", "opt_outs", "new_contacts"):
        table[column] = table.get(column, 0)
        table[column] = table[column].fillna(0).astype(np.int64)
    # Contacts held at each month end: those created by then and not since deleted.
    table["contacts"] = table["new_contacts"].cumsum()
    table = table[table[["consents", "opt_outs"]].any(axis=1)].drop(columns="new_contacts")
    base = table["contacts"].where(table["contacts"] > 0)
    table["consent_rate"] = (table["consents"] / base).round(4)
    table["opt_out_rate"] = (table["opt_outs"] / base).round(4)
    return protected(
        ctx,
        s.build_marketing_consent_monthly,
        table,
        records_in=int(table["consents"].sum() + table["opt_outs"].sum()),
    )


def subject_requests_monthly(ctx: StatisticsContext) -> BuiltTable:
    r = s.subject_requests
    requests = ctx.frame(
        sa.select(r.c.request_type, r.c.received_at, r.c.completed_at).where(
            r.c.received_at < ctx.end
        )
    )
    columns = [c.name for c in s.build_subject_requests_monthly.columns]
    if requests.empty:
        return BuiltTable(s.build_subject_requests_monthly, pd.DataFrame(columns=columns))
    received = pd.to_datetime(requests["received_at"])
    completed = pd.to_datetime(requests["completed_at"])
    completed = completed.where(completed < pd.Timestamp(ctx.end))
    requests = requests.assign(
        month=received.dt.strftime("%Y-%m"),
        done=completed.notna(),
        days=(completed - received).dt.total_seconds() / 86_400,
    )
    table = (
        requests.groupby(["month", "request_type"], as_index=False)
        .agg(
            requests=("request_type", "size"),
            completed=("done", "sum"),
            median_days_to_complete=("days", "median"),
        )
        .astype({"completed": np.int64})
    )
    table["median_days_to_complete"] = table["median_days_to_complete"].round(1)
    return protected(ctx, s.build_subject_requests_monthly, table, records_in=len(requests))


PROFILE_QUASI_IDENTIFIERS = [
    QuasiIdentifier("region", [h.country_to_region, h.suppress_all]),
    QuasiIdentifier("sector", [h.as_text, h.suppress_all]),
    QuasiIdentifier("size_band", h.employee_levels()[1:]),
    QuasiIdentifier("revenue_band", h.revenue_levels()[1:]),
    QuasiIdentifier("customer_since", h.date_levels()[2:]),
]
PROFILE_SENSITIVE = "main_service"


def customer_profiles(ctx: StatisticsContext) -> BuiltTable:
    """k-anonymous customer records: global recoding of the quasi-identifiers plus local
    suppression of the few records still in small classes (`anonymise.kanon`)."""
    c, k = s.companies, s.contracts
    largest = (
        sa.select(k.c.service)
        .where(k.c.company_id == c.c.company_id, k.c.starts_on <= ctx.as_of)
        .order_by(k.c.annual_fee_minor.desc(), k.c.contract_id)
        .limit(1)
        .scalar_subquery()
    )
    live = ctx.frame(
        sa.select(
            c.c.country.label("region"),
            sa.func.coalesce(c.c.sector, "unknown").label("sector"),
            c.c.employees.label("size_band"),
            c.c.annual_revenue_gbp.label("revenue_band"),
            c.c.created_at.label("customer_since"),
            c.c.closed_at,
            sa.func.coalesce(largest, "none").label("main_service"),
        )
        .where(c.c.created_at < ctx.end, c.c.company_id.not_in(restricted_company_ids(ctx.dates)))
        .order_by(c.c.company_id)
    )
    closed = pd.to_datetime(live.pop("closed_at"))
    live["status"] = np.where(closed < pd.Timestamp(ctx.end), "ceased", "active")
    live["customer_since"] = pd.to_datetime(live["customer_since"])
    out, report = enforce_k_anonymity(
        live, PROFILE_QUASI_IDENTIFIERS, ctx.k, max_suppression=MAX_RECORD_SUPPRESSION
    )
    columns = [q.column for q in PROFILE_QUASI_IDENTIFIERS]
    # Sorted by content before numbering, so row order says nothing about which company is which.
    out = out.sort_values([*columns, "status", PROFILE_SENSITIVE], kind="stable")
    out = out.reset_index(drop=True)
    out.insert(0, "profile_id", np.arange(1, len(out) + 1))
    return BuiltTable(
        s.build_customer_profiles,
        out[[col.name for col in s.build_customer_profiles.columns]],
        records_in=report.rows_in,
        records_suppressed=report.suppressed_rows,
        generalisation=report.levels,
        precision_loss=round(report.precision_loss, 4),
        min_group_size=report.min_group_size if len(out) else None,
        min_l_diversity=min_l_diversity(out, columns, PROFILE_SENSITIVE) if len(out) else None,
    )


BUILDERS: dict[str, Callable[[StatisticsContext], BuiltTable]] = {
    "customers_by_quarter": customers_by_quarter,
    "revenue_by_service_month": revenue_by_service_month,
    "web_traffic_daily": web_traffic_daily,
    "marketing_consent_monthly": marketing_consent_monthly,
    "subject_requests_monthly": subject_requests_monthly,
    "customer_profiles": customer_profiles,
}
