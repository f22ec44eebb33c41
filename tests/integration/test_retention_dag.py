"""Real `ccg_ingest` then `ccg_retention` DAG runs (Airflow dag.test) on both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import env_for, query, run_dag, state_of

from ccg_pipeline.retention.rules import targets

pytestmark = pytest.mark.integration
RUN = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # interval [2026-11-23, 2026-11-24): as of 23 Nov


def test_retention_dag_sweeps_after_ingest_and_leaves_evidence(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    env = env_for(warehouse_url, demo_sources, tmp_path)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env)) == "success"
    companies_before = query(warehouse_url, "SELECT count(*) FROM personal.companies")[0][0]

    run = run_dag(monkeypatch, "ccg_retention", RUN, env)
    assert state_of(run) == "success"
    checks = query(
        warehouse_url,
        "SELECT rule_id, table_name, as_of, deleted, passed FROM ops.retention_checks",
    )
    assert {(r[0], r[1]) for r in checks} == {(t.rule_id, t.name) for t in targets()}
    assert all(r[4] for r in checks) and {str(r[2])[:10] for r in checks} == {"2026-11-23"}
    deleted = {(r[0], r[1]): r[3] for r in checks}
    assert deleted["customer_basic", "personal.companies"] > 0, (
        "the demo population has customers past six years"
    )
    companies_after = query(warehouse_url, "SELECT count(*) FROM personal.companies")[0][0]
    assert companies_after == companies_before - deleted["customer_basic", "personal.companies"]
    # The audit ledger has one retention row per rule and table for the run, counting the rows.
    ledger = query(
        warehouse_url,
        "SELECT rule_id, table_name, row_count FROM ops.audit_ledger WHERE action = 'retention' AND rule_id <> 'orphaned_subjects'",
    )
    assert {(r[0], r[1]): r[2] for r in ledger} == deleted

    # A second run for the same day changes nothing.
    assert state_of(run_dag(monkeypatch, "ccg_retention", RUN, env)) == "success"
    assert query(warehouse_url, "SELECT count(*) FROM personal.companies")[0][0] == companies_after
