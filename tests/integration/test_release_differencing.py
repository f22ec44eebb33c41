"""The differencing attack on a series of daily releases: an analyst keeps every release and
subtracts one from another, while people are restricted, erased, object and are retired in
between. Closed periods are frozen once published (`statistics.freeze`), so no figure an analyst
already holds ever changes, and the attack recovers nothing; without the freeze, the same
series hands over a restricted company's figures."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import query

from ccg_pipeline import requests
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.requests.intake import parse_submission, submit
from ccg_pipeline.retention import run_retention
from ccg_pipeline.statistics import build_in_staging, freeze, publish
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
        for name in freeze.PERIODS:
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
def loaded(demo_sources: Path, tmp_path: Path, settings_for):
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)  # erasures delete portal logins
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
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


def test_thirty_daily_releases_differenced_recover_nothing(loaded, tmp_path: Path) -> None:
    engine, settings, people, prospects = loaded
    # What happens between releases: restrictions (the company drops out of every build), an
    # erasure of a customer's contact (restricted for tax) and of a prospect, an objection to
    # legitimate interest, and the retention sweep.
    events = {
        2: ("restrict", people[0]),
        5: ("erase", people[3]),
        9: ("object", people[6]),
        13: ("erase", prospects[0]),
        17: ("restrict", people[9]),
        22: ("retention", None),
        26: ("restrict", people[12]),
    }
    releases = []
    for n in range(RELEASES):
        as_of = FIRST + dt.timedelta(days=n)
        at = dt.datetime.combine(as_of, dt.time(9))
        kind, email = events.get(n, (None, None))
        if kind == "retention":
            run_retention(settings, as_of, f"retention-{n}")
        elif kind == "object":
            _request(engine, settings, kind, email, at, scope="legitimate_interest")
        elif kind:
            _request(engine, settings, kind, email, at)
        releases.append(_release(engine, tmp_path, as_of, f"release-{n}"))

    consecutive = [_changed(a, b) for a, b in itertools.pairwise(releases)]
    assert [len(c) for c in consecutive] == [0] * (RELEASES - 1)
    assert _changed(releases[0], releases[-1]) == []  # distant releases too
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
    assert [key for key in moved if freeze.PERIODS[key[0]].closed(key[1], FIRST)]


def test_a_final_period_missing_from_the_published_table_stops_the_build(
    loaded, tmp_path: Path
) -> None:
    engine, _settings, _people, _ = loaded
    _release(engine, tmp_path, FIRST, "release-0")
    with engine.begin() as conn:
        conn.execute(sa.delete(s.revenue_by_service_month))
    with pytest.raises(freeze.FrozenPeriodMissing, match="revenue_by_service_month"):
        build_in_staging(engine, FIRST + dt.timedelta(days=1), "release-1")
