"""The web-log ingest on real Apache access logs that nobody here wrote."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from helpers import query

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXCERPT = ROOT / "tests" / "fixtures" / "apache_access_excerpt.log"
SHARED_LOG = ROOT.parent / "shared" / "data" / "apache_access_2015_elastic_examples.log"


def _ingest(log: Path, tmp_path: Path) -> tuple[dict, str]:
    logs = tmp_path / "web"
    logs.mkdir()
    shutil.copy(log, logs / log.name)
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    migrate.upgrade(create_warehouse_engine(url))
    settings = Settings.from_env(
        {"CCG_HOME": str(tmp_path), "CCG_WAREHOUSE_URL": url, "CCG_WEB_LOG_DIR": str(logs)}
    )
    end = dt.datetime(2015, 5, 22)
    return ingest_source(
        settings, "web_logs", run_id="real", window_start=None, window_end=end
    ), url


def test_excerpt_parsed_versus_quarantined(tmp_path: Path) -> None:
    summary, url = _ingest(EXCERPT, tmp_path)
    assert (summary["rows_read"], summary["rows_loaded"], summary["rows_quarantined"]) == (
        151,
        150,
        1,
    )
    assert query(url, "SELECT reason_code, row_count FROM ops.quarantine_summary") == [
        ("malformed_line", 1)
    ]
    full_ips = query(
        url,
        "SELECT count(*) FROM personal.web_access WHERE ip_prefix NOT LIKE '%.0/24' AND ip_prefix NOT LIKE '%/48'",
    )
    assert full_ips == [(0,)]


@pytest.mark.skipif(not SHARED_LOG.exists(), reason="the shared data folder is not beside the repo")
def test_full_shared_log_parsed_versus_quarantined(tmp_path: Path) -> None:
    summary, _ = _ingest(SHARED_LOG, tmp_path)
    assert summary["rows_read"] == 10_000
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (9_999, 1)


def test_a_source_added_only_in_the_data_map_is_ingested_by_its_own_lane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ARCHITECTURE.md's recipe: a second web server's logs become a lane with no code change."""
    import yaml

    from ccg_pipeline import policy

    raw = yaml.safe_load(policy.DATA_MAP_FILE.read_text(encoding="utf-8"))
    edge = dict(raw["sources"]["logs.web_access"], description="Edge proxy access log")
    edge["ingest"] = {
        "lane": "edge_logs",
        "folder": "logs/edge",
        "files": ["edge-*.log*"],
        "loader": "ccg_pipeline.ingest.logs:load_web_log",
    }
    raw["sources"]["logs.edge_access"] = edge
    data_map = tmp_path / "data_map.yaml"
    data_map.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr(policy, "DATA_MAP_FILE", data_map)

    sources = tmp_path / "sources"
    (sources / "logs" / "edge").mkdir(parents=True)
    shutil.copy(EXCERPT, sources / "logs" / "edge" / "edge-2015-05-20.log")
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    migrate.upgrade(create_warehouse_engine(url))
    settings = Settings.from_env(
        {"CCG_HOME": str(tmp_path), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(sources)}
    )
    summary = ingest_source(
        settings, "edge_logs", run_id="edge", window_start=None, window_end=dt.datetime(2015, 5, 22)
    )
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (150, 1)
    assert query(url, "SELECT source, rows_loaded FROM ops.ingest_batches") == [
        ("logs.edge_access", 150)
    ]
    assert query(url, "SELECT count(*) FROM personal.web_access") == [(150,)]
