"""Alerts on failure through the `ccg_alerts` Airflow connection, to real local servers: SMTP
(the SMTP provider's hook) or a webhook. Delivery problems never fail the task, and nothing but
ids and the exception class leaves the pipeline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from alert_sinks import start_smtp_sink, start_webhook
from helpers import env_for, run_dag, state_of

from ccg_pipeline import dag_support

pytestmark = pytest.mark.integration

SECRET_TEXT = "jane.doe@example.org"  # what an exception message might carry


class _TaskInstance:
    dag_id, task_id, try_number = "ccg_demo", "load", 3


def _context() -> dict:
    return {
        "task_instance": _TaskInstance(),
        "run_id": "manual__1",
        "exception": ValueError(f"row for {SECRET_TEXT} failed"),
    }


def _smtp_connection(monkeypatch: pytest.MonkeyPatch, port: int, extra: dict) -> None:
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_CCG_ALERTS", json.dumps(conn))


def _mail_text(message) -> str:
    return "".join(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/html"
    )


def test_failure_alert_is_mailed_through_the_smtp_connection(monkeypatch) -> None:
    sink, server = start_smtp_sink()
    try:
        _smtp_connection(
            monkeypatch, sink.port, sink.connection_extra("a@ccg.example, b@ccg.example")
        )
        dag_support.notify_failure(_context())
    finally:
        server.shutdown()
    (message,) = sink.messages
    assert message["Subject"] == "[CCG ALERT] task failed: ccg_demo.load"
    assert sink.envelopes == [("airflow@ccg.example", ["a@ccg.example", "b@ccg.example"])]
    text = _mail_text(message)
    for value in ("ccg_demo", "load", "manual__1", "ValueError", ">3<"):
        assert value in text
    assert SECRET_TEXT not in text and "row for" not in text  # the message never goes out


def test_failure_alert_is_posted_to_the_webhook_connection(monkeypatch) -> None:
    received: list[dict] = []

    server = start_webhook(received)
    url = f"http://127.0.0.1:{server.server_port}/hook"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CCG_ALERTS", json.dumps({"conn_type": "http", "extra": {"webhook_url": url}})
    )
    try:
        dag_support.notify_failure(_context())
    finally:
        server.shutdown()
    assert received == [
        {
            "alert": "task failed",
            "dag_id": "ccg_demo",
            "task_id": "load",
            "run_id": "manual__1",
            "try_number": 3,
            "exception": "ValueError",
        }
    ]


def test_a_missed_run_deadline_is_alerted_by_the_callback_airflow_runs(monkeypatch) -> None:
    """The Deadline Alert's callback, run by the code Airflow's executor uses for it, with the
    context the scheduler gives a missed deadline (the run as the REST API shows it)."""
    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    received: list[dict] = []
    server = start_webhook(received)
    url = f"http://127.0.0.1:{server.server_port}/hook"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CCG_ALERTS", json.dumps({"conn_type": "http", "extra": {"webhook_url": url}})
    )
    callback = dag_support.run_deadline(dt.timedelta(minutes=50)).callback.serialize()
    context = {
        "dag_run": {"dag_id": "ccg_subject_requests", "dag_run_id": "scheduled__2026-11-24"},
        "deadline": {"id": "d1", "deadline_time": "2026-11-24T00:50:00+00:00"},
    }
    try:
        ok, error = execute_callback(
            callback["path"],
            {**callback["kwargs"], "context": context},
            dag_rel_path="ccg_subject_requests.py",
            bundle_path=None,
            log=structlog.get_logger(),
        )
    finally:
        server.shutdown()
    assert (ok, error) == (True, None)
    assert received == [
        {
            "alert": "run missed its deadline",
            "dag_id": "ccg_subject_requests",
            "task_id": None,
            "run_id": "scheduled__2026-11-24",
            "try_number": None,
            "deadline": "2026-11-24T00:50:00+00:00",
        }
    ]


@pytest.mark.parametrize(
    "extra",
    [
        {"to": "a@ccg.example", "from_email": "x@ccg.example", "disable_tls": True,
         "disable_ssl": True, "retry_limit": 0, "timeout": 2},
        {"from_email": "x@ccg.example", "disable_tls": True, "disable_ssl": True},
    ],
    ids=["server-down", "no-recipients"],
)  # fmt: skip
def test_a_delivery_failure_is_logged_and_never_raised(monkeypatch, caplog, extra) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _smtp_connection(monkeypatch, port, extra)
    dag_support.notify_failure(_context())
    failures = [r.getMessage() for r in caplog.records if "delivery failed" in r.getMessage()]
    assert len(failures) == 1
    assert SECRET_TEXT not in caplog.text


def test_a_failing_dag_run_mails_its_on_failure_alert(
    airflow_db, demo_sources: Path, tmp_path: Path, monkeypatch
) -> None:
    """A real DAG run whose warehouse cannot be opened: the task fails, and the callback the
    DAGs share mails the alert through the connection."""
    sink, server = start_smtp_sink()
    _smtp_connection(monkeypatch, sink.port, sink.connection_extra())
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    env = env_for(f"sqlite:///{blocked / 'warehouse.db'}", demo_sources, tmp_path)
    try:
        run = run_dag(monkeypatch, "ccg_retention", dt.datetime(2026, 11, 24, tzinfo=dt.UTC), env)
    finally:
        server.shutdown()
    assert state_of(run) == "failed"
    subjects = [m["Subject"] for m in sink.messages]
    assert subjects and all(
        s.startswith("[CCG ALERT] task failed: ccg_retention.") for s in subjects
    )
    assert str(blocked) not in "".join(_mail_text(m) for m in sink.messages)
