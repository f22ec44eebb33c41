"""What the DAG files share: default args, alerts, run windows and settings for a task.

Imported at DAG parse time, so it stays light: no database, no connection look-ups, no pandas or
Great Expectations at module level. Everything that touches Airflow's metadata (connections)
happens inside functions that only tasks call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

from ccg_pipeline.config import Settings

log = logging.getLogger(__name__)

OWNER = "data-engineering"
# The first data interval, unless CCG_DAG_START_DATE moves it (see `start_date`).
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WAREHOUSE_CONN_ID = "ccg_warehouse"
PORTAL_CONN_ID = "ccg_portal"
# The portal with write access, for the request handlers; without it they use ccg_portal.
PORTAL_WRITE_CONN_ID = "ccg_portal_write"
ALERT_CONN_ID = "ccg_alerts"

# Airflow Assets (URIs) that connect the DAGs: ingest and retention -> statistics.
PERSONAL_ZONE_URI = "ccg://warehouse/personal"
RETENTION_URI = "ccg://warehouse/retention"
STATISTICS_URI = "ccg://warehouse/statistics"
REQUESTS_URI = "ccg://warehouse/requests"


class CcgAlertNotifier(BaseNotifier):
    """Airflow's notifier interface over `alert`: usable wherever Airflow takes a notifier
    (`on_failure_callback`, `on_success_callback`, a DAG's or a task's).

    Only ids and the exception class go out; exception messages could, in principle, carry data.
    """

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def notify(self, context: Any) -> None:
        details = {}
        if context.get("exception") is not None:
            details["exception"] = type(context["exception"]).__name__
        if isinstance(context.get("deadline"), dict):  # a missed Deadline Alert's context
            details["deadline"] = str(context["deadline"].get("deadline_time"))
        alert(context, self.what, details)


def run_deadline(finish_within: dt.timedelta) -> Any:
    """A Deadline Alert: a run still unfinished `finish_within` after it was queued raises a
    `CCG ALERT` (a stuck or starved run, before its work is late: requests have a legal clock).
    Evaluated by the scheduler; the notifier runs on the executor."""
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=finish_within,
        callback=SyncCallback(CcgAlertNotifier, kwargs={"what": "run missed its deadline"}),
    )


# On-failure callback of every task: one clear log line, plus delivery through `ccg_alerts`.
notify_failure = CcgAlertNotifier("task failed")


def alert(context: dict[str, Any], what: str, details: dict[str, Any]) -> None:
    """Raise an alert: an ERROR log line starting `CCG ALERT`, then delivery through the
    `ccg_alerts` connection (webhook or SMTP). `details` must hold ids and counts only.

    A delivery failure is logged (by exception class) and never fails the task: the alert is
    already in the task log, and a broken mail server must not turn a finding into an outage."""
    ti = context.get("task_instance")
    # A Deadline Alert's context has no task, only the run (as the REST API shows it).
    found = context.get("dag_run")
    run: dict[str, Any] = found if isinstance(found, dict) else {}
    payload = {
        "alert": what,
        "dag_id": getattr(ti, "dag_id", None) or run.get("dag_id"),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or run.get("dag_run_id"),
        "try_number": getattr(ti, "try_number", None),
        **details,
    }
    log.error("CCG ALERT %s: %s", what, payload)
    conn = _connection(ALERT_CONN_ID)
    try:
        if conn is not None and conn.conn_type in SMTP_CONN_TYPES:
            _send_alert_email(conn, payload)
        elif url := _alert_webhook_url(conn):
            _post_alert_webhook(url, payload)
    except Exception as exc:  # any delivery failure: see the docstring
        log.error("CCG ALERT delivery failed: %s", type(exc).__name__)


SMTP_CONN_TYPES = ("smtp", "email")


def _alert_webhook_url(conn: Any | None) -> str | None:
    """`ccg_alerts` as an HTTP connection (extra `webhook_url`, else its host), or for local
    runs without Airflow connections, `CCG_ALERT_WEBHOOK_URL`."""
    if conn is None:
        return os.environ.get("CCG_ALERT_WEBHOOK_URL")
    return (conn.extra_dejson or {}).get("webhook_url") or conn.host


def _post_alert_webhook(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()


def _send_alert_email(conn: Any, payload: dict[str, Any]) -> None:
    """Through the SMTP provider's hook: host, port, login and TLS settings from the connection;
    recipients from its extra `to` (comma-separated), the sender from `from_email`."""
    from html import escape

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = (conn.extra_dejson or {}).get("to")
    if not recipients:
        raise ValueError("ccg_alerts SMTP connection has no extra 'to'")
    rows = "".join(
        f"<tr><th align='left'>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
        for k, v in payload.items()
    )
    subject = f"[CCG ALERT] {payload['alert']}: {payload['dag_id']}.{payload['task_id']}"
    with SmtpHook(smtp_conn_id=ALERT_CONN_ID) as hook:
        hook.send_email_smtp(to=recipients, subject=subject, html_content=f"<table>{rows}</table>")


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    # CCG_TASK_RETRIES lets tests and debugging sessions see a failure at once.
    "retries": int(os.environ.get("CCG_TASK_RETRIES", "2")),
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=20),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": notify_failure,
}


def start_date() -> dt.datetime:
    """`CCG_DAG_START_DATE` (YYYY-MM-DD, UTC midnight) or START_DATE: where a catch-up begins."""
    raw = os.environ.get("CCG_DAG_START_DATE", "").strip()
    if not raw:
        return START_DATE
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"CCG_DAG_START_DATE must be a date (YYYY-MM-DD), got {raw!r}") from exc
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def catchup_enabled() -> bool:
    """`CCG_DAG_CATCHUP`: whether the daily DAGs run every interval missed since the start date
    (after an outage, or a first deployment with an earlier start). Off by default."""
    raw = os.environ.get("CCG_DAG_CATCHUP", "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"CCG_DAG_CATCHUP must be true or false, got {raw!r}")


# How long a run may take from being queued before its Deadline Alert fires: a daily run's
# stages take minutes at today's scale; an hourly one must end before the next is due.
DAILY_RUN_DEADLINE = dt.timedelta(hours=6)
HOURLY_RUN_DEADLINE = dt.timedelta(minutes=50)


def _dag_settings(
    schedule: Any,
    tags: list[str],
    *,
    catchup: bool = False,
    finish_within: dt.timedelta = DAILY_RUN_DEADLINE,
) -> dict[str, Any]:
    """What every CCG DAG shares: one run at a time, the default args above, a deadline."""
    return {
        "schedule": schedule,
        "start_date": start_date(),
        "catchup": catchup,
        "max_active_runs": 1,
        "default_args": DEFAULT_ARGS,
        "deadline": run_deadline(finish_within),
        "tags": ["ccg", *tags],
    }


def daily_dag(
    cron: str,
    tags: list[str],
    *,
    catch_up_missed: bool = True,
    finish_within: dt.timedelta = DAILY_RUN_DEADLINE,
) -> dict[str, Any]:
    """A data interval (UTC) on `cron`, plus the shared settings. With `CCG_DAG_CATCHUP` on, a
    DAG whose runs decide for their own interval (`catch_up_missed`) runs each missed one in
    order. `dag(**daily_dag(...), dag_id=..., doc_md=..., params=...)`."""
    from airflow.sdk import CronDataIntervalTimetable

    return _dag_settings(
        CronDataIntervalTimetable(cron, timezone="UTC"),
        tags,
        catchup=catch_up_missed and catchup_enabled(),
        finish_within=finish_within,
    )


def triggered_dag(schedule: Any, tags: list[str], *, as_of_help: str) -> dict[str, Any]:
    """An Asset-triggered schedule, the shared settings, and an optional `as_of` param
    (YYYY-MM-DD) for manual runs and backfills."""
    from airflow.sdk import Param

    as_of = Param(None, type=["null", "string"], format="date", description=as_of_help)
    return {**_dag_settings(schedule, tags), "params": {"as_of": as_of}}


def _connection(conn_id: str) -> Any | None:
    """An Airflow connection if defined, else None (a missing id is not an error here)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def sqlalchemy_url(conn: Any) -> str:
    """SQLAlchemy URL for an Airflow connection (postgres or sqlite; `extra.sqlalchemy_url` wins)."""
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn.conn_type in ("postgres", "postgresql"):
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg2",
            username=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            database=conn.schema,
        ).render_as_string(hide_password=False)
    return conn.get_uri()


def task_settings() -> Settings:
    """Settings for a running task: environment, then Airflow connections where they exist."""
    settings = Settings.from_env()
    overrides: dict[str, Any] = {}
    connections = (
        (WAREHOUSE_CONN_ID, "warehouse_url"),
        (PORTAL_CONN_ID, "portal_url"),
        (PORTAL_WRITE_CONN_ID, "portal_write_url"),
    )
    for conn_id, field in connections:
        conn = _connection(conn_id)
        if conn is not None:
            overrides[field] = sqlalchemy_url(conn)
            log.info("using Airflow connection %s for %s", conn_id, field)
    return settings.with_overrides(**overrides) if overrides else settings


def run_as_of(context: dict[str, Any]) -> dt.date:
    """The day a daily run decides for: the last day of its data interval."""
    _start, end, _run_id = run_window(context)
    return (end - dt.timedelta(microseconds=1)).date()


def run_type_of(context: dict[str, Any]) -> str | None:
    """ "scheduled", "manual", "backfill", ...: the run's type as a plain string (the context
    may carry Airflow's enum or its value)."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return getattr(run_type, "value", run_type)


def run_window(context: dict[str, Any]) -> tuple[dt.datetime | None, dt.datetime, str]:
    """(start, end, run_id) of the run's data interval, as naive UTC. Never the wall clock."""
    start = context.get("data_interval_start")
    end = context.get("data_interval_end") or context.get("logical_date")
    dag, dag_run = context.get("dag"), context.get("dag_run")
    logical = context.get("logical_date")
    timetable = getattr(dag, "timetable", None)
    if (
        run_type_of(context) == "manual"
        and logical is not None
        and hasattr(timetable, "expression")
    ):
        # A manual run for a chosen logical date covers the interval that date ends, as the
        # REST API and `dag.test()` give it. `airflow dags trigger --logical-date` gives the
        # interval before the moment of triggering instead: a run meant for a past day would
        # decide for today.
        chosen = manual_interval(timetable, logical)
        if (start, end) != chosen:
            log.warning(
                "run %s: data interval %s to %s does not end at its logical date %s; using %s "
                "to %s",
                context.get("run_id"),
                start,
                end,
                logical,
                *chosen,
            )
        start, end = chosen
    elif end is None:
        # Airflow 3 manual runs may have no logical date: use the interval the DAG's timetable
        # would give a run at this run's `run_after`.
        run_after = getattr(dag_run, "run_after", None)
        if dag is None or run_after is None:
            raise ValueError("the run has neither a data interval nor a logical date")
        start, end = manual_interval(dag.timetable, run_after)

    def naive(value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    return (naive(start) if start else None), naive(end), str(context["run_id"])


def manual_interval(timetable: Any, run_after: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The data interval the scheduler infers for a manual run at `run_after`: the last complete
    cron interval. The task SDK's timetable is a definition only (it cannot infer), so this asks
    Airflow's own cron timetable, built from the same expression and zone."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    expression = getattr(timetable, "expression", None)
    if expression is None:
        raise ValueError(f"no data interval can be inferred for a {type(timetable).__name__}")
    interval = CronDataIntervalTimetable(expression, timetable.timezone).infer_manual_data_interval(
        run_after=pendulum.instance(run_after)
    )
    return interval.start, interval.end


# How long a scheduled retention sweep waits for the day's load before sweeping anyway.
LOAD_WAIT = dt.timedelta(hours=3)


# How far past the day a finished ingest run may be and still show the day was loaded.
LOAD_LOOKAHEAD_DAYS = 8


def day_s_load_finished(context: dict[str, Any]) -> bool:
    """For a scheduled `ccg_retention` run deciding day D: has `ccg_ingest` finished (in success
    or failure) its run for day D-1 (the interval that ended at midnight) or a later day's? A
    later day counts because ingest runs its days in order, and because a newly unpaused ingest
    runs only the latest interval. Asked of Airflow through the task's execution API, not the
    metadata database. Other runs (manual, backfill, `dag.test`) do not wait."""
    if run_type_of(context) != "scheduled":
        return True
    day = run_as_of(context) - dt.timedelta(days=1)
    loads = [
        dt.datetime.combine(day + dt.timedelta(days=k), dt.time(), tzinfo=dt.UTC)
        for k in range(LOAD_LOOKAHEAD_DAYS)
    ]
    finished = context["ti"].get_dr_count(
        dag_id="ccg_ingest", logical_dates=loads, states=["success", "failed"]
    )
    log.info("ccg_ingest runs finished for %s or the week after: %d", day, finished)
    return bool(finished)


def asset_extra(context: dict[str, Any]) -> dict[str, str]:
    """Metadata for an emitted Asset event: the day the producing run decided for, so an
    Asset-triggered consumer knows its as-of date without looking at the clock."""
    return {"as_of": run_as_of(context).isoformat(), "run_id": str(context["run_id"])}


def triggered_as_of(context: dict[str, Any]) -> dt.date:
    """The as-of date of an Asset-triggered run: the `as_of` param when given; else the latest
    `as_of` of the triggering events; else the day before the run's logical date or start."""
    requested = (context.get("params") or {}).get("as_of")
    if requested:
        return dt.date.fromisoformat(str(requested))
    events = context.get("triggering_asset_events") or {}
    dates = [
        dt.date.fromisoformat(event.extra["as_of"])
        for asset in events
        for event in events[asset]
        if (event.extra or {}).get("as_of")
    ]
    if dates:
        return max(dates)
    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    if moment is None:
        raise ValueError("the run has no as_of param, no triggering event and no logical date")
    return (moment.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()


def evidence_as_of(context: dict[str, Any]) -> dt.date:
    """The as-of date of an evidence run: the param or the triggering publication's date; a
    time-triggered run checks the day before it ran, the day the daily cycle has finished."""
    if (context.get("params") or {}).get("as_of") or context.get("triggering_asset_events"):
        return triggered_as_of(context)
    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    if moment is None:
        raise ValueError("the run has no as_of param, no triggering event and no logical date")
    return moment.astimezone(dt.UTC).date() - dt.timedelta(days=1)


# Tasks that write to the warehouse side by side (ingest's per-file tasks) share this pool, so a
# deployment bounds its concurrent writers. The scheduler leaves a task of a pool that does not
# exist unscheduled, so the deployment's init creates it (`warehouse.writers`).
WRITERS_POOL = "ccg_writers"
