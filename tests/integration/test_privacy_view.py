"""The Privacy view's data and page on a real (SQLite) warehouse: the newest runs win, the SLA
countdown at its boundaries, escaping, and no personal data on the page; the retention headline
after a real sweep on SQLite and PostgreSQL, checked against the rows that left the personal zone.
The Airflow login in front of it is tested against a running api-server in tests/deployment."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from retention_world import World

from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.privacy_view import page as privacy_page
from ccg_pipeline.privacy_view import snapshot
from ccg_pipeline.privacy_view.app import create_app
from ccg_pipeline.requests.clock import DUE_SOON_DAYS
from ccg_pipeline.retention.sweep import sweep
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
                "clauses_checked": 3,
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
                # Nothing published yet: stored as not passed, with the empty inputs it names.
                {"run_id": "e1", "clause": "N-AGG", "as_of": dt.date(2026, 11, 23),
                 "passed": False, "figures": '{"no_data": {"published_rows": 0}}',
                 "checked_at": dt.datetime(2026, 11, 24, 6)},
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
    assert snap.evidence_clauses == [("N-AGG", "no data"), ("N-RET", "pass"), ("N-XFER", "fail")]
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
    # A clause with nothing to judge is shown as such: not a pass, not a failure.
    assert '<td>N-AGG</td><td><span class="badge idle">no data</span></td>' in page
    assert "1 of 3 clauses pass, 1 no data" in page
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


# --- the retention headline after a real sweep ----------------------------------------------------

# Every table a retention rule deletes from or clears columns in (personal.subjects is left out:
# orphaned subjects are tidied after the rules and are not in the rule-by-rule figures).
SWEPT = (
    s.payments, s.invoices, s.orders, s.contracts, s.crm_activities, s.crm_contacts,
    s.crm_companies, s.quarantine, s.portal_users, s.companies, s.web_access, s.auth_events,
)  # fmt: skip
# Anonymised tables the sweep adds retired rows to, with the measure that counts them (web
# traffic is rolled up when a log file is loaded, not by the sweep).
ANONYMISED = {
    s.anon_customers: "customers",
    s.anon_invoices: "invoices",
    s.anon_contracts: "contracts",
    s.anon_prospects: "prospects",
    s.anon_auth_events: "events",
}


def _personal_rows(engine: sa.Engine) -> tuple[dict[str, set], set]:
    """Primary keys per swept table, and the portal users still holding profile columns."""
    u = s.portal_users
    with engine.connect() as conn:
        keys = {t.name: set(conn.execute(sa.select(*t.primary_key.columns)).all()) for t in SWEPT}
        profiled = set(
            conn.execute(
                sa.select(u.c.user_id).where(
                    sa.or_(u.c.password_hash.is_not(None), u.c.interests.is_not(None))
                )
            ).scalars()
        )
    return keys, profiled


def _anonymised_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.c[m]), 0))).scalar_one()
            for t, m in ANONYMISED.items()
        )


def test_retention_headline_counts_each_removed_row_once(warehouse_url: str) -> None:
    """A tester saw "Retention due 23,280 / 30,365 removed": the headline added the anonymised
    rows to the deleted ones, although the sweep deletes every row it anonymises. The expected
    figures here come from the personal zone itself: rows gone after the sweep, plus rows whose
    profile columns it cleared; and from the anonymised tables it added to."""
    world = World(warehouse_url)
    try:
        for ceased in (dt.date(2014, 5, 1), dt.date(2016, 9, 30), dt.date(2019, 2, 1)):
            world.customer(ceased)  # past six years: deleted, its company, invoice, contract
        world.customer(dt.date(2025, 6, 1))  # closed account: profile columns cleared
        world.customer(None)  # a current customer: untouched
        world.web_hits([dt.date(2026, 1, 5), dt.date(2026, 11, 20)])  # one line past 90 days
        keys_before, profiled_before = _personal_rows(world.engine)
        anonymised_before = _anonymised_rows(world.engine)

        sweep(world.engine, load_notice(), dt.date(2026, 11, 23), "sweep-1")

        keys_after, profiled_after = _personal_rows(world.engine)
        deleted = sum(len(keys_before[t] - keys_after[t]) for t in keys_before)
        surviving_users = {key for (key,) in keys_after["portal_users"]}
        cleared = len((profiled_before & surviving_users) - profiled_after)
        removed = deleted + cleared
        anonymised = _anonymised_rows(world.engine) - anonymised_before
        assert cleared == 1 and anonymised > 0 and removed > anonymised  # the case at issue

        snap = snapshot(world.engine, TODAY)
        assert snap.retention_removed == removed
        assert snap.retention_anonymised == anonymised
        # No holds and nothing left behind: everything due was removed, and no more.
        assert snap.retention_held == 0
        assert snap.retention_due == removed
        page = privacy_page.render(snap, None)
        assert (
            f"Retention due<b>{removed:,}</b>{removed:,} removed ({anonymised:,} anonymised "
            "first), 0 held" in page
        )
        totals = snap.as_dict()["retention_totals"]
        assert (totals["removed"], totals["of_which_anonymised"]) == (removed, anonymised)
    finally:
        world.engine.dispose()
