"""The release audit (N-AGG): what an attacker holding every release can derive, before publishing.

The attacker of the threat model (README, "Disclosure control") holds every release ever
published and knows the method and its parameters (the perturbation table is public), but not
the secret behind the record keys. Closed periods are frozen (`statistics.freeze`), so every
release is the previous one plus new periods: the staged build holds every figure ever published
for its periods, and auditing it audits the union of all releases.

Per table the audit writes the attacker's knowledge as a linear system (`anonymise.audit`):

- each published count bounds its true value to the true counts that can produce it through the
  perturbation table; a suppressed count is only known to be >= 0; a row missing from a group's
  run of quarters is a count perturbed to zero;
- `customers_by_quarter`: active(q) = active(q-1) + new(q) - ceased(q-1) within each country
  and sector, from the table's first quarter, and the flow new(q) - ceased(q-1) the identity
  exposes is audited as a quantity of its own. Between two quarters frozen by different releases
  the identity may have been broken in between (a restriction removes a company from the later
  quarter only), so there it is soft: used while the published values agree with it;
- `customer_profiles` snapshots (every one ever published, `ops.profile_margins`): a snapshot
  describes the end of its quarter, so its active records per region and sector are the sum of
  active(q) - ceased(q) over the countries and sectors they generalise (exact when no record was
  suppressed locally, else within the number suppressed);
- `marketing_consent_monthly`: the month-on-month change of the contact stock (new contacts);
- `subject_requests_monthly`: completed <= requests;
- sums (`revenue_by_service_month`): a shown row has at least `min_sum_contributors` invoices,
  which raises the lower bound of its count; the sum noise must hide a largest contribution from
  a coalition of all the others (`Perturbation.largest_contribution_share`).

A release fails when any interval is narrower than `count_protection_width`, when the sum noise
cannot hide a largest contribution to `sum_protection_share`, or when published values contradict
the identities that must hold (the method was not followed, so nothing can be vouched for).
Failures name the table, the cell (its dimensions, which are published anyway) and the column,
never a value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.anonymise.audit import UNBOUNDED, AttackerView, attacker_intervals
from ccg_pipeline.anonymise.cellkey import CellKeyPerturbation
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.statistics import freeze
from ccg_pipeline.statistics.build import CUSTOMER_FLOWS
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import frame_of


@dataclass(frozen=True)
class TableAudit:
    table: str
    cells_checked: int
    narrowest_width: float | None
    protection_width: float
    below_protection: list[str]  # cell names, e.g. "customers_by_quarter[2024-Q3|SE|Retail]..."
    hidden_cells: int
    lp_solves: int
    inconsistent_components: int
    relaxed_components: int
    sum_protection_share: float | None

    @property
    def passed(self) -> bool:
        return not self.below_protection

    def row(self, run_id: str) -> dict:
        return {
            "run_id": run_id,
            "table_name": self.table,
            "cells_checked": self.cells_checked,
            "narrowest_width": self.narrowest_width,
            "protection_width": self.protection_width,
            "cells_below_protection": len(self.below_protection),
            "hidden_cells": self.hidden_cells,
            "lp_solves": self.lp_solves,
            "inconsistent_components": self.inconsistent_components,
            "relaxed_components": self.relaxed_components,
            "sum_protection_share": self.sum_protection_share,
            "passed": self.passed,
        }


class _Builder:
    """Cells of one table as LP variables, named by their dimensions."""

    def __init__(
        self,
        table: str,
        frame: pd.DataFrame,
        spec: Perturbation,
        releases: Mapping[str, object] | None = None,
        margins: pd.DataFrame | None = None,
    ) -> None:
        self.table = table
        self.frame = frame.reset_index(drop=True)
        self.spec = spec
        # Period label -> the release that froze it; periods not in it are this release's.
        self.releases = releases or {}
        self.margins = margins
        self.dimensions = s.dimensions_of(s.metadata.tables[f"{s.STATISTICS}.{table}"])
        self.perturbation = CellKeyPerturbation(spec)
        self.view = AttackerView()
        self.hidden = 0
        self.unrelated: list[str] = []  # snapshots the audit could not relate (fails)

    def label(self, values: tuple) -> str:
        return f"{self.table}[{'|'.join(str(v) for v in values)}]"

    def structured(self) -> _Builder:
        """Write the table's cells and the identities between them (`STRUCTURE`)."""
        STRUCTURE[self.table](self)
        return self

    def same_release(self, *periods: str) -> bool:
        return len({self.releases.get(p) for p in periods}) == 1

    def counts(self, column: str, *, shown_at_least: int = 0) -> dict[tuple, int]:
        """One variable per row for `column`; returns {dimension values: variable}. A shown
        value's true count is known to be at least `shown_at_least` (the publication rule)."""
        values = pd.to_numeric(self.frame[column], errors="coerce")
        published = values.fillna(0).to_numpy(dtype=np.int64)
        low, high = self.perturbation.possible_true(published)
        low = np.maximum(low, shown_at_least)
        keys = list(self.frame[self.dimensions].astype(str).itertuples(index=False, name=None))
        out = {}
        for i, key in enumerate(keys):
            if pd.isna(values.iloc[i]):
                self.hidden += 1
                bounds = (0.0, UNBOUNDED)
            else:
                bounds = (float(low[i]), float(high[i]))
            out[key] = self.view.cell(f"{self.label(key)}.{column}", *bounds)
        return out

    def absent(self, key: tuple, column: str) -> int:
        """A row missing from a run of periods: every count in it came out as zero."""
        _low, high = self.perturbation.possible_true(np.array([0]))
        return self.view.cell(f"{self.label(key)}.{column}", 0.0, float(high[0]))


def _customers_by_quarter(b: _Builder) -> None:
    frame = b.frame
    if frame.empty:
        return
    variables = {c: b.counts(c) for c in CUSTOMER_FLOWS}
    quarters = pd.Series(sorted(frame["quarter"].astype(str).unique()))
    index = quarters.str[:4].astype(int) * 4 + quarters.str[-1].astype(int) - 1
    first, last = int(index.min()), int(index.max())
    labels = [f"{q // 4}-Q{q % 4 + 1}" for q in range(first, last + 1)]
    for country, sector in (
        frame[["country", "sector"]]
        .astype(str)
        .drop_duplicates()
        .itertuples(index=False, name=None)
    ):

        def var(column: str, quarter: str, country: str = country, sector: str = sector) -> int:
            key = (quarter, country, sector)
            known = variables[column]
            if key not in known:
                known[key] = b.absent(key, column)
            return known[key]

        # Not active(first) = new(first): the true first quarter may have come out all zero.
        for before, now in itertools.pairwise(labels):
            active_now, active_before = (
                var("active_customers", now),
                var("active_customers", before),
            )
            identities = (
                b.view.equalities if b.same_release(before, now) else b.view.soft_equalities
            )
            identities.append(
                {
                    active_now: 1.0,
                    active_before: -1.0,
                    var("new_customers", now): -1.0,
                    var("ceased_customers", before): 1.0,
                }
            )
            b.view.derived.append(
                (
                    f"{b.label((now, country, sector))}.new_minus_ceased_before",
                    {active_now: 1.0, active_before: -1.0},
                )
            )
    if b.margins is not None and len(b.margins):
        _profile_margins(b, variables, labels)


def _covering_level(levels: list, values: pd.Series, shown: set[str]):
    """The finest hierarchy level that maps `values` onto every label in `shown`."""
    for level in levels:
        if shown <= set(level(values).astype(str)):
            return level
    return None


_SINCE = re.compile(r"^(\d{4})(?:-Q([1-4])|-(\d{4}))?$")


def _since_quarters(label: str) -> tuple[int, int] | None:
    """The quarter indexes (year * 4 + quarter - 1) a `customer_since` label spans: `2024-Q3`,
    `2024` or `2020-2024`; None for `*`."""
    match = _SINCE.match(label)
    if match is None:
        return None
    year, quarter, last_year = match.groups()
    if quarter:
        index = int(year) * 4 + int(quarter) - 1
        return index, index
    return int(year) * 4, int(last_year or year) * 4 + 3


def _profile_margins(
    b: _Builder, variables: dict[str, dict[tuple, int]], labels: list[str]
) -> None:
    """What each published snapshot adds up to, as soft identities (kept while the published
    values agree with them, `anonymise.audit`) over bounded constants:

    - its records per (region, sector) class are the customers on the quarter's last day:
      sum of active(q) - ceased(q) over the groups the class generalises, less up to the
      number of records suppressed locally;
    - its records per class and start period cannot exceed the new customers of that class in
      those quarters (some have left since; retired and suppressed ones are missing)."""
    from ccg_pipeline.statistics.build import PROFILE_QUASI_IDENTIFIERS

    hierarchy = {q.column: q.levels for q in PROFILE_QUASI_IDENTIFIERS}
    groups = b.frame[["country", "sector"]].astype(str).drop_duplicates()
    index_of = {label: int(label[:4]) * 4 + int(label[-1]) - 1 for label in labels}

    def cell(column: str, key: tuple) -> int:
        known = variables[column]
        if key not in known:
            known[key] = b.absent(key, column)
        return known[key]

    assert b.margins is not None  # the caller checked
    for quarter, snapshot in b.margins.groupby("quarter"):
        if quarter not in index_of:
            continue
        region = _covering_level(
            hierarchy["region"], groups["country"], set(snapshot["region"].astype(str))
        )
        sector = _covering_level(
            hierarchy["sector"], groups["sector"], set(snapshot["sector"].astype(str))
        )
        if region is None or sector is None:
            b.unrelated.append(f"customer_profiles[{quarter}]")
            continue
        members_of = (
            groups.assign(
                region_label=region(groups["country"]).astype(str).to_numpy(),
                sector_label=sector(groups["sector"]).astype(str).to_numpy(),
            )
            .groupby(["region_label", "sector_label"])[["country", "sector"]]
            .apply(lambda g: list(g.itertuples(index=False, name=None)))
            .to_dict()
        )
        counts = snapshot.assign(
            region=snapshot["region"].astype(str),
            sector=snapshot["sector"].astype(str),
            customer_since=snapshot["customer_since"].astype(str),
        )
        suppressed = int(counts["records_suppressed"].max())
        per_class = counts.groupby(["region", "sector"])["records"].sum()
        for (region_label, sector_label), members in members_of.items():
            name = f"customer_profiles[{quarter}|{region_label}|{sector_label}]"
            stock: dict[int, float] = {}
            for group in members:
                stock[cell("active_customers", (quarter, *group))] = 1.0
                stock[cell("ceased_customers", (quarter, *group))] = -1.0
            count = int(per_class.get((region_label, sector_label), 0))
            customers = b.view.constant(f"{name}.customers", count, count + suppressed)
            b.view.soft_equalities.append({**stock, customers: -1.0})
        now = index_of[quarter]
        for row in counts.itertuples(index=False):
            span = _since_quarters(row.customer_since)
            members = members_of.get((row.region, row.sector))
            if span is None or not members:
                continue
            cohort = {
                cell("new_customers", (label, *group)): 1.0
                for label, index in index_of.items()
                if span[0] <= index <= min(span[1], now)
                for group in members
            }
            if cohort:
                name = (
                    f"customer_profiles[{quarter}|{row.region}|{row.sector}|{row.customer_since}]"
                )
                started = b.view.constant(f"{name}.started", int(row.records), UNBOUNDED)
                b.view.soft_equalities.append({**cohort, started: -1.0})


def _marketing_consent_monthly(b: _Builder) -> None:
    contacts = b.counts("contacts")
    b.counts("consents")
    b.counts("opt_outs")
    months = sorted(contacts)
    for (before,), (now,) in itertools.pairwise(months):
        if str(pd.Period(now, "M") - 1) == before:
            b.view.derived.append(
                (
                    f"{b.label((now,))}.new_contacts",
                    {contacts[(now,)]: 1.0, contacts[(before,)]: -1.0},
                )
            )


def _subject_requests_monthly(b: _Builder) -> None:
    requests, completed = b.counts("requests"), b.counts("completed")
    for key, variable in completed.items():
        b.view.inequalities.append({variable: 1.0, requests[key]: -1.0})


def _counts_only(b: _Builder) -> None:
    table = s.metadata.tables[f"{s.STATISTICS}.{b.table}"]
    for column in s.columns_of_kind(table, s.COUNT):
        b.counts(column)


def _revenue_by_service_month(b: _Builder) -> None:
    b.counts("invoices", shown_at_least=b.spec.min_sum_contributors)


STRUCTURE = {
    "customers_by_quarter": _customers_by_quarter,
    "revenue_by_service_month": _revenue_by_service_month,
    "web_traffic_daily": _counts_only,
    "marketing_consent_monthly": _marketing_consent_monthly,
    "subject_requests_monthly": _subject_requests_monthly,
}


def attacker_view(
    table: str,
    frame: pd.DataFrame,
    spec: Perturbation,
    releases: Mapping[str, object] | None = None,
    margins: pd.DataFrame | None = None,
) -> AttackerView:
    """What the audit takes the attacker to know about one table (for tests and analysis)."""
    return _Builder(table, frame, spec, releases, margins).structured().view


def audit_table(
    table: str,
    frame: pd.DataFrame,
    spec: Perturbation,
    releases: Mapping[str, object] | None = None,
    margins: pd.DataFrame | None = None,
) -> TableAudit:
    """Audit one table's staged rows; `releases` maps each frozen period to the release that
    froze it (`frozen_releases`), `margins` holds the profile snapshots' class counts
    (`profile_margins`)."""
    builder = _Builder(table, frame, spec, releases, margins).structured()
    result = attacker_intervals(builder.view, enough=spec.count_protection_width)
    published = s.metadata.tables[f"{s.STATISTICS}.{table}"]
    has_sums = bool(s.columns_of_kind(published, s.SUM))
    share = spec.largest_contribution_share if has_sums else None
    below = [i.name for i in result.narrower_than(spec.count_protection_width)]
    below += [f"{name} and the cells linked to it: inconsistent" for name in result.inconsistent]
    below += [f"{name}: classes not relatable to {table}" for name in builder.unrelated]
    if share is not None and share < spec.sum_protection_share and len(frame):
        below.append(f"{table}.* sums: noise hides a largest contribution to {share:.0%} only")
    narrowest = result.narrowest()
    return TableAudit(
        table=table,
        cells_checked=len(result.intervals),
        narrowest_width=None if narrowest is None else float(narrowest.width),
        protection_width=float(spec.count_protection_width),
        below_protection=below,
        hidden_cells=builder.hidden,
        lp_solves=result.lp_solves,
        inconsistent_components=len(result.inconsistent),
        relaxed_components=result.relaxed_components,
        sum_protection_share=share,
    )


def frozen_releases(conn: Connection) -> dict[str, dict[str, object]]:
    """Published table -> {period: the as-of date of the release that froze it}."""
    f = s.frozen_periods
    out: dict[str, dict[str, object]] = {}
    for table, period, as_of in conn.execute(
        sa.select(f.c.table_name, f.c.period, f.c.frozen_as_of)
    ):
        out.setdefault(table, {})[str(period)] = as_of
    return out


def audit_release(
    frames: dict[str, pd.DataFrame],
    spec: Perturbation,
    releases: Mapping[str, Mapping[str, object]] | None = None,
    margins: pd.DataFrame | None = None,
) -> list[TableAudit]:
    """Every aggregate table of a release (published name -> staged rows)."""
    releases = releases or {}
    return [
        audit_table(
            name,
            frames[name],
            spec,
            releases.get(name),
            margins if name == "customers_by_quarter" else None,
        )
        for name in STRUCTURE
        if name in frames
    ]


def profile_margins(
    conn: Connection, staged_profiles: pd.DataFrame | None = None, run_id: str | None = None
) -> pd.DataFrame:
    """The class counts of every profile snapshot published so far (`ops.profile_margins`),
    plus, for the gate, those of the staged snapshot of `run_id` if it is a new one (its release
    is the one being judged: `snapshot_as_of` is None)."""
    history = frame_of(conn.execute(sa.select(s.profile_margins)))
    if staged_profiles is None or run_id is None:
        return history
    m, r = s.build_manifest, s.statistics_reports
    as_of = conn.execute(
        sa.select(m.c.as_of).where(m.c.table_name == "customer_profiles", m.c.run_id == run_id)
    ).scalar_one_or_none()
    if as_of is None:
        return history
    quarter = freeze.last_closed_quarter(as_of)
    if quarter in set(history["quarter"]):
        return history
    suppressed = conn.execute(
        sa.select(r.c.records_suppressed).where(
            r.c.run_id == run_id, r.c.table_name == "customer_profiles"
        )
    ).scalar_one_or_none()
    current = freeze.snapshot_margins(staged_profiles, quarter, None, int(suppressed or 0))
    return pd.concat([history, current], ignore_index=True) if len(history) else current
