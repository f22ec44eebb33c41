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

import datetime as dt
import itertools
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import query

from ccg_pipeline import requests
from ccg_pipeline import statistics as statistics_zone
from ccg_pipeline.devtools.attacks import (
    coalition_attack,
    crm_company_export,
    export_attributes,
    invoice_truth,
    linkage_matches,
    margin_widths,
    stock_flow_widths,
)
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
    releases, flow_widths, profile_matches, class_widths = [], [], [], []
    export = crm_company_export(sources)
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
        flow_widths += stock_flow_widths(_published(engine, "customers_by_quarter"))
        profiles = _published(engine, "customer_profiles")
        profile_matches += linkage_matches(profiles, export)
        class_widths += margin_widths(
            profiles,
            _published(engine, "customers_by_quarter"),
            freeze.last_closed_quarter(as_of),
        )
        if n == 0:
            coalition = coalition_attack(
                _published(engine, "revenue_by_service_month"),
                invoice_truth(settings.warehouse_url),
            )

    # The stock-flow identity pins nothing down: no flow or cell to one value, none narrower
    # than the protection width.
    assert flow_widths
    assert min(flow_widths) >= SPEC.count_protection_width
    # Knowing every other contribution of a revenue cell never gives the largest one to within
    # the protection level.
    attacked, recovered = coalition
    assert attacked > 0 and recovered == 0
    # Adding up a profile snapshot's classes against the quarter's cells pins nothing either.
    assert class_widths
    assert min(class_widths) >= SPEC.count_protection_width
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
    assert min(stock_flow_widths(staged["customers_by_quarter"], exact)) == 0
    attacked, recovered = coalition_attack(
        staged["revenue_by_service_month"], invoice_truth(settings.warehouse_url), exact
    )
    assert recovered == attacked > 0
    # Profiles at the finest published detail, not k-anonymised, link companies one to one.
    export = crm_company_export(tmp_path / "sources")
    attributes = export_attributes(export)
    finest = pd.DataFrame(
        {qi.column: qi.levels[0](attributes[qi.column]) for qi in PROFILE_QUASI_IDENTIFIERS}
    )
    assert min(linkage_matches(finest, export)) == 1


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
