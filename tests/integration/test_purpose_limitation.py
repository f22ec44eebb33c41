"""Purpose limitation (N-BASIS) on real warehouses: a statistics table that reads beyond its
purpose is refused and the evidence fails on it; an objection takes the person out of
legitimate-interest processing on the next run."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import query

from ccg_pipeline import purposes, requests
from ccg_pipeline.evidence import collect
from ccg_pipeline.ingest import ingest_source, lane_names
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.requests.intake import parse_submission, submit
from ccg_pipeline.statistics import build, build_in_staging
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
LOADED = dt.datetime(2026, 11, 24)
AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def loaded(demo_sources: Path, tmp_path: Path, settings_for, warehouse_url: str):
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    settings = settings_for(warehouse_url, sources)
    engine = create_warehouse_engine(warehouse_url)
    migrate.upgrade(engine)
    for lane in lane_names():
        ingest_source(settings, lane, run_id="load", window_start=None, window_end=LOADED)
    yield settings, engine
    engine.dispose()


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[purposes.Processing]:
    """A statistics table declared for web analytics (technical and usage data only) whose
    builder reads the companies' revenue: financial data."""

    def revenue_per_sector(ctx: build.StatisticsContext) -> build.BuiltTable:
        c = s.companies
        ctx.conn.execute(sa.select(c.c.sector, sa.func.sum(c.c.annual_revenue_gbp)))
        raise AssertionError("the purpose guard lets a financial column through")

    processing = purposes.declare(
        "statistics.planted_revenue_per_sector",
        purpose="data_analytics",
        basis=LawfulBasis.LEGITIMATE_INTEREST,
        kind=purposes.Kind.STATISTICS,
        categories=("technical", "usage"),
        description="planted: revenue per sector under web analytics",
    )
    monkeypatch.setitem(build.BUILDERS, "planted_revenue_per_sector", revenue_per_sector)
    monkeypatch.setitem(build.PROCESSINGS, "planted_revenue_per_sector", processing)
    yield processing
    purposes.forget(processing.id)


def _basis(settings, engine: sa.Engine, as_of: dt.date):
    report = collect(engine, settings, as_of, "evidence-run")
    return next(c for c in report.clauses if c.clause == "N-BASIS")


def test_a_table_reading_financial_data_for_web_analytics_is_refused_and_fails_the_evidence(
    loaded, planted: purposes.Processing
) -> None:
    settings, engine = loaded
    with pytest.raises(purposes.PurposeViolation) as refused:
        build_in_staging(engine, AS_OF, "planted-run")
    message = str(refused.value)
    assert "statistics.planted_revenue_per_sector" in message
    assert "'data_analytics'" in message and "'financial'" in message
    assert "personal.companies.annual_revenue_gbp" in message
    # Nothing of the run was published or staged; the refusal is kept for the evidence.
    assert query(settings.warehouse_url, "SELECT count(*) FROM staging.build_manifest") == [(0,)]
    violation = query(
        settings.warehouse_url,
        "SELECT processing_id, violation FROM ops.purpose_checks WHERE violation IS NOT NULL",
    )
    assert [v[0] for v in violation] == ["statistics.planted_revenue_per_sector"]

    basis = _basis(settings, engine, AS_OF)
    assert basis.status == "fail"
    assert basis.figures["runs_beyond_purpose"] == 1
    assert any("planted_revenue_per_sector" in f for f in basis.findings)


def test_a_declaration_beyond_its_purpose_fails_the_evidence_before_any_run(loaded) -> None:
    settings, engine = loaded
    wrong = purposes.declare(
        "statistics.planted_declared_financial",
        purpose="data_analytics",
        basis=LawfulBasis.LEGITIMATE_INTEREST,
        kind=purposes.Kind.STATISTICS,
        categories=("usage", "financial"),
        description="planted: declares financial data under web analytics",
    )
    try:
        build_in_staging(engine, AS_OF, "clean-run")
        basis = _basis(settings, engine, AS_OF)
    finally:
        purposes.forget(wrong.id)
    assert basis.status == "fail"
    assert basis.figures["declarations_with_problems"] == 1
    assert any("'financial'" in f and "planted_declared_financial" in f for f in basis.findings)
    # Without the planted declaration the same runs pass, with every table checked.
    clean = _basis(settings, engine, AS_OF)
    assert clean.status == "pass", clean.findings
    assert clean.figures["published_tables_without_check"] == 0
    assert clean.figures["processings_checked"] >= len(build.BUILDERS)


def test_nothing_run_is_no_data_not_pass(loaded) -> None:
    settings, engine = loaded
    basis = _basis(settings, engine, AS_OF)
    assert basis.status == "no data"
    assert basis.figures["no_data"] == {"processing_runs": 0}


def test_an_objection_takes_the_person_out_of_legitimate_interest_processing(loaded) -> None:
    settings, engine = loaded
    url = settings.warehouse_url
    build_in_staging(engine, AS_OF, "before")
    records_before = dict(
        query(
            url, "SELECT table_name, records_in FROM ops.statistics_reports WHERE run_id = 'before'"
        )
    )
    # An active customer's only portal user objects to legitimate-interest processing.
    email = query(
        url,
        "SELECT min(u.email) FROM personal.portal_users u JOIN personal.companies c "
        "ON c.company_id = u.company_id WHERE c.closed_at IS NULL "
        "AND c.created_at < '2026-01-01' AND u.company_id IN "
        "(SELECT company_id FROM personal.portal_users GROUP BY company_id HAVING count(*) = 1)",
    )[0][0]
    at = LOADED + dt.timedelta(hours=1)
    request_id = submit(
        engine,
        settings.pseudonym_key,
        parse_submission(
            "object", email, {"scope": "legitimate_interest"}, received_at=at, source="cli"
        ),
    )
    requests.verify(engine, request_id, at)
    assert requests.process_requests(engine, settings, at).failed == []

    build_in_staging(engine, AS_OF, "after")
    records_after = dict(
        query(
            url, "SELECT table_name, records_in FROM ops.statistics_reports WHERE run_id = 'after'"
        )
    )
    excluded = dict(
        query(
            url,
            "SELECT processing_id, subjects_excluded FROM ops.purpose_checks WHERE run_id = 'after'",
        )
    )
    assert records_after["customer_profiles"] == records_before["customer_profiles"] - 1
    assert excluded["statistics.customer_profiles"] == 1
    # Legal-obligation processing is not left out: its table is built from the request ledger.
    assert excluded["statistics.subject_requests_monthly"] == 0
    figures = _basis(settings, engine, AS_OF).figures
    assert figures["subjects_excluded_objections"] == 1
    assert figures["subjects_excluded_without_consent"] == 0
