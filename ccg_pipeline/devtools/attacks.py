"""The disclosure attacker's tools, written apart from the release audit they test.

The release audit (`anonymise/audit.py`, run by the validation gate) decides whether a release
may go out; these functions attack what was published, the way an analyst who keeps every
release would, with their own arithmetic: the perturbation's support is found by running the
perturbation over the key space, not read from the audit. Used by the release attack tests
(`tests/integration/test_release_differencing.py`) and by the soak after every release.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ccg_pipeline.anonymise.cellkey import KEY_SPACE, CellKeyPerturbation
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.statistics.build import PROFILE_QUASI_IDENTIFIERS

SPEC = load_notice().settings.perturbation


@cache
def count_support(spec: Perturbation) -> dict[int, tuple[int, int]]:
    """Published count -> the smallest and largest true count that can produce it, found by
    running the perturbation itself over every 16th cell key of the key space."""
    perturbation = CellKeyPerturbation(spec)
    keys = np.arange(0, KEY_SPACE, 16)
    seen: dict[int, list[int]] = {}
    for true in range(41):
        for out in np.unique(perturbation.counts(np.full(len(keys), true), keys)):
            seen.setdefault(int(out), []).append(true)
    return {out: (min(ts), max(ts)) for out, ts in seen.items() if out <= 40 - spec.max_count_noise}


def count_bounds(value: object, spec: Perturbation) -> tuple[float, float]:
    """The true counts a published count can come from (a suppressed one: any)."""
    if value is None or pd.isna(value):
        return 0.0, float("inf")  # suppressed
    v = int(str(value))
    if v <= 40 - spec.max_count_noise:
        # A value the perturbation never outputs can only be exact.
        return count_support(spec).get(v, (v, v))
    return v - spec.max_count_noise, v + spec.max_count_noise


def stock_flow_widths(frame: pd.DataFrame, spec: Perturbation = SPEC) -> list[float]:
    """Interval widths the attacker gets for each flow new(q) - ceased(q-1) and each new(q) from
    active(q) = active(q-1) + new(q) - ceased(q-1), consecutive quarters within a group."""
    if frame.empty:
        return []
    rows = {(r.quarter, r.country, r.sector): r for r in frame.itertuples(index=False)}
    index = sorted({int(q[:4]) * 4 + int(q[-1]) - 1 for q in frame["quarter"]})
    widths = []
    for country, sector in {(c, s_) for _q, c, s_ in rows}:

        def cell(quarter: int, column: str, country=country, sector=sector) -> tuple[float, float]:
            row = rows.get((f"{quarter // 4}-Q{quarter % 4 + 1}", country, sector))
            return count_bounds(0 if row is None else getattr(row, column), spec)

        for q in range(index[0] + 1, index[-1] + 1):
            a_now, a_before = cell(q, "active_customers"), cell(q - 1, "active_customers")
            new, ceased = cell(q, "new_customers"), cell(q - 1, "ceased_customers")
            flow = (
                max(a_now[0] - a_before[1], new[0] - ceased[1]),
                min(a_now[1] - a_before[0], new[1] - ceased[0]),
            )
            new_from_stocks = (
                max(new[0], a_now[0] - a_before[1] + ceased[0]),
                min(new[1], a_now[1] - a_before[0] + ceased[1]),
            )
            widths += [flow[1] - flow[0], new_from_stocks[1] - new_from_stocks[0]]
    return widths


def invoice_truth(url: str) -> pd.DataFrame:
    """Per revenue cell: the true total and the largest company's part, straight from the
    personal zone by SQL of its own."""
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    engine = create_warehouse_engine(url)  # on SQLite, with the zone files attached
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.issued_on, coalesce(o.service, 'unknown'), i.company_id, i.amount_minor "
                "FROM personal.invoices i LEFT JOIN personal.orders o ON o.order_id = i.order_id"
            )
        ).all()
    engine.dispose()
    invoices = pd.DataFrame(rows, columns=["issued_on", "service", "company", "amount"])
    invoices["month"] = pd.to_datetime(invoices["issued_on"]).dt.strftime("%Y-%m")
    parts = invoices.groupby(["month", "service", "company"], as_index=False)["amount"].sum()
    return parts.groupby(["month", "service"]).agg(total=("amount", "sum"), top=("amount", "max"))


def coalition_attack(
    published: pd.DataFrame, truth: pd.DataFrame, spec: Perturbation = SPEC
) -> tuple[int, int]:
    """(cells attacked, largest contributions recovered within the protection level): the
    coalition knows every contribution but the largest, subtracts them from the sum and inverts
    the published method. Its reading is t (1 + s m) with s in [-1, -f] or [f, 1], so t lies in
    one of two branches; it recovers t when it could take the reading as t, or when the branch
    holding t is narrower than the protection share on either side of its middle."""
    cells = published.dropna(subset=["revenue_pence"]).merge(
        truth, left_on=["month", "service"], right_index=True
    )
    top = cells["top"].astype(float)
    reading = cells["revenue_pence"].astype(float) - (cells["total"] - top)
    m, f = spec.sum_noise_scale, spec.sum_noise_floor
    above = reading >= top
    low = np.where(above, reading / (1 + m), reading / (1 - f * m))
    high = np.where(above, reading / (1 + f * m), reading / (1 - m) if m < 1 else np.inf)
    assert ((low <= top + 1) & (top - 1 <= high)).all()  # the truth is among the candidates
    share = spec.sum_protection_share * top - 1  # pence rounding
    recovered = ((high - low) / 2 < share) | ((reading - top).abs() < share)
    return len(cells), int(recovered.sum())


def crm_company_export(sources: Path) -> pd.DataFrame:
    newest = sorted((sources / "crm").glob("companies_*.csv"))[-1]
    with newest.open(newline="") as handle:
        return pd.DataFrame(list(csv.DictReader(handle)))


def export_attributes(export: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "region": export["Country/Region"],
        "sector": export["Industry"],
        "size_band": pd.to_numeric(export["Number of Employees"], errors="coerce"),
        "revenue_band": pd.to_numeric(export["Annual Revenue"], errors="coerce"),
        "customer_since": pd.to_datetime(export["Create Date"]),
    }


def linkage_matches(profiles: pd.DataFrame, export: pd.DataFrame) -> list[int]:
    """For each published profile, how many companies of the CRM export it could be. The
    attacker generalises the export the way the table is published: per column, the finest level
    of the public hierarchy whose labels cover every published value (a "*" is a suppressed
    value and matches anything)."""
    attributes = export_attributes(export)
    published_at: dict[str, np.ndarray] = {}
    for qi in PROFILE_QUASI_IDENTIFIERS:
        shown = set(profiles[qi.column].astype(str)) - {"*"}
        levels = [level(attributes[qi.column]).astype(str) for level in qi.levels]
        covering = [labels for labels in levels if shown <= set(labels)]
        assert covering or not shown, f"{qi.column}: no hierarchy level gives the published values"
        published_at[qi.column] = (covering or levels)[0].to_numpy()
    matches = []
    for profile in profiles.itertuples(index=False):
        fits = np.ones(len(export), dtype=bool)
        for column, labels in published_at.items():
            value = str(getattr(profile, column))
            if value != "*":
                fits &= labels == value
        matches.append(int(fits.sum()))
    return matches


def margin_widths(
    profiles: pd.DataFrame, quarters: pd.DataFrame, quarter: str, spec: Perturbation = SPEC
) -> list[float]:
    """Margins across tables: a profile snapshot describes its quarter's last day, so its active
    records per class are the sum of active - ceased over the `customers_by_quarter` cells of
    that quarter the class generalises. For each such cell, the interval of its active and
    ceased counts that the class count and the other cells' bounds leave, by interval
    arithmetic over the support derived above."""
    cells = quarters[quarters["quarter"].astype(str) == quarter]
    if cells.empty or profiles.empty:
        return []
    hierarchy = {qi.column: qi.levels for qi in PROFILE_QUASI_IDENTIFIERS}
    labels = {}
    for column, source in (("region", "country"), ("sector", "sector")):
        shown = set(profiles[column].astype(str))
        level = next(lv for lv in hierarchy[column] if shown <= set(lv(cells[source]).astype(str)))
        labels[column] = level(cells[source]).astype(str).to_numpy()
    active = profiles.groupby(["region", "sector"]).size()  # customers on the quarter's last day
    widths = []
    for (region, sector), members in cells.groupby([labels["region"], labels["sector"]]):
        count = int(active.get((region, sector), 0))
        boxes = [
            (count_bounds(r.active_customers, spec), count_bounds(r.ceased_customers, spec))
            for r in members.itertuples(index=False)
        ]
        stock = [(a[0] - c[1], a[1] - c[0]) for a, c in boxes]  # active - ceased per cell
        for i, (a, c) in enumerate(boxes):
            others_low = sum(s[0] for j, s in enumerate(stock) if j != i)
            others_high = sum(s[1] for j, s in enumerate(stock) if j != i)
            own = (count - others_high, count - others_low)  # this cell's active - ceased
            assert own[0] <= stock[i][1] and stock[i][0] <= own[1], "the margin must be possible"
            active_range = (max(a[0], own[0] + c[0]), min(a[1], own[1] + c[1]))
            ceased_range = (max(c[0], a[0] - own[1]), min(c[1], a[1] - own[0]))
            widths += [active_range[1] - active_range[0], ceased_range[1] - ceased_range[0]]
    return widths
