"""Build every published statistics table as a DataFrame, protected and ready for staging.

Each builder reads the personal zone (live rows, minus held subjects: a hold excludes a person
from all processing but storage) and the anonymised roll-ups in staging (the statistical value of
rows retention has deleted), as of one date. Every count and sum is then protected by cell-key
perturbation (`anonymise.cellkey`): the noise of a cell is a function of who contributes to it, so
the same contributors always get the same noise and no count of 1 or 2 is ever published. Sums
whose cell has fewer contributors than `min_sum_contributors`, or whose perturbed count is not
above it, are suppressed as whole rows, with secondary suppression (`anonymise.cells`). `customer_profiles`, record-level, is k-anonymous.
The release audit in the validation gate (`validation.release_audit`) then proves, by linear
programming over everything published, that no cell can be narrowed below the protection level.
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
from ccg_pipeline.anonymise.cellkey import KEY_SPACE, CellKeyPerturbation, record_keys
from ccg_pipeline.anonymise.cells import suppression_pattern
from ccg_pipeline.anonymise.kanon import QuasiIdentifier, enforce_k_anonymity, min_l_diversity
from ccg_pipeline.policy.models import LawfulBasis, Notice
from ccg_pipeline.purposes import Kind, Processing, declare
from ccg_pipeline.retention.rules import (
    CONSENT_TYPES,
    OPT_OUT_TYPES,
    SweepDates,
    restricted_company_ids,
    restricted_subject_ids,
)
from ccg_pipeline.statistics.freeze import last_closed_quarter, quarter_end_of
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import frame_of, month_label

# The counts of customers_by_quarter: a flow in, the stock during the quarter, a flow out.
CUSTOMER_FLOWS = ("new_customers", "active_customers", "ceased_customers")

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
    perturbation: CellKeyPerturbation
    # Keys the record keys (`anonymise.cellkey`); without it nobody can compute a cell's noise.
    secret: str = field(repr=False)

    @classmethod
    def create(
        cls, conn: Connection, notice: Notice, as_of: dt.date, secret: str
    ) -> StatisticsContext:
        dates = SweepDates.for_date(notice, as_of, use_worklist=False)
        settings = notice.settings
        return cls(
            conn,
            as_of,
            settings.k_anonymity,
            settings.min_cell_count,
            dates,
            CellKeyPerturbation(settings.perturbation),
            secret,
        )

    def record_keys(self, ids: pd.Series, domain: str) -> np.ndarray:
        return record_keys(ids.astype(str), secret=self.secret, domain=domain)

    @property
    def end(self) -> dt.datetime:
        """Everything strictly before this happened on or before the as-of date."""
        return self.dates.as_of_end

    def frame(self, query: sa.Select) -> pd.DataFrame:
        return read_frame(self.conn, query)


def read_frame(conn: Connection, query: sa.Select) -> pd.DataFrame:
    return frame_of(conn.execute(query))


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
    # Count and sum cells published with cell-key noise.
    perturbed: int = 0


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
    cell_keys: dict[str, np.ndarray],
    top: pd.Series | None = None,
    top_key: pd.Series | None = None,
    driver: pd.Series | None = None,
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> BuiltTable:
    """Perturb every count column (`Column.info` kind) by its cell key and every sum by its
    largest contribution (`top`), in the direction and size that contributor's record key
    (`top_key`) gives, recompute the derived columns (`derive`, e.g. rates) from the perturbed
    figures, drop rows that came out all zero, and suppress whole rows whose sums have fewer
    contributors (`driver`) than `min_sum_contributors`."""
    dimensions = s.dimensions_of(build)
    counts = s.columns_of_kind(build, s.COUNT)
    sums = s.columns_of_kind(build, s.SUM)
    if sums and (driver is None or top is None or top_key is None):
        raise ValueError(f"{build.name} has sums: it needs contributor counts and top values")
    frame = frame.reset_index(drop=True).copy()
    for column in counts:
        frame[column] = ctx.perturbation.counts(frame[column].to_numpy(), cell_keys[column])
    for column in sums:
        assert top is not None and top_key is not None  # checked above
        frame[column] = ctx.perturbation.sums(
            frame[column].to_numpy(), top.to_numpy(), top_key.to_numpy()
        )
    if derive is not None:
        frame = derive(frame)
    kept = frame[counts + sums].any(axis=1).to_numpy()
    frame = frame[kept].reset_index(drop=True)
    primary = secondary = 0
    if driver is not None:
        # Publish a sum only when its true contributors reach the threshold and every published
        # count of its row exceeds it: a shown row then tells the attacker no more than "at
        # least the threshold", which the release audit adds to its bounds. (0 < 0.5 < any
        # threshold marks a row as primary.)
        threshold = ctx.perturbation.spec.min_sum_contributors
        driver = driver.reset_index(drop=True)[kept].reset_index(drop=True)
        driver = driver.where((frame[counts] > threshold).all(axis=1), 0.5)
        dependents = tuple(
            c.name for c in build.columns if c.name not in {*dimensions, *counts, *sums}
        )
        frame, primary, secondary = protect_rows(
            frame[[c.name for c in build.columns]],
            dimensions,
            counts + sums,
            threshold,
            driver=driver,
            dependents=dependents,
        )
    frame = frame[[c.name for c in build.columns]]
    return BuiltTable(
        build,
        frame,
        cells=len(frame),
        primary=primary,
        secondary=secondary,
        records_in=records_in,
        perturbed=int(frame[counts + sums].notna().sum().sum()),
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
            c.c.company_id,
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
            "key": ctx.record_keys(live["company_id"], "company"),
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
            # A roll-up row stands for its customers together: one record key for the row.
            "key": ctx.record_keys(
                _row_labels(retired, list(anon.primary_key.columns.keys())), "anon_customers"
            ),
        }
    )
    records = pd.concat([live_records, retired_records], ignore_index=True)
    now = ctx.as_of.year * 4 + (ctx.as_of.month - 1) // 3
    records = records[records["start"] <= now]
    table = _stock_and_flows(records, now)
    return protected(
        ctx,
        s.build_customers_by_quarter,
        table,
        records_in=int(records["weight"].sum()),
        cell_keys={c: table[f"_key_{c}"].to_numpy() for c in CUSTOMER_FLOWS},
    )


def _row_labels(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One text label per row from its key columns: a stable id for rows that have no other.
    Each column's text is `astype(str)`'s, joined with "|" (a column at a time: joining row by
    row was most of a daily build once the web traffic held years of days). The labels key the
    cells' noise, so they must never change (`tests/unit/test_statistics_labels.py`)."""
    if not len(frame):
        return frame.index.to_series()
    texts = [frame[column].astype(str) for column in columns]
    missing = [column for column, text in zip(columns, texts, strict=True) if text.isna().any()]
    if missing:  # a cell without its full key would share another's noise
        raise ValueError(f"row labels: missing values in key column(s) {missing}")
    return texts[0].str.cat(texts[1:], sep="|") if len(texts) > 1 else texts[0]


def _stock_and_flows(records: pd.DataFrame, now: int) -> pd.DataFrame:
    """New, active-during and ceased counts per quarter and group, from start/end quarters
    (end NaN = still active), by difference arrays: one pass, whatever the number of quarters.
    The same arrays over the record keys give each cell's key (`_key_<column>`)."""
    flows = list(CUSTOMER_FLOWS)
    if records.empty:
        columns = [c.name for c in s.build_customers_by_quarter.columns]
        return pd.DataFrame(columns=columns + [f"_key_{c}" for c in flows])
    groups = ["country", "sector"]
    first = int(records["start"].min())
    span = now - first + 1
    start = records["start"].astype(np.int64) - first
    ended = records["end"].notna()
    end = records["end"].fillna(now).astype(np.int64).clip(upper=now) - first
    group_codes, group_values = pd.factorize(pd.MultiIndex.from_frame(records[groups]), sort=True)
    n_groups = len(group_values)
    weight = records["weight"].to_numpy(dtype=np.int64)
    key = records["key"].to_numpy(dtype=np.int64)

    def per_cell(w: np.ndarray, offsets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        w = w if mask is None else w * mask
        flat = group_codes * (span + 1) + offsets
        return np.bincount(flat, weights=w, minlength=n_groups * (span + 1)).reshape(
            n_groups, span + 1
        )

    def stock_and_flows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        new = per_cell(w, start.to_numpy())[:, :span]
        ceased = per_cell(w, end.to_numpy(), ended.to_numpy())[:, :span]
        delta = per_cell(w, start.to_numpy()) - per_cell(w, end.to_numpy() + 1)
        return new, np.cumsum(delta, axis=1)[:, :span], ceased

    new, active, ceased = stock_and_flows(weight)
    keys = [(k.astype(np.int64) % KEY_SPACE).ravel() for k in stock_and_flows(key)]
    quarters = np.tile(_quarter_label(np.arange(first, now + 1)), n_groups)
    table = pd.DataFrame(
        {
            "quarter": quarters,
            "country": np.repeat(group_values.get_level_values(0).to_numpy(), span),
            "sector": np.repeat(group_values.get_level_values(1).to_numpy(), span),
            "new_customers": new.ravel().astype(np.int64),
            "active_customers": active.ravel().astype(np.int64),
            "ceased_customers": ceased.ravel().astype(np.int64),
            **{f"_key_{c}": k for c, k in zip(flows, keys, strict=True)},
        }
    )
    return table[table[flows].any(axis=1)]


def revenue_by_service_month(ctx: StatisticsContext) -> BuiltTable:
    """Invoices and revenue per month and service. Read invoice by invoice, because the cell key
    sums the invoices' record keys and the sum's noise scales with the largest company's share."""
    i, o, anon = s.invoices, s.orders, s.anon_invoices
    invoices = ctx.frame(
        sa.select(
            month_label(i.c.issued_on).label("month"),
            sa.func.coalesce(o.c.service, "unknown").label("service"),
            i.c.company_id,
            i.c.invoice_id,
            i.c.amount_minor,
        )
        .select_from(i.outerjoin(o, o.c.order_id == i.c.order_id))
        .where(i.c.issued_on <= ctx.as_of, i.c.company_id.not_in(restricted_company_ids(ctx.dates)))
    )
    invoices["key"] = ctx.record_keys(invoices["invoice_id"], "invoice")
    cells = ["month", "service"]
    per_company = invoices.groupby([*cells, "company_id"], as_index=False).agg(
        invoices=("invoice_id", "size"), revenue_pence=("amount_minor", "sum"), key=("key", "sum")
    )
    # The sum noise follows the largest contributor's own record key, so a customer invoiced
    # month after month gets the same relative noise each time: the months cannot be averaged.
    per_company["contributor_key"] = ctx.record_keys(per_company["company_id"], "company")
    retired = ctx.frame(
        sa.select(anon).where(anon.c.issued_month <= ctx.as_of.strftime("%Y-%m"))
    ).rename(columns={"issued_month": "month", "amount_minor": "revenue_pence"})
    # Customers are invoiced at most once per service and month, so a retired invoice stands
    # for one contributor. Which of a roll-up row's invoices was the largest is not kept, so the
    # row's total stands in for it: the noise is then at least as large as it must be.
    retired_contributors = pd.DataFrame(
        {
            "month": retired["month"],
            "service": retired["service"],
            "company_id": None,
            "invoices": retired["invoices"].astype(np.int64),
            "revenue_pence": retired["revenue_pence"].astype(np.int64),
            "key": ctx.record_keys(
                _row_labels(retired, ["month", "country", "service"]), "anon_invoices"
            ),
            "contributors": retired["invoices"].astype(np.int64),
            "top": retired["revenue_pence"].astype("float64"),
        }
    )
    retired_contributors["contributor_key"] = retired_contributors["key"]
    live_contributors = per_company.assign(contributors=1, top=per_company["revenue_pence"])
    contributions = pd.concat([live_contributors, retired_contributors], ignore_index=True)
    largest = contributions.sort_values("top", ascending=False, kind="stable").drop_duplicates(
        cells
    )
    combined = contributions.groupby(cells, as_index=False).agg(
        invoices=("invoices", "sum"),
        revenue_pence=("revenue_pence", "sum"),
        contributors=("contributors", "sum"),
        top=("top", "max"),
        key=("key", "sum"),
    )
    combined = combined.merge(
        largest[[*cells, "contributor_key"]].rename(columns={"contributor_key": "top_key"}),
        on=cells,
        how="left",
    )
    cell_key = combined["key"].to_numpy(dtype=np.int64) % KEY_SPACE
    return protected(
        ctx,
        s.build_revenue_by_service_month,
        combined,
        records_in=int(combined["invoices"].sum()),
        cell_keys={"invoices": cell_key, "revenue_pence": cell_key},
        top=combined["top"],
        top_key=combined["top_key"],
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
    # The log lines behind a roll-up are gone, so the cell itself is the record: same cell, same
    # noise, in every release.
    dimensions = s.dimensions_of(s.build_web_traffic_daily)
    cell_key = ctx.record_keys(_row_labels(combined, dimensions), "web_traffic")
    return protected(
        ctx,
        s.build_web_traffic_daily,
        combined,
        records_in=int(combined["requests"].sum()),
        cell_keys={"requests": cell_key},
    )


def _months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def marketing_consent_monthly(ctx: StatisticsContext) -> BuiltTable:
    a, cc = s.crm_activities, s.crm_contacts
    held = restricted_subject_ids(ctx.dates)
    kind = sa.case((a.c.activity_type.in_(CONSENT_TYPES), "consents"), else_="opt_outs")
    events = ctx.frame(
        sa.select(
            month_label(a.c.occurred_at).label("month"),
            kind.label("kind"),
            a.c.activity_id,
        ).where(
            a.c.activity_type.in_(CONSENT_TYPES + OPT_OUT_TYPES),
            a.c.occurred_at < ctx.end,
            sa.or_(a.c.subject_id.is_(None), a.c.subject_id.not_in(held)),
        )
    )
    contacts = ctx.frame(
        sa.select(month_label(cc.c.created_at).label("month"), cc.c.crm_contact_id).where(
            cc.c.created_at < ctx.end, cc.c.subject_id.not_in(held)
        )
    )
    if events.empty:
        frame = pd.DataFrame(columns=[c.name for c in s.build_marketing_consent_monthly.columns])
        return BuiltTable(s.build_marketing_consent_monthly, frame)
    events["key"] = ctx.record_keys(events["activity_id"], "crm_activity")
    contacts["key"] = ctx.record_keys(contacts["crm_contact_id"], "crm_contact")
    flows = events.groupby(["month", "kind"]).agg(n=("key", "size"), key=("key", "sum"))
    flows = flows.unstack("kind", fill_value=0)
    flows.columns = [f"{kind}" if n == "n" else f"_key_{kind}" for n, kind in flows.columns]
    created = contacts.groupby("month").agg(new_contacts=("key", "size"), _key_new=("key", "sum"))
    first = min([flows.index.min(), *created.index.dropna()])
    table = pd.DataFrame({"month": _months(first, ctx.as_of.strftime("%Y-%m"))})
    table = table.merge(flows.reset_index(), on="month", how="left")
    table = table.merge(created.reset_index(), on="month", how="left")
    for column in ("consents", "opt_outs", "new_contacts", "_key_consents", "_key_opt_outs"):
        table[column] = table.get(column, 0)
        table[column] = table[column].fillna(0).astype(np.int64)
    # Contacts held at each month end: those created by then and not since deleted. The stock's
    # cell key is the running sum of its contributors' keys, so each month's noise is its own.
    table["contacts"] = table["new_contacts"].cumsum()
    table["_key_contacts"] = table["_key_new"].fillna(0).astype(np.int64).cumsum()
    table = table[table[["consents", "opt_outs"]].any(axis=1)]

    def rates(frame: pd.DataFrame) -> pd.DataFrame:
        base = frame["contacts"].where(frame["contacts"] > 0)
        return frame.assign(
            consent_rate=(frame["consents"] / base).round(4),
            opt_out_rate=(frame["opt_outs"] / base).round(4),
        )

    return protected(
        ctx,
        s.build_marketing_consent_monthly,
        table,
        records_in=int(table["consents"].sum() + table["opt_outs"].sum()),
        cell_keys={
            c: table[f"_key_{c}"].to_numpy() % KEY_SPACE
            for c in ("consents", "opt_outs", "contacts")
        },
        derive=rates,
    )


def subject_requests_monthly(ctx: StatisticsContext) -> BuiltTable:
    r = s.subject_requests
    requests = ctx.frame(
        sa.select(r.c.request_id, r.c.request_type, r.c.received_at, r.c.completed_at).where(
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
        key=ctx.record_keys(requests["request_id"], "subject_request"),
    )
    requests["done_key"] = requests["key"].where(requests["done"], 0)
    table = (
        requests.groupby(["month", "request_type"], as_index=False)
        .agg(
            requests=("request_type", "size"),
            completed=("done", "sum"),
            median_days_to_complete=("days", "median"),
            _key_requests=("key", "sum"),
            _key_completed=("done_key", "sum"),
        )
        .astype({"completed": np.int64})
    )

    def hide_small_medians(frame: pd.DataFrame) -> pd.DataFrame:
        # A median of a few requests is nearly one person's wait: published only from the
        # minimum cell size of completed requests up, judged on the published (perturbed)
        # count, so whether a median shows says nothing the count does not.
        median = frame["median_days_to_complete"].astype("float64").round(1)
        return frame.assign(
            median_days_to_complete=median.where(frame["completed"] >= ctx.min_cell)
        )

    return protected(
        ctx,
        s.build_subject_requests_monthly,
        table,
        records_in=len(requests),
        cell_keys={c: table[f"_key_{c}"].to_numpy() % KEY_SPACE for c in ("requests", "completed")},
        derive=hide_small_medians,
    )


PROFILE_QUASI_IDENTIFIERS = [
    QuasiIdentifier("region", [h.country_to_region, h.suppress_all]),
    QuasiIdentifier("sector", h.sector_levels()),
    QuasiIdentifier("size_band", h.employee_levels()[1:]),
    QuasiIdentifier("revenue_band", h.revenue_levels()[1:]),
    QuasiIdentifier("customer_since", h.date_levels()[2:]),
]
PROFILE_SENSITIVE = "main_service"


def customer_profiles(ctx: StatisticsContext) -> BuiltTable:
    """k-anonymous records of the customers on the last day of the newest closed quarter: global
    recoding of the quasi-identifiers plus local suppression of the few records still in small
    classes (`anonymise.kanon`). Dated to the quarter end so that its class counts relate exactly
    to that quarter of `customers_by_quarter`, which lets the release audit take them into
    account (an attacker would; see `validation.release_audit`)."""
    c, k = s.companies, s.contracts
    quarter_end = quarter_end_of(last_closed_quarter(ctx.as_of))
    end = dt.datetime.combine(quarter_end + dt.timedelta(days=1), dt.time())
    largest = (
        sa.select(k.c.service)
        .where(k.c.company_id == c.c.company_id, k.c.starts_on <= quarter_end)
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
        .where(c.c.created_at < end, c.c.company_id.not_in(restricted_company_ids(ctx.dates)))
        .order_by(c.c.company_id)
    )
    # Customers on the quarter's last day only: with ceased ones in it, two snapshots would
    # give each class's exact number of companies leaving in between.
    closed = pd.to_datetime(live.pop("closed_at"))
    live = live[~(closed < pd.Timestamp(end)).to_numpy()].reset_index(drop=True)
    live["customer_since"] = pd.to_datetime(live["customer_since"])
    out, report = enforce_k_anonymity(
        live, PROFILE_QUASI_IDENTIFIERS, ctx.k, max_suppression=MAX_RECORD_SUPPRESSION
    )
    columns = [q.column for q in PROFILE_QUASI_IDENTIFIERS]
    # Sorted by content before numbering, so row order says nothing about which company is which.
    out = out.sort_values([*columns, PROFILE_SENSITIVE], kind="stable")
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


# Each table's purpose (N-BASIS): the notice purpose it serves, the basis, and the categories its
# builder reads; `purposes.scope` holds every build to them. Counts of customers and revenue
# read company and invoice dates and amounts, which the notice lists only under the management
# of payments, fees and charges (legitimate interest li11), so the objectors are left out.
def _table(
    name: str,
    purpose: str,
    categories: tuple[str, ...],
    description: str,
    basis: LawfulBasis = LawfulBasis.LEGITIMATE_INTEREST,
) -> Processing:
    return declare(
        f"statistics.{name}",
        purpose=purpose,
        basis=basis,
        kind=Kind.STATISTICS,
        categories=categories,
        description=description,
    )


PROCESSINGS: dict[str, Processing] = {
    "customers_by_quarter": _table(
        "customers_by_quarter",
        "account_access_and_payments",
        ("contact", "transaction"),
        "customers joining, leaving and active per quarter, country and sector",
    ),
    "revenue_by_service_month": _table(
        "revenue_by_service_month",
        "account_access_and_payments",
        ("transaction",),
        "invoiced revenue per service and month",
    ),
    "web_traffic_daily": _table(
        "web_traffic_daily",
        "data_analytics",
        ("technical", "usage"),
        "web requests per day, site section, browser and region (from ingest's roll-ups)",
    ),
    "marketing_consent_monthly": _table(
        "marketing_consent_monthly",
        "deliver_content_and_advertising",
        ("marketing",),
        "consents, opt-outs and new contacts per month: how well marketing is received",
    ),
    "subject_requests_monthly": _table(
        "subject_requests_monthly",
        "security_and_accountability",
        (),
        "subject requests per month, type and outcome, from the request ledger",
        basis=LawfulBasis.LEGAL_OBLIGATION,
    ),
    "customer_profiles": _table(
        "customer_profiles",
        "account_access_and_payments",
        ("identity", "contact", "financial", "transaction"),
        "anonymised customer records (k-anonymous, l-diverse) for segment analysis",
    ),
}

BUILDERS: dict[str, Callable[[StatisticsContext], BuiltTable]] = {
    "customers_by_quarter": customers_by_quarter,
    "revenue_by_service_month": revenue_by_service_month,
    "web_traffic_daily": web_traffic_daily,
    "marketing_consent_monthly": marketing_consent_monthly,
    "subject_requests_monthly": subject_requests_monthly,
    "customer_profiles": customer_profiles,
}
