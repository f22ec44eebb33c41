"""Closed periods are published once and then frozen (N-AGG against an attacker who keeps every
release).

An analyst who keeps each day's release can subtract one from the next. If a figure of a past
month moves because one company was erased, restricted or retired in between, the difference is
that company's contribution, however large the cell. So a release holds only **closed** periods
(a day, month or quarter that has ended, plus a lag where late events still land in it), and a
closed period is computed once, at the first release after it closes: from then on every release
carries its rows unchanged, read back from the published table, whatever happens to the people
behind them. The periods that are final are listed in `statistics.frozen_periods`, which analysts
can read. Anonymised figures may be kept indefinitely (N-ANON); retention, erasure, restriction
and objection change only periods not published yet.

`customer_profiles` has no period column: it is one snapshot of the customers, taken at the first
release after a quarter closes and then published unchanged until the next quarter closes (the
ledger lists the snapshot under that quarter). A restriction or erasure in between changes no
record an analyst already holds; the next snapshot is a new table as a whole.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.retention.deadlines import add_months
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.sql import frame_of


class FrozenPeriodMissing(RuntimeError):
    """A period the ledger says is final has no rows in the published table: publishing would
    change a final figure, so the build stops (counts and ids only)."""


def _month_end(label: str) -> dt.date:
    year, month = (int(p) for p in label.split("-"))
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def quarter_end_of(label: str) -> dt.date:
    year, quarter = label.split("-Q")
    return _month_end(f"{year}-{int(quarter) * 3:02d}")


@dataclass(frozen=True)
class PeriodSpec:
    """A published table's period column, and the last day of a period's data."""

    column: str
    ends: Callable[[str], dt.date]
    # Months after the period ends during which its figures can still change (requests are
    # completed up to three months after they arrive: one month plus a two-month extension).
    lag_months: int = 0

    def closed(self, label: Any, as_of: dt.date) -> bool:
        return add_months(self.ends(str(label)), self.lag_months) <= as_of


PERIODS: dict[str, PeriodSpec] = {
    "customers_by_quarter": PeriodSpec("quarter", quarter_end_of),
    "revenue_by_service_month": PeriodSpec("month", _month_end),
    "web_traffic_daily": PeriodSpec("day", lambda label: dt.date.fromisoformat(label[:10])),
    "marketing_consent_monthly": PeriodSpec("month", _month_end),
    "subject_requests_monthly": PeriodSpec("month", _month_end, lag_months=3),
}


def frozen(conn: Connection, table_name: str) -> set[str]:
    f = s.frozen_periods
    return set(conn.execute(sa.select(f.c.period).where(f.c.table_name == table_name)).scalars())


def _published_rows(conn: Connection, published: sa.Table, column: str, periods: set[str]):
    if not periods:
        return pd.DataFrame(columns=[c.name for c in published.columns])
    rows = frame_of(conn.execute(sa.select(published)))
    return rows[rows[column].astype(str).isin(periods)]


# Snapshot tables: rebuilt once per closed quarter, frozen in between.
SNAPSHOTS = ("customer_profiles",)


def last_closed_quarter(as_of: dt.date) -> str:
    """The newest quarter whose last day is on or before `as_of`."""
    index = as_of.year * 4 + (as_of.month - 1) // 3
    label = f"{index // 4}-Q{index % 4 + 1}"
    if quarter_end_of(label) > as_of:
        index -= 1
        label = f"{index // 4}-Q{index % 4 + 1}"
    return label


def _snapshot(conn: Connection, built: Any, name: str, as_of: dt.date) -> Any:
    if last_closed_quarter(as_of) not in frozen(conn, name):
        return built  # a quarter closed since the last snapshot: a new one
    published = s.metadata.tables[f"{s.STATISTICS}.{name}"]
    old = frame_of(conn.execute(sa.select(published)))
    carried = replace(built, frame=old[list(built.frame.columns)], frozen_rows=len(old))
    return replace(carried, **_published_report(conn, name))


def _published_report(conn: Connection, name: str) -> dict[str, Any]:
    """What the last publication's report said about a carried snapshot (what protecting it
    cost was measured when it was built, not on today's records)."""
    r, p = s.statistics_reports, s.publications
    row = (
        conn.execute(
            sa.select(r)
            .join(p, p.c.run_id == r.c.run_id)
            .where(r.c.table_name == name)
            .order_by(p.c.published_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return {}
    return {
        "cells": row["cells"],
        "primary": row["cells_suppressed_primary"],
        "secondary": row["cells_suppressed_secondary"],
        "records_in": row["records_in"],
        "records_suppressed": row["records_suppressed"],
        "generalisation": json.loads(row["generalisation"] or "{}"),
        "precision_loss": row["precision_loss"],
        "min_group_size": row["min_group_size"],
        "min_l_diversity": row["min_l_diversity"],
    }


def last_publication_before(conn: Connection, as_of: dt.date) -> dt.date | None:
    """The as-of date of the newest publication for an earlier day (None before the first)."""
    p = s.publications
    return conn.execute(sa.select(sa.func.max(p.c.as_of)).where(p.c.as_of < as_of)).scalar()


def release(conn: Connection, built: Any, as_of: dt.date) -> Any:
    """The rows this release publishes for one table: its frozen periods as published, plus the
    periods closed since, as computed now. Open periods are left out."""
    name = built.build.name.removeprefix("build_")
    if name in SNAPSHOTS:
        return _snapshot(conn, built, name, as_of)
    spec = PERIODS.get(name)
    if spec is None:
        return built
    published = s.metadata.tables[f"{s.STATISTICS}.{name}"]
    final = frozen(conn, name)
    old = _published_rows(conn, published, spec.column, final)
    missing = final - set(old[spec.column].astype(str))
    if missing:
        raise FrozenPeriodMissing(
            f"statistics.{name}: {len(missing)} final period(s) have no published rows"
        )
    labels = built.frame[spec.column].astype(str)
    # A period is published in the first release after it closes, or never: one that had
    # already closed at the previous release and was absent from it (a customer with an old
    # start date ingested since) would otherwise appear later, and its appearance alone tells
    # an analyst holding both releases about the newcomer.
    previous = last_publication_before(conn, as_of)
    newly_closed = labels.map(
        lambda label: (
            spec.closed(label, as_of) and (previous is None or not spec.closed(label, previous))
        )
    )
    new = built.frame[~labels.isin(final) & newly_closed.astype(bool)]
    columns = list(built.frame.columns)
    frame = pd.concat([old[columns], new], ignore_index=True) if len(old) else new
    frame = frame.sort_values(s.dimensions_of(built.build), kind="stable").reset_index(drop=True)
    return replace(built, frame=frame, cells=len(frame), frozen_rows=len(old))


def record(conn: Connection, as_of: dt.date, run_id: str) -> int:
    """After a publication: every closed period it published is final from now on."""
    added = 0
    for name, spec in PERIODS.items():
        published = s.metadata.tables[f"{s.STATISTICS}.{name}"]
        column = sa.select(published.c[spec.column]).distinct()
        labels = {str(v) for v in conn.execute(column).scalars()}
        new = sorted(label for label in labels - frozen(conn, name) if spec.closed(label, as_of))
        if new:
            conn.execute(
                sa.insert(s.frozen_periods),
                [
                    {"table_name": name, "period": label, "frozen_as_of": as_of, "run_id": run_id}
                    for label in new
                ],
            )
        added += len(new)
    quarter = last_closed_quarter(as_of)
    for name in SNAPSHOTS:
        if quarter not in frozen(conn, name):
            conn.execute(
                sa.insert(s.frozen_periods),
                {"table_name": name, "period": quarter, "frozen_as_of": as_of, "run_id": run_id},
            )
            added += 1
            _record_margins(conn, quarter, as_of, run_id)
    return added


def snapshot_margins(
    profiles: pd.DataFrame,
    quarter: str,
    snapshot_as_of: dt.date | None,
    records_suppressed: int,
) -> pd.DataFrame:
    """Records of a `customer_profiles` snapshot per region, sector and start period: the figures
    it shares with `customers_by_quarter` (rows of `ops.profile_margins`)."""
    keys = ["region", "sector", "customer_since"]
    counts = profiles.groupby(keys).size().rename("records").reset_index()
    return counts.assign(
        quarter=quarter, records_suppressed=records_suppressed, snapshot_as_of=snapshot_as_of
    )


def _record_margins(conn: Connection, quarter: str, as_of: dt.date, run_id: str) -> None:
    r = s.statistics_reports
    suppressed = conn.execute(
        sa.select(r.c.records_suppressed).where(
            r.c.run_id == run_id, r.c.table_name == "customer_profiles"
        )
    ).scalar_one_or_none()
    profiles = frame_of(conn.execute(sa.select(s.customer_profiles)))
    margins = snapshot_margins(profiles, quarter, as_of, int(suppressed or 0))
    conn.execute(sa.delete(s.profile_margins).where(s.profile_margins.c.quarter == quarter))
    if len(margins):
        conn.execute(sa.insert(s.profile_margins), margins.astype(object).to_dict("records"))
