"""Retired data stays retired: re-ingesting sources that still hold it brings nothing back and
counts nothing twice in the anonymised statistics."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import pytest
from helpers import query

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.retention import run_retention
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
START, END = dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)
AS_OF = dt.date(2026, 11, 23)


def _ingest_all(settings: Settings, run_id: str, *, full_refresh: bool = False) -> dict[str, dict]:
    return {
        source: ingest_source(
            settings,
            source,
            run_id=run_id,
            window_start=START,
            window_end=END,
            full_refresh=full_refresh,
        )
        for source in ("portal", "crm", "web_logs", "auth_logs")
    }


MEASURES = {
    "anon_customers": "customers",
    "anon_invoices": "invoices",
    "anon_contracts": "contracts",
    "anon_prospects": "prospects",
    "anon_web_traffic": "requests",
}


def _snapshot(url: str) -> dict[str, int]:
    counts = {
        t: query(url, f"SELECT count(*) FROM personal.{t}")[0][0]
        for t in (
            "companies",
            "invoices",
            "crm_contacts",
            "crm_activities",
            "portal_users",
            "subjects",
        )
    }
    for table, measure in MEASURES.items():
        counts[table] = int(
            query(url, f"SELECT coalesce(sum({measure}), 0) FROM staging.{table}")[0][0]
        )
    return counts


def _settings(home: Path, url: str, sources: Path) -> Settings:
    migrate.upgrade(create_warehouse_engine(url))
    return Settings.from_env(
        {"CCG_HOME": str(home), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(sources)}
    )


def test_full_refresh_after_retention_resurrects_nothing_and_double_counts_nothing(
    demo_sources: Path, warehouse_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, warehouse_url, demo_sources)
    _ingest_all(settings, "ingest-1")
    retired = run_retention(settings, AS_OF, "retention-1")
    assert retired["deleted"] > 0
    after_retention = _snapshot(warehouse_url)

    summaries = _ingest_all(settings, "ingest-2", full_refresh=True)
    assert summaries["portal"]["rows_retired"] > 0 and summaries["crm"]["rows_retired"] > 0
    assert _snapshot(warehouse_url) == after_retention, "nothing retired came back"
    again = run_retention(settings, AS_OF, "retention-2")
    assert again["deleted"] == 0, [
        (t["rule_id"], t["table"], t["deleted"]) for t in again["targets"] if t["deleted"]
    ]
    assert _snapshot(warehouse_url) == after_retention, "anonymised counts unchanged"


def test_log_lines_past_retention_on_arrival_are_not_loaded(
    demo_sources: Path, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    old_line = (
        '81.2.69.160 - - [10/Jul/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"'
    )
    with gzip.open(sources / "logs" / "web" / "access.log-20260710.gz", "wt") as fh:
        fh.write(old_line + "\n")
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    settings = _settings(tmp_path, url, sources)
    summary = ingest_source(settings, "web_logs", run_id="r", window_start=START, window_end=END)
    assert summary["rows_retired"] == 1, "136 days old: past the 90-day window when it arrives"
    assert query(
        url, "SELECT count(*) FROM personal.web_access WHERE source_file = 'access.log-20260710.gz'"
    ) == [(0,)]
    assert query(
        url,
        "SELECT rows_retired FROM ops.ingest_batches WHERE source_ref = 'access.log-20260710.gz'",
    ) == [(1,)]
