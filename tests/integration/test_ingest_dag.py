"""Real `ccg_ingest` DAG runs (Airflow dag.test) against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from helpers import env_for, fingerprint, query, run_dag, state_of

pytestmark = pytest.mark.integration

RUN = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # interval [2026-11-23, 2026-11-24)
EARLIER = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)  # interval [2026-11-22, 2026-11-23)


def test_ingest_loads_every_source_matches_subjects_and_minimises_ips(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    from ccg_pipeline.dagrun import task_results

    env = env_for(warehouse_url, demo_sources, tmp_path)
    run = run_dag(monkeypatch, "ccg_ingest", RUN, env)
    assert state_of(run) == "success"
    # The run's own interval: `run_after` is its end, not the moment the test ran it.
    assert run.run_after == RUN and run.data_interval_end == RUN

    counts = dict(
        query(
            warehouse_url, "SELECT source, sum(rows_loaded) FROM ops.ingest_batches GROUP BY source"
        )
    )
    # What the tasks returned (what `python -m ccg_pipeline.dagrun` and the demo print): counts
    # that agree with the batches table.
    results = task_results(run)
    assert {"ingest_portal", "ingest_crm", "ingest_web_logs"} <= set(results)
    crm_loaded = sum(n for source, n in counts.items() if source.startswith("crm."))
    assert results["ingest_crm"]["rows_loaded"] == crm_loaded > 0
    for source in (
        "portal.companies",
        "portal.users",
        "portal.payments",
        "crm.contacts",
        "crm.activities",
        "logs.web_access",
        "logs.auth",
    ):
        assert counts.get(source, 0) > 0, source

    # Every portal user is also a CRM contact (emails typed differently): one subject each.
    shared = query(
        warehouse_url,
        "SELECT count(DISTINCT u.subject_id) FROM personal.portal_users u "
        "JOIN personal.crm_contacts c ON c.subject_id = u.subject_id",
    )[0][0]
    users = query(warehouse_url, "SELECT count(*) FROM personal.portal_users")[0][0]
    assert shared >= 0.9 * users
    assert (
        query(warehouse_url, "SELECT count(*) FROM personal.subjects")[0][0]
        < users + query(warehouse_url, "SELECT count(*) FROM personal.crm_contacts")[0][0]
    )

    # IPs are stored only as network prefixes.
    prefixes = [r[0] for r in query(warehouse_url, "SELECT ip_prefix FROM personal.web_access")]
    assert prefixes and all(p.endswith(("/24", "/48")) for p in prefixes)

    # Malformed records are quarantined and counted, with the same totals in both places.
    quarantined = query(warehouse_url, "SELECT count(*) FROM personal.quarantine")[0][0]
    counted = query(warehouse_url, "SELECT sum(rows_quarantined) FROM ops.ingest_batches")[0][0]
    assert quarantined > 0 and quarantined == counted
    # ops holds counts and reason codes, never the rejected content.
    reasons = {r[0] for r in query(warehouse_url, "SELECT reason_code FROM ops.quarantine_summary")}
    assert reasons and all(r.replace("_", "").isalpha() for r in reasons)


def test_rerun_and_replay_leave_the_samestate_of(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    env = env_for(warehouse_url, demo_sources, tmp_path)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", EARLIER, env)) == "success"
    after_earlier = fingerprint(warehouse_url)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env)) == "success"
    after_run = fingerprint(warehouse_url)
    assert after_run != after_earlier, "the later interval brought new data"

    # Same interval again, then again reloading everything: no change.
    assert state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env)) == "success"
    assert fingerprint(warehouse_url) == after_run
    assert (
        state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env, {"full_refresh": True})) == "success"
    )
    assert fingerprint(warehouse_url) == after_run

    # Replaying the older interval (a backfill) must not roll newer snapshot data back.
    assert (
        state_of(run_dag(monkeypatch, "ccg_ingest", EARLIER, env, {"full_refresh": True}))
        == "success"
    )
    assert fingerprint(warehouse_url) == after_run


def test_unknown_column_refuses_its_file_keeps_the_rest_and_fails_the_run(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    path = sources / "crm" / "companies_20261123.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "Fax Number"])
        writer.writeheader()
        writer.writerows({**r, "Fax Number": "+44 20 7946 0000"} for r in rows)

    run = run_dag(monkeypatch, "ccg_ingest", RUN, env_for(warehouse_url, sources, tmp_path))
    assert state_of(run) == "failed"
    states = {
        ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in run.get_task_instances()
    }
    assert states["ingest_crm"] == "failed"
    assert states["ingest_portal"] == states["ingest_web_logs"] == "success"
    assert states["publish_personal_zone"] in ("upstream_failed", "skipped")

    refused = query(
        warehouse_url, "SELECT source_ref, error FROM ops.ingest_batches WHERE status = 'refused'"
    )
    assert [r[0] for r in refused] == ["companies_20261123.csv"]
    assert "'Fax Number'" in refused[0][1] and "data_map.yaml" in refused[0][1]
    assert "7946" not in refused[0][1]
    # The other CRM files of the same run were kept.
    assert query(warehouse_url, "SELECT count(*) FROM personal.crm_contacts")[0][0] > 0
    assert query(warehouse_url, "SELECT count(*) FROM personal.crm_activities")[0][0] > 0


def test_the_ccg_warehouse_connection_wins_over_the_environment(
    airflow_db, demo_sources: Path, tmp_path: Path, monkeypatch
) -> None:
    from_env = f"sqlite:///{tmp_path / 'env-warehouse' / 'main.db'}"
    from_connection = tmp_path / "conn-warehouse" / "main.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CCG_WAREHOUSE",
        json.dumps({"conn_type": "sqlite", "host": str(from_connection)}),
    )
    run = run_dag(monkeypatch, "ccg_ingest", RUN, env_for(from_env, demo_sources, tmp_path))
    assert state_of(run) == "success"
    loaded = query(f"sqlite:///{from_connection}", "SELECT count(*) FROM personal.companies")[0][0]
    assert loaded > 0
    assert not (tmp_path / "env-warehouse" / "personal.db").exists()
