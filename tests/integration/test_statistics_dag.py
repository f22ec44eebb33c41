"""Real `ccg_ingest` -> `ccg_retention` -> `ccg_statistics` DAG runs on SQLite and PostgreSQL:
publication, the validation gate that guards it, held subjects, analyst access and the data dictionary."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import env_for, fingerprint, query, run_dag, state_of

from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.publication import current_release_day
from ccg_pipeline.statistics import (
    PublicationRefused,
    build_in_staging,
    publish,
    run_example,
)
from ccg_pipeline.statistics.build import StatisticsContext, customer_profiles
from ccg_pipeline.statistics.dictionary import EXAMPLES, analyst_tables, render
from ccg_pipeline.validation.gate import ValidationGateFailed, data_docs_index, validate_staging
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.roles import ANALYST_ROLE

pytestmark = pytest.mark.integration
RUN = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # as of 23 Nov
AS_OF = dt.date(2026, 11, 23)
PUBLISHED = [published for _build, published in s.PUBLISHED]
REPO = Path(__file__).resolve().parents[2]


def _daily_cycle(monkeypatch, warehouse_url: str, sources: Path, home: Path) -> dict[str, str]:
    env = env_for(warehouse_url, sources, home)
    for dag_id in ("ccg_ingest", "ccg_retention", "ccg_statistics"):
        assert state_of(run_dag(monkeypatch, dag_id, RUN, env)) == "success", dag_id
    return env


def test_statistics_dag_publishes_checked_tables(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    _daily_cycle(monkeypatch, warehouse_url, demo_sources, tmp_path)

    (publication,) = query(warehouse_url, "SELECT as_of, k, min_cell FROM statistics.publications")
    assert str(publication[0])[:10] == "2026-11-23" and publication[1:] == (10, 10)
    # What a request-triggered rebuild is dated: the current release's day.
    settings = Settings.from_env({"CCG_WAREHOUSE_URL": warehouse_url, "CCG_HOME": str(tmp_path)})
    assert current_release_day(settings) == dt.date(2026, 11, 23)
    reports = query(
        warehouse_url,
        "SELECT table_name, passed, failures, rows_published FROM ops.statistics_reports",
    )
    assert {r[0] for r in reports} == {t.name for t in PUBLISHED}
    assert [r for r in reports if not r[1]] == []
    for table in PUBLISHED:
        # What analysts see is exactly what was built and checked in staging.
        build = s.metadata.tables[f"staging.build_{table.name}"]
        assert list(fingerprint(warehouse_url, [table]).values()) == list(
            fingerprint(warehouse_url, [build]).values()
        )
    visible = [
        value
        for table in PUBLISHED
        for column in table.columns
        if column.info.get("kind") == s.COUNT
        for (value,) in query(
            warehouse_url,
            f"SELECT {column.name} FROM statistics.{table.name} WHERE {column.name} IS NOT NULL",
        )
    ]
    assert visible, "the demo population publishes some counts"
    # Every published count is perturbed; none is 1 or 2 (smallest_published_count).
    smallest = load_notice().settings.perturbation.smallest_published_count
    assert [v for v in visible if 0 < v < smallest] == []
    assert query(warehouse_url, "SELECT count(*) FROM statistics.customer_profiles")[0][0] > 0

    # Rerunning for the same day publishes the same figures.
    before = fingerprint(warehouse_url, PUBLISHED)
    env = env_for(warehouse_url, demo_sources, tmp_path)
    assert state_of(run_dag(monkeypatch, "ccg_statistics", RUN, env)) == "success"
    assert fingerprint(warehouse_url, PUBLISHED) == before


def test_a_failed_validation_publishes_nothing_and_keeps_the_last_version(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    _daily_cycle(monkeypatch, warehouse_url, demo_sources, tmp_path)
    published_before = fingerprint(warehouse_url, [*PUBLISHED, s.publications])
    (customer,) = query(warehouse_url, "SELECT name FROM personal.companies LIMIT 1")
    engine = create_warehouse_engine(warehouse_url)
    try:
        build_in_staging(engine, AS_OF, "tampered")
        smallest = load_notice().settings.perturbation.smallest_published_count
        with engine.begin() as conn:  # a small cell and a customer's name slip into staging
            conn.execute(sa.update(s.build_web_traffic_daily).values(requests=smallest - 1))
            conn.execute(sa.update(s.build_customer_profiles).values(main_service=customer[0]))
        with pytest.raises(ValidationGateFailed, match="2 of 6 staged tables failed") as failed:
            validate_staging(engine, "tampered", tmp_path)
        with pytest.raises(PublicationRefused):
            publish(engine, "tampered")
        with pytest.raises(PublicationRefused):  # another run's build is never shipped
            publish(engine, "some-other-run")
    finally:
        engine.dispose()
    assert fingerprint(warehouse_url, [*PUBLISHED, s.publications]) == published_before
    message = str(failed.value)
    assert "web_traffic_daily.requests: expect_column_values_to_not_be_in_set" in message
    assert "customer_profiles.main_service: expect_column_values_to_not_contain_known_" in message
    assert customer[0] not in message
    failing = query(
        warehouse_url,
        "SELECT table_name, column_name, expectation, unexpected_count "
        "FROM ops.validation_results WHERE run_id = 'tampered' AND NOT success "
        "ORDER BY table_name, position",
    )
    assert ("customer_profiles", "main_service") in {(r[0], r[1]) for r in failing}
    assert ("web_traffic_daily", "requests", "expect_column_values_to_not_be_in_set") in {
        tuple(r[:3]) for r in failing
    }
    (failure,) = query(
        warehouse_url,
        "SELECT failures FROM ops.statistics_reports "
        "WHERE run_id = 'tampered' AND table_name = 'web_traffic_daily' AND NOT passed",
    )
    assert "expect_column_values_to_not_be_in_set" in failure[0]
    # The stored GX results and the Data Docs carry counts, never the planted name.
    docs = data_docs_index(tmp_path)
    assert docs.exists()
    for path in (tmp_path / "gx").rglob("*"):
        if path.suffix in {".json", ".html"}:
            assert customer[0] not in path.read_text(errors="replace"), path.name


def test_held_subjects_are_left_out_of_the_statistics(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    env = _daily_cycle(monkeypatch, warehouse_url, demo_sources, tmp_path)

    def records(table: str) -> int:
        sql = f"SELECT records_in FROM ops.statistics_reports WHERE table_name = '{table}' ORDER BY run_id"
        return query(warehouse_url, sql)[-1][0]

    # Published snapshots are frozen until a quarter closes (anonymised figures stay, N-ANON):
    # the hold shows in the next snapshot, as of the quarter's last day.
    quarter_end = dt.date(2026, 12, 31)
    engine = create_warehouse_engine(warehouse_url)
    with engine.connect() as conn:
        ctx = StatisticsContext.create(conn, load_notice(), quarter_end, "any secret")
        before = customer_profiles(ctx).records_in
    engine.dispose()
    (company_id, subject_key) = query(
        warehouse_url,
        "SELECT u.company_id, s.subject_key FROM personal.portal_users u "
        "JOIN personal.subjects s ON s.subject_id = u.subject_id ORDER BY u.user_id LIMIT 1",
    )[0]
    engine = create_warehouse_engine(warehouse_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(s.legal_holds).values(
                    subject_key=subject_key,
                    reason="litigation",
                    origin="operator",
                    created_at=dt.datetime(2026, 11, 23, 9),
                )
            )
    finally:
        engine.dispose()
    held_rows = query(
        warehouse_url,
        f"SELECT count(*) FROM personal.companies WHERE company_id = {company_id}",
    )[0][0]
    run = run_dag(monkeypatch, "ccg_statistics", RUN, env, {"as_of": quarter_end.isoformat()})
    assert state_of(run) == "success"
    assert held_rows and records("customer_profiles") == before - held_rows


def test_the_analyst_file_holds_only_statistics_and_answers_every_example(
    airflow_db, demo_sources: Path, tmp_path: Path, monkeypatch
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}"
    _daily_cycle(monkeypatch, url, demo_sources, tmp_path)
    analyst_file = tmp_path / "analyst" / "statistics.sqlite"
    with sqlite3.connect(f"file:{analyst_file}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert db.execute("PRAGMA database_list").fetchall()[0][2] == str(analyst_file)
    assert tables == {t.name for t in analyst_tables()}
    settings = Settings.from_env({"CCG_HOME": str(tmp_path), "CCG_WAREHOUSE_URL": url})
    for table in EXAMPLES:
        _heading, columns, rows = run_example(settings, table)
        assert columns, table
        if table in ("customer_profiles", "publications", "frozen_periods"):
            assert rows, f"the example for {table} returns rows on the demo data"


@pytest.mark.postgres
def test_postgres_analyst_role_reads_statistics_and_nothing_else(
    airflow_db, demo_sources: Path, pg_server, tmp_path: Path, monkeypatch
) -> None:
    url = pg_server.create_database("analyst_access")
    _daily_cycle(monkeypatch, url, demo_sources, tmp_path)
    admin = create_warehouse_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE {ANALYST_ROLE}"))
    admin.dispose()
    alice = sa.create_engine(
        sa.engine.make_url(url).set(username="alice", password="alice-pw"), hide_parameters=True
    )
    try:
        with alice.connect() as conn:
            conn.execute(sa.text("SET search_path TO statistics"))
            for table in EXAMPLES:
                conn.execute(sa.text(EXAMPLES[table][1])).fetchall()
        for forbidden in (
            "SELECT count(*) FROM personal.subjects",
            "SELECT count(*) FROM ops.audit_ledger",
            "SELECT count(*) FROM staging.build_customer_profiles",
            "DELETE FROM statistics.customer_profiles",
            "CREATE TABLE statistics.mine (x int)",
        ):
            with (
                alice.connect() as conn,
                pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            ):
                conn.execute(sa.text(forbidden))
    finally:
        alice.dispose()
        # Roles belong to the whole server, which later tests share: leave none behind.
        admin = create_warehouse_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text("DROP ROLE alice"))
        admin.dispose()


def test_the_committed_data_dictionary_matches_the_table_definitions() -> None:
    committed = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "run `ccg statistics dictionary` and commit docs/data-dictionary.md"
    )
    assert set(EXAMPLES) == {t.name for t in analyst_tables()}


def test_ingest_and_retention_events_carry_the_as_of_date_statistics_runs_for(
    airflow_db, demo_sources: Path, tmp_path: Path, monkeypatch
) -> None:
    """The statistics DAG waits on both Assets and takes its date from their events."""
    from ccg_pipeline.dagrun import load_dag

    url = f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}"
    env = env_for(url, demo_sources, tmp_path)
    for dag_id in ("ccg_ingest", "ccg_retention"):
        assert state_of(run_dag(monkeypatch, dag_id, RUN, env)) == "success"
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        extras = {
            uri: extra
            for uri, extra in session.query(AssetModel.uri, AssetEvent.extra).join(
                AssetEvent, AssetEvent.asset_id == AssetModel.id
            )
        }
    assert extras["ccg://warehouse/personal"]["as_of"] == "2026-11-23"
    assert extras["ccg://warehouse/retention"]["as_of"] == "2026-11-23"
    schedule = load_dag("ccg_statistics").timetable.asset_condition
    assert type(schedule).__name__ == "AssetAny"  # (personal AND retention) OR requests
    daily, requests = schedule.objects
    assert type(daily).__name__ == "AssetAll"
    assert {a.uri for a in daily.objects} == {
        "ccg://warehouse/personal",
        "ccg://warehouse/retention",
    }
    assert requests.uri == "ccg://warehouse/requests"
    assert load_notice().settings.k_anonymity == 10
