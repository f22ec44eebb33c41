"""The Privacy view's data and page on a real (SQLite) warehouse: the newest runs win, the SLA
countdown at its boundaries, escaping, and no personal data on the page. The Airflow login in
front of it is tested against a running api-server in tests/deployment."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ccg_pipeline.config import Settings
from ccg_pipeline.privacy_view import snapshot
from ccg_pipeline.privacy_view.app import create_app
from ccg_pipeline.requests.clock import DUE_SOON_DAYS
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 11, 24)


@pytest.fixture()
def warehouse(tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}"
    with migrate.migrated(url):
        pass
    from ccg_pipeline.warehouse.engine import create_warehouse_engine

    engine = create_warehouse_engine(url)
    yield engine
    engine.dispose()


def _request(request_id: str, status: str, due_on: dt.date | None) -> dict:
    return {
        "request_id": request_id,
        "request_type": "access",
        "subject_key": "k" * 64,
        "status": status,
        "received_at": dt.datetime(2026, 11, 1, 9),
        "due_on": due_on,
        "email_masked": "an***@ex***.se",
    }


def _fill(engine: sa.Engine) -> None:
    check = {"due": 5, "held": 1, "anonymised": 0, "deleted": 4, "expired_unheld_remaining": 0}
    with engine.begin() as conn:
        conn.execute(
            sa.insert(s.retention_checks),
            [
                # An older run, which the view must not show.
                {"run_id": "old", "rule_id": "web_logs_raw", "table_name": "personal.web_access",
                 "as_of": dt.date(2026, 11, 22), "passed": False, **check},
                {"run_id": "new", "rule_id": "web_logs_raw", "table_name": "personal.web_access",
                 "as_of": dt.date(2026, 11, 23), "passed": True, **check},
                {"run_id": "new", "rule_id": "<script>x</script>", "table_name": "personal.orders",
                 "as_of": dt.date(2026, 11, 23), "passed": True, **check},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(s.subject_requests),
            [
                _request("overdue", s.VERIFIED, TODAY - dt.timedelta(days=1)),
                _request("due-today", s.VERIFIED, TODAY),
                _request("soon", s.AWAITING_CRM, TODAY + dt.timedelta(days=DUE_SOON_DAYS)),
                _request("later", s.VERIFIED, TODAY + dt.timedelta(days=DUE_SOON_DAYS + 1)),
                _request("waiting", s.AWAITING_VERIFICATION, None),
                _request("done", s.COMPLETED, TODAY - dt.timedelta(days=3)),
            ],
        )
        result = {"expectation": "e", "raised_error": False, "suite_version": "v1"}
        conn.execute(
            sa.insert(s.validation_results),
            [
                {"run_id": "g1", "table_name": "web_traffic_daily", "position": 0,
                 "success": False, "validated_at": dt.datetime(2026, 11, 22, 4), **result},
                {"run_id": "g2", "table_name": "web_traffic_daily", "position": 0,
                 "success": True, "validated_at": dt.datetime(2026, 11, 23, 4), **result},
                {"run_id": "g2", "table_name": "web_traffic_daily", "position": 1,
                 "success": True, "validated_at": dt.datetime(2026, 11, 23, 4), **result},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(s.evidence_reports),
            {
                "run_id": "e1",
                "as_of": dt.date(2026, 11, 23),
                "clauses_checked": 2,
                "clauses_failed": "N-XFER",
                "created_at": dt.datetime(2026, 11, 24, 6),
            },
        )
        conn.execute(
            sa.insert(s.clause_evidence),
            [
                {"run_id": "e1", "clause": "N-RET", "as_of": dt.date(2026, 11, 23), "passed": True,
                 "figures": "{}", "checked_at": dt.datetime(2026, 11, 24, 6)},
                {"run_id": "e1", "clause": "N-XFER", "as_of": dt.date(2026, 11, 23),
                 "passed": False, "figures": "{}", "checked_at": dt.datetime(2026, 11, 24, 6)},
            ],
        )  # fmt: skip


def test_empty_warehouse_renders_a_page_saying_nothing_ran(warehouse: sa.Engine) -> None:
    snap = snapshot(warehouse, TODAY)
    assert snap.retention == [] and snap.requests == [] and snap.gate_passed is None
    client = _client(warehouse, Path("/nonexistent"))
    page = client.get("/").text
    assert "No open requests." in page and "No evidence run yet." in page
    assert "never run" in page and "no run yet" in page


def test_snapshot_shows_the_newest_runs_and_open_requests_only(warehouse: sa.Engine) -> None:
    _fill(warehouse)
    snap = snapshot(warehouse, TODAY)
    assert snap.retention_as_of == dt.date(2026, 11, 23)
    assert {r.rule_id for r in snap.retention} == {"web_logs_raw", "<script>x</script>"}
    assert all(r.passed for r in snap.retention)
    assert snap.gate_run_id == "g2" and snap.gate_passed is True
    assert [(g.passed, g.evaluated) for g in snap.gate] == [(2, 2)]
    assert snap.evidence and snap.evidence["run_id"] == "e1"
    assert snap.evidence_clauses == [("N-RET", True), ("N-XFER", False)]
    days = {r.request_id: r.days_left for r in snap.requests}
    assert days == {
        "overdue": -1,
        "due-today": 0,
        "soon": DUE_SOON_DAYS,
        "later": DUE_SOON_DAYS + 1,
        "waiting": None,
    }
    assert snap.overdue_requests == 1


def test_page_countdown_colours_at_the_boundaries_and_escapes(
    warehouse: sa.Engine, tmp_path: Path
) -> None:
    _fill(warehouse)
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "latest.html").write_text("<html>report N-XFER</html>")
    client = _client(warehouse, tmp_path)
    page = client.get("/").text
    assert '<span class="badge bad">1 days overdue</span>' in page
    assert '<span class="badge warn">0 days left</span>' in page
    assert f'<span class="badge warn">{DUE_SOON_DAYS} days left</span>' in page
    assert f'<span class="badge ok">{DUE_SOON_DAYS + 1} days left</span>' in page
    assert "clock stopped: awaiting verification" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<code>done</code>" not in page and "<code>overdue</code>" in page
    assert "an***" not in page and "@" not in page  # requests by id only
    assert "href='evidence/latest.html'" in page
    assert client.get("/evidence/latest.html").text == "<html>report N-XFER</html>"
    data = client.get("/api/snapshot").json()
    assert data["overdue_requests"] == 1 and data["gate_passed"] is True
    assert "email_masked" not in json.dumps(data)


def test_evidence_link_is_absent_and_report_404_without_a_file(
    warehouse: sa.Engine, tmp_path: Path
) -> None:
    _fill(warehouse)
    client = _client(warehouse, tmp_path)
    assert "full report" not in client.get("/").text
    assert client.get("/evidence/latest.html").status_code == 404


def test_a_refusing_login_blocks_every_route(warehouse: sa.Engine, tmp_path: Path) -> None:
    from fastapi import HTTPException

    def refuse() -> None:
        raise HTTPException(status_code=403, detail="no")

    app = create_app(settings=lambda: _settings(warehouse, tmp_path), login=refuse)
    client = TestClient(app)
    for path in ("/", "/api/snapshot", "/evidence/latest.html"):
        assert client.get(path).status_code == 403, path


def _settings(engine: sa.Engine, home: Path) -> Settings:
    return Settings.from_env({"CCG_HOME": str(home)}).with_overrides(warehouse_url=str(engine.url))


def _client(engine: sa.Engine, home: Path) -> TestClient:
    app = create_app(
        settings=lambda: _settings(engine, home), today=lambda: TODAY, login=lambda: None
    )
    return TestClient(app)
