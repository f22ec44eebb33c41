"""The attacker of the threat model on 30 consecutive daily releases: an analyst keeps every
release while people are restricted, erased, object, are retired, and companies become and stop
being customers in between. The attacks:

- differencing consecutive and distant releases (closed periods are frozen, so nothing moves;
  without the freeze the same series hands over a restricted company's figures);
- the stock-flow identity of `customers_by_quarter`, worked by interval arithmetic over the
  perturbation table's support, which this module derives itself by running the perturbation
  over the key space (not by the audit's code): no flow and no cell is pinned down;
- a coalition that knows every contributor of a revenue cell but the largest, reading the
  largest one's value off the published sum: never within the protection level;
- margins across tables: a profile snapshot's active records per class against the quarter-end
  stocks of `customers_by_quarter` it adds up to;
- linkage of `customer_profiles` to the CRM company export: every record matches at least k
  companies of the export.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import shutil
import sqlite3
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import query

from ccg_pipeline import requests
from ccg_pipeline import statistics as statistics_zone
from ccg_pipeline.anonymise.cellkey import KEY_SPACE, CellKeyPerturbation
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Perturbation
from ccg_pipeline.requests.intake import parse_submission, submit
from ccg_pipeline.retention import run_retention
from ccg_pipeline.statistics import build_in_staging, freeze, publish
from ccg_pipeline.statistics.build import (
    PROFILE_QUASI_IDENTIFIERS,
    StatisticsContext,
    customer_profiles,
    customers_by_quarter,
)
from ccg_pipeline.validation import gate
from ccg_pipeline.validation.gate import validate_staging
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
LOADED = dt.datetime(2026, 11, 24)
FIRST = dt.date(2026, 12, 10)  # 30 releases from here cross a month and a quarter end
RELEASES = 30


def _release(engine: sa.Engine, home: Path, as_of: dt.date, run_id: str) -> dict:
    """Build, validate and publish as of a day; return every published row of the period
    tables, keyed by (table, dimensions)."""
    build_in_staging(engine, as_of, run_id)
    validate_staging(engine, run_id, home)
    publish(engine, run_id)
    cells: dict = {}
    with engine.connect() as conn:
        for name in (*freeze.PERIODS, *freeze.SNAPSHOTS):
            table = s.metadata.tables[f"{s.STATISTICS}.{name}"]
            keys = s.dimensions_of(table)
            result = conn.execute(sa.select(table))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
                cells[(name, *(str(row[k]) for k in keys))] = tuple(
                    row[c] for c in row if c not in keys
                )
    return cells


def _changed(before: dict, after: dict) -> list:
    """What differencing two releases yields: cells that moved or vanished."""
    return [key for key, values in before.items() if after.get(key) != values]


def _request(engine: sa.Engine, settings, kind: str, email: str, at: dt.datetime, **payload):
    request_id = submit(
        engine,
        settings.pseudonym_key,
        parse_submission(kind, email, payload or None, received_at=at, source="cli"),
    )
    requests.verify(engine, request_id, at)
    report = requests.process_requests(engine, settings, at)
    assert report.failed == [], kind


@pytest.fixture
def loaded(demo_sources: Path, tmp_path: Path, settings_for, warehouse_url: str):
    """The demo population loaded into a fresh warehouse, on SQLite and on PostgreSQL."""
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)  # erasures delete portal logins
    url = warehouse_url
    settings = settings_for(url, sources)
    engine = create_warehouse_engine(url)
    migrate.upgrade(engine)
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        ingest_source(settings, source, run_id="load", window_start=None, window_end=LOADED)
    people = [
        email
        for (email,) in query(
            url,
            "SELECT u.email FROM personal.portal_users u JOIN personal.contracts k "
            "ON k.company_id = u.company_id AND k.ends_on IS NULL ORDER BY u.user_id",
        )
    ]
    prospects = [
        email
        for (email,) in query(
            url,
            "SELECT email FROM personal.crm_contacts WHERE subject_id NOT IN "
            "(SELECT subject_id FROM personal.portal_users) ORDER BY crm_contact_id",
        )
    ]
    yield engine, settings, people, prospects
    engine.dispose()


SPEC = load_notice().settings.perturbation
CRM_COMPANY_IDS = 500_000  # the CRM's record id of portal company n is this + n
K = load_notice().settings.k_anonymity
FLOWS = ("new_customers", "active_customers", "ceased_customers")


def _published(engine: sa.Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.select(s.metadata.tables[f"{s.STATISTICS}.{name}"]))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)


# --- the attacker's tools, written here rather than taken from the audit ---------------------


@cache
def _support(spec: Perturbation) -> dict[int, tuple[int, int]]:
    """Published count -> the smallest and largest true count that can produce it, found by
    running the perturbation itself over every 16th cell key of the key space."""
    perturbation = CellKeyPerturbation(spec)
    keys = np.arange(0, KEY_SPACE, 16)
    seen: dict[int, list[int]] = {}
    for true in range(41):
        for out in np.unique(perturbation.counts(np.full(len(keys), true), keys)):
            seen.setdefault(int(out), []).append(true)
    return {out: (min(ts), max(ts)) for out, ts in seen.items() if out <= 40 - spec.max_count_noise}


def _bounds(value: object, spec: Perturbation) -> tuple[float, float]:
    if value is None or pd.isna(value):
        return 0.0, float("inf")  # suppressed
    v = int(value)
    if v <= 40 - spec.max_count_noise:
        # A value the perturbation never outputs can only be exact.
        return _support(spec).get(v, (v, v))
    return v - spec.max_count_noise, v + spec.max_count_noise


def _stock_flow_attack(frame: pd.DataFrame, spec: Perturbation = SPEC) -> list[float]:
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
            return _bounds(0 if row is None else getattr(row, column), spec)

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


def _invoice_truth(url: str) -> pd.DataFrame:
    """Per revenue cell: the true total and the largest company's part, straight from the
    personal zone by SQL of its own."""
    rows = query(
        url,
        "SELECT i.issued_on, coalesce(o.service, 'unknown'), i.company_id, i.amount_minor "
        "FROM personal.invoices i LEFT JOIN personal.orders o ON o.order_id = i.order_id",
    )
    invoices = pd.DataFrame(rows, columns=["issued_on", "service", "company", "amount"])
    invoices["month"] = pd.to_datetime(invoices["issued_on"]).dt.strftime("%Y-%m")
    parts = invoices.groupby(["month", "service", "company"], as_index=False)["amount"].sum()
    return parts.groupby(["month", "service"]).agg(total=("amount", "sum"), top=("amount", "max"))


def _coalition_attack(
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


def _crm_export(sources: Path) -> pd.DataFrame:
    newest = sorted((sources / "crm").glob("companies_*.csv"))[-1]
    with newest.open(newline="") as handle:
        return pd.DataFrame(list(csv.DictReader(handle)))


def _export_attributes(export: pd.DataFrame) -> dict[str, pd.Series]:
    return {
        "region": export["Country/Region"],
        "sector": export["Industry"],
        "size_band": pd.to_numeric(export["Number of Employees"], errors="coerce"),
        "revenue_band": pd.to_numeric(export["Annual Revenue"], errors="coerce"),
        "customer_since": pd.to_datetime(export["Create Date"]),
    }


def _linkage_attack(profiles: pd.DataFrame, export: pd.DataFrame) -> list[int]:
    """For each published profile, how many companies of the CRM export it could be. The
    attacker generalises the export the way the table is published: per column, the finest level
    of the public hierarchy whose labels cover every published value (a "*" is a suppressed
    value and matches anything)."""
    attributes = _export_attributes(export)
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


def _margin_attack(profiles: pd.DataFrame, quarters: pd.DataFrame, quarter: str) -> list[float]:
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
            (_bounds(r.active_customers, SPEC), _bounds(r.ceased_customers, SPEC))
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


def _churn(sources: Path, kind: str, at: dt.datetime, company_id: int) -> int:
    """A company becomes a customer (a copy of another, new id) or stops being one, in the
    portal database, as the portal itself would record it. Returns the company's id."""
    stamp = at.strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(sources / "portal.db") as db:
        if kind == "cease":
            db.execute(
                "UPDATE companies SET closed_at = ?, updated_at = ? WHERE id = ?",
                (stamp, stamp, company_id),
            )
        else:
            columns = [r[1] for r in db.execute("PRAGMA table_info(companies)")]
            new_id = db.execute("SELECT max(id) + 1 FROM companies").fetchone()[0]
            values = dict(
                zip(
                    columns,
                    db.execute("SELECT * FROM companies WHERE id = ?", (company_id,)).fetchone(),
                    strict=True,
                )
            )
            values.update(
                id=new_id,
                name=f"{values['name']} {new_id}",
                created_at=stamp,
                closed_at=None,
                updated_at=stamp,
            )
            db.execute(
                f"INSERT INTO companies ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [values[c] for c in columns],
            )
            return int(new_id)
    return company_id


def test_thirty_daily_releases_attacked_recover_nothing(loaded, tmp_path: Path) -> None:
    engine, settings, people, prospects = loaded
    sources = tmp_path / "sources"
    with sqlite3.connect(sources / "portal.db") as db:
        customers = [r[0] for r in db.execute("SELECT id FROM companies WHERE closed_at IS NULL")]
    # What happens between releases: restrictions (the company drops out of every build), an
    # erasure of a customer's contact (restricted for tax) and of a prospect, an objection to
    # legitimate interest, the retention sweep, and companies joining and leaving.
    events = {
        2: ("restrict", people[0]),
        4: ("join", customers[1]),
        5: ("erase", people[3]),
        7: ("cease", customers[2]),
        9: ("object", people[6]),
        11: ("join", customers[4]),
        13: ("erase", prospects[0]),
        15: ("cease", customers[5]),
        17: ("restrict", people[9]),
        19: ("join", customers[7]),
        22: ("retention", None),
        24: ("cease", customers[8]),
        26: ("restrict", people[12]),
        28: ("join", customers[10]),
    }
    releases, stock_flow_widths, profile_matches, margin_widths = [], [], [], []
    export = _crm_export(sources)
    for n in range(RELEASES):
        as_of = FIRST + dt.timedelta(days=n)
        at = dt.datetime.combine(as_of, dt.time(9))
        kind, subject = events.get(n, (None, None))
        if kind == "retention":
            run_retention(settings, as_of, f"retention-{n}")
        elif kind in ("join", "cease"):
            company = _churn(sources, kind, at, subject)
            if kind == "join":  # the CRM, the attacker's background, knows its new customer too
                crm_id = export["Record ID"].astype(int)
                joined = export[crm_id == CRM_COMPANY_IDS + subject]
                export = pd.concat(
                    [
                        export,
                        joined.assign(
                            **{
                                "Record ID": str(CRM_COMPANY_IDS + company),
                                "Create Date": at.strftime("%Y-%m-%d %H:%M:%S"),
                            }
                        ),
                    ],
                    ignore_index=True,
                )
            ingest_source(
                settings,
                "portal",
                run_id=f"churn-{n}",
                window_start=None,
                window_end=at + dt.timedelta(hours=1),
            )
        elif kind == "object":
            _request(engine, settings, kind, subject, at, scope="legitimate_interest")
        elif kind:
            _request(engine, settings, kind, subject, at)
        releases.append(_release(engine, tmp_path, as_of, f"release-{n}"))
        stock_flow_widths += _stock_flow_attack(_published(engine, "customers_by_quarter"))
        profiles = _published(engine, "customer_profiles")
        profile_matches += _linkage_attack(profiles, export)
        margin_widths += _margin_attack(
            profiles,
            _published(engine, "customers_by_quarter"),
            freeze.last_closed_quarter(as_of),
        )
        if n == 0:
            coalition = _coalition_attack(
                _published(engine, "revenue_by_service_month"),
                _invoice_truth(settings.warehouse_url),
            )

    # The stock-flow identity pins nothing down: no flow or cell to one value, none narrower
    # than the protection width.
    assert stock_flow_widths
    assert min(stock_flow_widths) >= SPEC.count_protection_width
    # Knowing every other contribution of a revenue cell never gives the largest one to within
    # the protection level.
    attacked, recovered = coalition
    assert attacked > 0 and recovered == 0
    # Adding up a profile snapshot's classes against the quarter's cells pins nothing either.
    assert margin_widths
    assert min(margin_widths) >= SPEC.count_protection_width
    # No published profile links to fewer than k companies of the CRM export.
    assert profile_matches and min(profile_matches) >= K

    def periods(cells: dict) -> dict:
        return {key: v for key, v in cells.items() if key[0] not in freeze.SNAPSHOTS}

    consecutive = [_changed(a, b) for a, b in itertools.pairwise(releases)]
    quarter_closed = (dt.date(2026, 12, 31) - FIRST).days  # the release as of 31 December
    # Only the profile snapshot moves, and only when a quarter closes: a new snapshot.
    assert [i + 1 for i, c in enumerate(consecutive) if c] == [quarter_closed]
    assert {key[0] for key in consecutive[quarter_closed - 1]} == {"customer_profiles"}
    assert _changed(periods(releases[0]), periods(releases[-1])) == []  # distant releases too
    # The series is not empty: it grew as periods closed (31 Dec closes a month and a quarter).
    assert len(releases[-1]) > len(releases[0]) > 0
    quarters = {key[1] for key in releases[-1] if key[0] == "customers_by_quarter"}
    assert "2026-Q4" in quarters and "2026-Q4" not in {
        key[1] for key in releases[0] if key[0] == "customers_by_quarter"
    }
    # Open periods are never published: nothing of January before it ends.
    assert not [k for k in releases[-1] if k[0] == "revenue_by_service_month" and k[1] >= "2027"]
    final = query(settings.warehouse_url, "SELECT count(*) FROM statistics.frozen_periods")[0][0]
    assert final > 0
    # A carried snapshot keeps the report of the build that made it, not of today's records.
    reports = dict(
        query(
            settings.warehouse_url,
            "SELECT run_id, records_in FROM ops.statistics_reports "
            "WHERE table_name = 'customer_profiles'",
        )
    )
    assert len({reports[f"release-{n}"] for n in range(quarter_closed)}) == 1


def test_without_the_freeze_a_restriction_hands_over_the_company_s_figures(
    loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control: recomputing past periods in every release, as before, lets the
    difference of two releases show exactly what one restricted company contributed."""
    engine, settings, people, _ = loaded
    monkeypatch.setattr(freeze, "release", lambda conn, built, as_of: built)
    before = _release(engine, tmp_path, FIRST, "release-0")
    at = dt.datetime.combine(FIRST, dt.time(9)) + dt.timedelta(days=1)
    _request(engine, settings, "restrict", people[0], at)
    after = _release(engine, tmp_path, FIRST + dt.timedelta(days=1), "release-1")
    moved = _changed(before, after)
    # Cells of periods long closed moved (at demo size, most revenue cells are suppressed, so
    # the one that shows is the contacts' stock of a past month): the difference is the company.
    assert [
        key
        for key in moved
        if key[0] in freeze.PERIODS and freeze.PERIODS[key[0]].closed(key[1], FIRST)
    ]


def test_a_profile_snapshot_adds_up_to_its_quarter_s_customers(loaded, tmp_path: Path) -> None:
    """The identity the audit adds across tables, checked on the builders' exact output: the
    snapshot's records per sector are the sector's active - ceased of its quarter, with a
    restricted company, a company ceasing after the quarter end and one joining after it."""
    engine, settings, people, _ = loaded
    sources = tmp_path / "sources"
    with sqlite3.connect(sources / "portal.db") as db:
        customers = [r[0] for r in db.execute("SELECT id FROM companies WHERE closed_at IS NULL")]
    at = dt.datetime(2026, 11, 2, 9)  # after 2026-Q3, the snapshot's quarter
    _request(engine, settings, "restrict", people[0], at)
    for kind, company in (("cease", customers[3]), ("join", customers[5])):
        _churn(sources, kind, at, company)
    ingest_source(
        settings, "portal", run_id="churn", window_start=None, window_end=at + dt.timedelta(hours=1)
    )
    notice = load_notice()
    exact = notice.model_copy(
        update={
            "settings": notice.settings.model_copy(
                update={"perturbation": Perturbation(max_count_noise=0, sum_noise_scale=0.0)}
            )
        }
    )
    with engine.connect() as conn:
        ctx = StatisticsContext.create(conn, exact, FIRST, "any secret")
        quarters = customers_by_quarter(ctx).frame
        profiles = customer_profiles(ctx)
    quarter = freeze.last_closed_quarter(FIRST)
    cells = quarters[quarters["quarter"] == quarter]
    stock = (cells["active_customers"] - cells["ceased_customers"]).groupby(cells["sector"]).sum()
    count = profiles.frame.groupby("sector").size()
    suppressed = profiles.records_suppressed
    assert count.sum() <= stock.sum() <= count.sum() + suppressed
    if suppressed == 0 and "*" not in set(profiles.frame["sector"]):
        assert count.to_dict() == stock[stock > 0].to_dict()


def test_a_final_period_missing_from_the_published_table_stops_the_build(
    loaded, tmp_path: Path
) -> None:
    engine, _settings, _people, _ = loaded
    _release(engine, tmp_path, FIRST, "release-0")
    with engine.begin() as conn:
        conn.execute(sa.delete(s.revenue_by_service_month))
    with pytest.raises(freeze.FrozenPeriodMissing, match="revenue_by_service_month"):
        build_in_staging(engine, FIRST + dt.timedelta(days=1), "release-1")


def test_without_perturbation_the_attacks_succeed_and_the_gate_refuses(
    loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control, and the planted unsafe release: the same build with the noise
    turned off. The attacker's tools above then pin flows down and read a largest contribution
    off a sum, and the gate's release audit refuses the release, naming table and cell."""
    engine, settings, _people, _ = loaded
    notice = load_notice()
    # (The test population's revenue cells have at most five customers: the threshold is
    # lowered too, so that some sums show.)
    exact = Perturbation(max_count_noise=0, sum_noise_scale=0.0, min_sum_contributors=2)
    unsafe = notice.model_copy(
        update={"settings": notice.settings.model_copy(update={"perturbation": exact})}
    )
    monkeypatch.setattr(statistics_zone, "load_notice", lambda: unsafe)
    monkeypatch.setattr(gate, "load_notice", lambda: unsafe)
    build_in_staging(engine, FIRST, "unsafe")
    with pytest.raises(gate.ValidationGateFailed) as refused:
        validate_staging(engine, "unsafe", tmp_path)
    message = str(refused.value)
    assert "customers_by_quarter: release_audit_attacker_interval_at_least_protection" in message
    assert "customers_by_quarter[" in message and "revenue_by_service_month" in message
    audits = query(
        settings.warehouse_url,
        "SELECT table_name, passed, cells_below_protection FROM ops.release_audits "
        "WHERE run_id = 'unsafe' AND table_name = 'customers_by_quarter'",
    )
    assert audits[0][1] in (0, False) and audits[0][2] > 0
    staged = {
        name: _staged(engine, name) for name in ("customers_by_quarter", "revenue_by_service_month")
    }
    assert min(_stock_flow_attack(staged["customers_by_quarter"], exact)) == 0
    attacked, recovered = _coalition_attack(
        staged["revenue_by_service_month"], _invoice_truth(settings.warehouse_url), exact
    )
    assert recovered == attacked > 0
    # Profiles at the finest published detail, not k-anonymised, link companies one to one.
    export = _crm_export(tmp_path / "sources")
    attributes = _export_attributes(export)
    finest = pd.DataFrame(
        {qi.column: qi.levels[0](attributes[qi.column]) for qi in PROFILE_QUASI_IDENTIFIERS}
    )
    assert min(_linkage_attack(finest, export)) == 1


def _staged(engine: sa.Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.select(s.metadata.tables[f"{s.STAGING}.build_{name}"]))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)


def test_a_customer_with_an_old_start_date_adds_no_closed_period_to_a_later_release(
    loaded, tmp_path: Path
) -> None:
    """Found by the soak: a customer ingested after a release, with a start date years back,
    made closed quarters that the earlier release did not have appear in the next one. A period
    is published in the first release after it closes, or never."""
    engine, settings, _people, _ = loaded
    first = _release(engine, tmp_path, FIRST, "release-0")
    at = dt.datetime(2026, 12, 10, 9)
    stamp = at.strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(tmp_path / "sources" / "portal.db") as db:
        new_id = db.execute("SELECT max(id) + 1 FROM companies").fetchone()[0]
        db.execute(
            "INSERT INTO companies (id, name, country_code, sector, employee_count, "
            "annual_revenue, created_at, closed_at, updated_at) "
            "VALUES (?, ?, 'GB', 'Retail', 40, 900000, '2003-02-01 12:00:00', NULL, ?)",
            (new_id, f"Old Timer {new_id}", stamp),
        )
        db.execute(
            "INSERT INTO contracts (company_id, licence_type, service, start_date, end_date, "
            "annual_fee, updated_at) VALUES (?, 'full', 'training', '2003-03-01', NULL, 600, ?)",
            (new_id, stamp),
        )
    db.close()
    ingest_source(
        settings,
        "portal",
        run_id="old-timer",
        window_start=None,
        window_end=at + dt.timedelta(hours=1),
    )
    second = _release(engine, tmp_path, FIRST + dt.timedelta(days=1), "release-1")

    def quarters(cells: dict) -> set[str]:
        return {key[1] for key in cells if key[0] == "customers_by_quarter"}

    assert min(quarters(first)) > "2003-Q1"  # the newcomer's history is older than any release
    assert quarters(second) == quarters(first)
    closed = {k: v for k, v in first.items() if k[0] == "customers_by_quarter"}
    assert {k: second[k] for k in closed} == closed
