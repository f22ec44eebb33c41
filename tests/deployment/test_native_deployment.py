"""The compose deployment, run natively: PostgreSQL plus the Airflow api-server, scheduler,
dag-processor and triggerer as processes, configured from docker-compose.yml and a fresh
`make env`-style secret set (ccg_pipeline/devtools/deployment.py).

Everything goes through the front doors: DAGs are unpaused and triggered through the REST API
and scheduled by the real scheduler (the statistics and evidence runs are started by Assets);
the analyst connects with its own login; the Privacy view is opened in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alert_sinks import SmtpSink, start_smtp_sink
from cdp_browser import chromium_binary, distinct_colours, headless_chromium

from ccg_pipeline.devtools.deployment import NativeDeployment, native_deployment
from ccg_pipeline.devtools.postgres import PostgresUnavailable, find_pg_bin

pytestmark = [pytest.mark.deployment, pytest.mark.postgres]

DAG_IDS = ("ccg_ingest", "ccg_retention", "ccg_statistics", "ccg_subject_requests", "ccg_evidence")
RUN_DATE = "2026-11-24T00:00:00Z"
TERMINAL = {"success", "failed"}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture(scope="module")
def alerts() -> Iterator[SmtpSink]:
    sink, server = start_smtp_sink()
    yield sink
    server.shutdown()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, alerts: SmtpSink) -> Iterator[NativeDeployment]:
    try:
        find_pg_bin()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    sources = tmp_path_factory.mktemp("deploy-sources")
    subprocess.run(
        [
            *(sys.executable, "-m", "ccg_pipeline.cli", "generate", "--out", str(sources)),
            *("--seed", "11", "--as-of", "2026-11-23", "--companies", "80", "--prospects", "40"),
        ],
        check=True,
        capture_output=True,
    )
    alert_conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": alerts.port,
        "extra": alerts.connection_extra(),
    }
    extra_env = {
        "AIRFLOW_CONN_CCG_ALERTS": json.dumps(alert_conn),
        "CCG_TASK_RETRIES": "0",  # a failure shows at once instead of after back-off
    }
    with native_deployment(sources, extra_env=extra_env) as running:
        yield running


@pytest.fixture(scope="module")
def api(deployment: NativeDeployment) -> Iterator[httpx.Client]:
    with deployment.client() as client:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            parsed = {d["dag_id"] for d in client.get("/api/v2/dags").json().get("dags", [])}
            if set(DAG_IDS) <= parsed:
                break
            time.sleep(2)
        else:
            pytest.fail(f"DAGs not parsed in time; see {deployment.log_file('dag-processor')}")
        yield client


def _runs(api: httpx.Client, dag_id: str) -> list[dict]:
    response = api.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "run_after"})
    response.raise_for_status()
    return response.json()["dag_runs"]


def _wait_for_run(
    api: httpx.Client,
    deployment: NativeDeployment,
    dag_id: str,
    *,
    run_id: str | None = None,
    run_type: str | None = None,
    timeout: float = 420,
) -> dict:
    """The first finished run of `dag_id` with that id or type (the scheduler also starts runs
    of its own: the latest interval when a DAG is unpaused, and Asset-triggered ones)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.check_alive()
        finished = [
            r
            for r in _runs(api, dag_id)
            if r["state"] in TERMINAL
            and run_id in (None, r["dag_run_id"])
            and run_type in (None, r["run_type"])
        ]
        if finished:
            return finished[0]
        time.sleep(3)
    raise AssertionError(f"{dag_id}: no finished run after {timeout:.0f}s: {_runs(api, dag_id)}")


@pytest.fixture(scope="module")
def finished_runs(api: httpx.Client, deployment: NativeDeployment) -> dict[str, dict]:
    """Unpause the DAGs, drop a subject request, trigger the daily DAGs through the REST API,
    and wait for those runs and for the statistics and evidence runs their Assets start."""
    inbox = deployment.ccg_home / "requests" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "access.json").write_text(
        json.dumps({"type": "access", "email": "someone@example.org", "received_at": RUN_DATE[:10]})
    )
    for dag_id in DAG_IDS:
        api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    runs = {}
    # Ingest first, as the schedule has it (ingest at 00:30, retention at 03:00 UTC), so the
    # sweep has loaded rows to judge; then retention and the request queue side by side.
    for batch in (("ccg_ingest",), ("ccg_retention", "ccg_subject_requests")):
        for dag_id in batch:
            response = api.post(
                f"/api/v2/dags/{dag_id}/dagRuns",
                json={"dag_run_id": f"api__{dag_id}", "logical_date": RUN_DATE, "conf": {}},
            )
            assert response.status_code == 200, response.text
        for dag_id in batch:
            runs[dag_id] = _wait_for_run(api, deployment, dag_id, run_id=f"api__{dag_id}")
    for dag_id in ("ccg_statistics", "ccg_evidence"):
        runs[dag_id] = _wait_for_run(api, deployment, dag_id, run_type="asset_triggered")
    return runs


def test_services_report_healthy(deployment: NativeDeployment) -> None:
    health = httpx.get(f"{deployment.base_url}/api/v2/monitor/health", timeout=10).json()
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", (part, health)


def test_rest_api_requires_a_login_and_examples_are_off(
    deployment: NativeDeployment, api: httpx.Client
) -> None:
    assert httpx.get(f"{deployment.base_url}/api/v2/dags", timeout=10).status_code == 401
    bad = httpx.post(
        f"{deployment.base_url}/auth/token",
        json={"username": "admin", "password": "admin"},
        timeout=10,
    )
    assert bad.status_code in (401, 403)
    listed = {d["dag_id"] for d in api.get("/api/v2/dags", params={"limit": 100}).json()["dags"]}
    assert listed == set(DAG_IDS)  # no example DAGs


def test_dags_triggered_through_the_api_succeed(finished_runs: dict[str, dict]) -> None:
    states = {dag_id: run["state"] for dag_id, run in finished_runs.items()}
    assert states == dict.fromkeys(DAG_IDS, "success")
    # Statistics and evidence were started by the scheduler from Assets, not by the test.
    assert finished_runs["ccg_ingest"]["run_type"] == "manual"


def test_the_per_file_ingest_tasks_ran_mapped_in_the_writers_pool(
    api: httpx.Client, finished_runs: dict[str, dict]
) -> None:
    """The init created the pool (else the scheduler would leave the mapped tasks unscheduled),
    with 4 slots for the PostgreSQL warehouse, and every web-log file had its own task in it,
    in whichever ingest run first listed it (the runs the scheduler starts when the DAGs are
    unpaused, or the one the test triggers: a run lists only files not loaded yet)."""
    pool = api.get("/api/v2/pools/ccg_writers").json()
    assert pool["slots"] == 4
    runs = api.get("/api/v2/dags/ccg_ingest/dagRuns", params={"limit": 100}).json()["dag_runs"]
    mapped = []
    for run in runs:
        listed = api.get(
            f"/api/v2/dags/ccg_ingest/dagRuns/{run['dag_run_id']}/taskInstances",
            params={"limit": 200},
        ).json()["task_instances"]
        web = [ti for ti in listed if ti["task_id"] == "ingest_web_logs" and ti["map_index"] >= 0]
        assert sorted(ti["map_index"] for ti in web) == list(range(len(web)))
        mapped += web
    assert len(mapped) >= 2, "the demo sources hold two web-log files"
    assert {(ti["pool"], ti["state"]) for ti in mapped} == {("ccg_writers", "success")}


def test_no_run_failed(api: httpx.Client, finished_runs: dict[str, dict]) -> None:
    """Including the runs the scheduler started on its own when the DAGs were unpaused."""
    for dag_id in DAG_IDS:
        runs = _runs(api, dag_id)
        assert runs, f"{dag_id} never ran"
        assert not [r["dag_run_id"] for r in runs if r["state"] == "failed"], dag_id


def test_analyst_reads_statistics_and_is_refused_elsewhere(
    deployment: NativeDeployment, finished_runs: dict[str, dict]
) -> None:
    engine = sa.create_engine(deployment.warehouse_url("ccg_analyst_login"))
    try:
        with engine.connect() as conn:
            published = conn.execute(sa.text("SELECT count(*) FROM statistics.publications"))
            assert published.scalar_one() >= 1
            conn.execute(sa.text("SELECT count(*) FROM statistics.customers_by_quarter"))
        for table in (
            "personal.companies",
            "personal.crm_contacts",
            "personal.quarantine",
            "staging.anon_customers",
            "ops.subject_requests",
            "ops.audit_ledger",
        ):
            with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as refused:
                conn.execute(sa.text(f"SELECT count(*) FROM {table}"))
            assert "permission denied" in str(refused.value.orig), table
        with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
            conn.execute(sa.text("DELETE FROM statistics.publications"))
    finally:
        engine.dispose()


def test_retention_swept_the_ingested_rows(
    deployment: NativeDeployment, finished_runs: dict[str, dict]
) -> None:
    """The sweeps removed what was past its deadline and left nothing due. Unpausing
    `ccg_retention` also starts the run for the latest interval, as of today, which may reach
    the ingested rows before the API-triggered run does: what counts is what the retention runs
    removed together, and that the API-triggered one ran."""
    engine = sa.create_engine(deployment.warehouse_url())
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.text(
                    # A row anonymised before deletion is in `deleted` too: count it once.
                    "SELECT run_id, sum(deleted), sum(expired_unheld_remaining)"
                    " FROM ops.retention_checks GROUP BY run_id"
                )
            ).all()
    finally:
        engine.dispose()
    assert "api__ccg_retention" in {run for run, _, _ in runs}
    assert sum(removed for _, removed, _ in runs) > 0
    assert [run for run, _, remaining in runs if remaining] == []


def test_the_deployment_s_database_grants_pass_n_sec(
    deployment: NativeDeployment, finished_runs: dict[str, dict]
) -> None:
    """Compose separates the roles (the postgres superuser for set-up only, airflow, the
    pipeline owner, analysts): N-SEC passes, and names the bootstrap superuser as a finding."""
    engine = sa.create_engine(deployment.warehouse_url())
    try:
        with engine.connect() as conn:
            passed, findings = conn.execute(
                sa.text(
                    "SELECT passed, findings FROM ops.clause_evidence WHERE clause = 'N-SEC' "
                    "AND run_id = (SELECT run_id FROM ops.evidence_reports "
                    "ORDER BY created_at DESC LIMIT 1)"
                )
            ).one()
    finally:
        engine.dispose()
    assert passed, findings
    assert "bootstrap superuser" in str(findings)


def test_evidence_findings_alert_by_email_through_the_connection(
    finished_runs: dict[str, dict], alerts: SmtpSink
) -> None:
    """The demo data fails N-XFER (a Privacy Shield transfer), so ccg_evidence alerts through
    the `ccg_alerts` SMTP connection; the mail carries clause ids, no personal data."""
    subjects = [m["Subject"] for m in alerts.messages]
    assert any("compliance evidence" in s and "ccg_evidence" in s for s in subjects), subjects
    for message in alerts.messages:
        text = "".join(
            part.get_payload(decode=True).decode()
            for part in message.walk()
            if part.get_content_type() == "text/html"
        )
        assert "N-XFER" in text or "task failed" in message["Subject"]
        assert not (set(EMAIL.findall(text)) - {"oncall@ccg.example", "airflow@ccg.example"})
    assert alerts.envelopes[0][1] == ["oncall@ccg.example"]


def test_privacy_view_requires_login(deployment: NativeDeployment) -> None:
    for path in ("/ccg-privacy/", "/ccg-privacy/api/snapshot", "/ccg-privacy/evidence/latest.html"):
        assert httpx.get(deployment.base_url + path, timeout=10).status_code == 401, path


def test_privacy_view_snapshot_after_the_runs(
    api: httpx.Client, finished_runs: dict[str, dict]
) -> None:
    snap = api.get("/ccg-privacy/api/snapshot").json()
    assert snap["retention"], "no retention sweep recorded"
    assert all(r["passed"] and r["expired_unheld_remaining"] == 0 for r in snap["retention"])
    assert snap["gate_passed"] is True and snap["gate"]
    assert snap["evidence"]["clauses_checked"] == len(snap["evidence_clauses"]) == 10
    (request,) = snap["requests"]
    assert request["status"] == "awaiting_verification" and request["days_left"] is None
    assert not EMAIL.search(json.dumps(snap))
    report = api.get("/ccg-privacy/evidence/latest.html")
    assert report.status_code == 200 and "N-XFER" in report.text


@pytest.mark.skipif(
    chromium_binary() is None and not os.environ.get("CI"),
    reason="chromium not installed (make browser-deps); CI installs it and never skips",
)
def test_privacy_view_in_headless_chromium(
    deployment: NativeDeployment, finished_runs: dict[str, dict], tmp_path: Path
) -> None:
    """The view as a data engineer sees it: logged in, from the UI's navigation, in a browser."""
    token = deployment.token()
    with headless_chromium() as page:
        page.send("Network.enable")
        page.send(
            "Network.setCookie", name="_token", value=token, url=deployment.base_url, path="/"
        )
        page.send("Page.enable")
        page.send("Page.navigate", url=f"{deployment.base_url}/plugin/ccg-privacy")
        frame_text = (
            "(() => { const f = document.querySelector('iframe');"
            " return f && f.contentDocument && f.contentDocument.body"
            " ? f.contentDocument.body.innerText : ''; })()"
        )
        text = page.wait_for(f"{frame_text}.includes('Compliance evidence') && {frame_text}")
        nav = page.evaluate("document.body.innerText")
        png = page.screenshot()
        # The evidence report the view links to, in the same browser; nothing it needs is
        # fetched from outside (every https request is blocked; the deployment is plain http).
        page.send("Network.setBlockedURLs", urls=["https://*"])
        page.send("Page.navigate", url=f"{deployment.base_url}/ccg-privacy/evidence/latest.html")
        report = page.wait_for(
            "document.readyState === 'complete' && document.body.innerText.includes('N-XFER')"
            " && document.body.innerText"
        )
        outside = page.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith(location.origin))"
        )
    screenshot = Path(os.environ.get("PRIVACY_VIEW_SCREENSHOT_DIR", tmp_path)) / "privacy-view.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(png)
    for heading in ("Retention, newest sweep", "Data-subject requests", "Validation gate"):
        assert heading in text
    assert "clock stopped: awaiting verification" in text
    assert "N-XFER" in text and "FAIL" in text  # the demo data's known finding is visible
    assert not EMAIL.search(text)
    assert "Privacy" in nav  # the Airflow UI around the frame, with its navigation
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert distinct_colours(png) > 20, "the screenshot looks blank"
    assert "N-RET" in report and not EMAIL.search(report)
    assert outside == []
