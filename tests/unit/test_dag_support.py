"""Run windows: the day a run decides for comes from its data interval, never the wall clock,
including manual runs that Airflow 3 starts without a logical date."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.sdk import CronDataIntervalTimetable

from ccg_pipeline.dag_support import day_s_load_finished, run_as_of, run_window

UTC = dt.UTC


def _manual_context(cron: str, run_after: dt.datetime) -> dict:
    dag = SimpleNamespace(timetable=CronDataIntervalTimetable(cron, timezone="UTC"))
    return {"dag": dag, "dag_run": SimpleNamespace(run_after=run_after), "run_id": "manual__x"}


@pytest.mark.parametrize(
    ("cron", "run_after", "window", "as_of"),
    [
        # Ingest at midnight: the last complete day.
        (
            "0 0 * * *",
            dt.datetime(2026, 12, 7, 1, 30, tzinfo=UTC),
            ("2026-12-06", "2026-12-07"),
            "2026-12-06",
        ),
        # Retention at 03:00, triggered at 01:30: the interval that ended yesterday at 03:00.
        (
            "0 3 * * *",
            dt.datetime(2026, 12, 7, 1, 30, tzinfo=UTC),
            ("2026-12-05T03:00", "2026-12-06T03:00"),
            "2026-12-06",
        ),
        # Exactly on a tick: that tick ends the interval.
        (
            "0 3 * * *",
            dt.datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
            ("2026-12-06T03:00", "2026-12-07T03:00"),
            "2026-12-07",
        ),
        # The hourly request queue.
        (
            "0 * * * *",
            dt.datetime(2026, 12, 7, 0, 59, tzinfo=UTC),
            ("2026-12-06T23:00", "2026-12-07T00:00"),
            "2026-12-06",
        ),
    ],
)
def test_a_manual_run_without_a_logical_date_gets_the_last_complete_interval(
    cron: str, run_after: dt.datetime, window: tuple[str, str], as_of: str
) -> None:
    start, end, run_id = run_window(_manual_context(cron, run_after))
    assert (start, end) == tuple(dt.datetime.fromisoformat(w) for w in window)
    assert run_id == "manual__x"
    # The day decided for is the interval's last day: the day before a midnight end.
    assert run_as_of(_manual_context(cron, run_after)) == dt.date.fromisoformat(as_of)


def test_a_manual_run_for_a_chosen_day_decides_for_that_day_whatever_interval_it_was_given() -> (
    None
):
    """`airflow dags trigger --logical-date 2026-11-20T03:00` makes a run whose data interval ends
    before the moment of triggering (5 to 6 December here); the run must still decide for the
    day its logical date ends, 20 November, as a REST-triggered run does."""
    context = {
        **_manual_context("0 3 * * *", dt.datetime(2026, 12, 6, 9, 0, tzinfo=UTC)),
        "logical_date": dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        "data_interval_start": dt.datetime(2026, 12, 5, 3, 0, tzinfo=UTC),
        "data_interval_end": dt.datetime(2026, 12, 6, 3, 0, tzinfo=UTC),
    }
    context["dag_run"].run_type = "manual"
    assert run_window(context)[:2] == (dt.datetime(2026, 11, 19, 3), dt.datetime(2026, 11, 20, 3))
    assert run_as_of(context) == dt.date(2026, 11, 20)


def test_a_scheduled_run_uses_its_interval_as_naive_utc() -> None:
    context = {
        "data_interval_start": dt.datetime(2026, 12, 6, tzinfo=UTC),
        "data_interval_end": dt.datetime(2026, 12, 7, tzinfo=UTC),
        "run_id": "scheduled__2026-12-06",
    }
    assert run_window(context) == (
        dt.datetime(2026, 12, 6),
        dt.datetime(2026, 12, 7),
        context["run_id"],
    )
    assert run_as_of(context) == dt.date(2026, 12, 6)


def test_a_run_with_nothing_to_date_it_is_refused() -> None:
    with pytest.raises(ValueError, match="neither a data interval nor a logical date"):
        run_window({"run_id": "manual__y", "dag_run": SimpleNamespace(run_after=None)})


class _TaskInstance:
    """Stands in for the task SDK's runtime task instance: records what was asked."""

    def __init__(self, finished: int) -> None:
        self.finished = finished
        self.asked: list[dict] = []

    def get_dr_count(self, **query: object) -> int:
        self.asked.append(query)
        return self.finished


def _retention_context(run_type: str, ti: _TaskInstance) -> dict:
    return {
        # The sweep deciding 7 December: its interval ends at 03:00 that day.
        "data_interval_start": dt.datetime(2026, 12, 6, 3, tzinfo=UTC),
        "data_interval_end": dt.datetime(2026, 12, 7, 3, tzinfo=UTC),
        "run_id": f"{run_type}__2026-12-06T03:00:00+00:00",
        "dag_run": SimpleNamespace(run_type=run_type),
        "ti": ti,
    }


@pytest.mark.parametrize("finished", [0, 1])
def test_a_scheduled_sweep_waits_for_the_ingest_run_of_the_day_before(finished: int) -> None:
    ti = _TaskInstance(finished)
    assert day_s_load_finished(_retention_context("scheduled", ti)) is bool(finished)
    # Ingest's run for 6 December (its interval starts at midnight that day) or a later day's:
    # a newly unpaused ingest runs only its latest interval, and a catch-up runs days in order.
    (asked,) = ti.asked
    assert asked["dag_id"] == "ccg_ingest" and asked["states"] == ["success", "failed"]
    assert asked["logical_dates"][0] == dt.datetime(2026, 12, 6, tzinfo=UTC)
    assert asked["logical_dates"] == sorted(asked["logical_dates"])
    assert all(d.time() == dt.time() for d in asked["logical_dates"])
    assert dt.datetime(2026, 12, 5, tzinfo=UTC) not in asked["logical_dates"]


def test_a_manual_sweep_does_not_wait() -> None:
    ti = _TaskInstance(0)
    assert day_s_load_finished(_retention_context("manual", ti)) is True
    assert ti.asked == []


def test_task_settings_take_the_portal_write_connection_else_the_portal_one(monkeypatch) -> None:
    import json

    from ccg_pipeline.dag_support import task_settings

    for name in ("CCG_PORTAL_URL", "CCG_PORTAL_WRITE_URL", "AIRFLOW_CONN_CCG_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    read = {"conn_type": "postgres", "host": "portal.db", "login": "reader", "schema": "portal"}
    monkeypatch.setenv("AIRFLOW_CONN_CCG_PORTAL", json.dumps(read))
    monkeypatch.delenv("AIRFLOW_CONN_CCG_PORTAL_WRITE", raising=False)
    settings = task_settings()
    assert "reader@portal.db" in settings.portal_url
    assert settings.portal_url_for_writes == settings.portal_url
    monkeypatch.setenv("AIRFLOW_CONN_CCG_PORTAL_WRITE", json.dumps({**read, "login": "writer"}))
    settings = task_settings()
    assert "reader@" in settings.portal_url and "writer@" in settings.portal_url_for_writes


def test_the_writers_pool_has_one_slot_on_sqlite_and_a_set_number_elsewhere(monkeypatch) -> None:
    from ccg_pipeline.config import Settings
    from ccg_pipeline.warehouse.writers import writer_slots

    def settings(url: str) -> Settings:
        return Settings.from_env({"CCG_HOME": "/nonexistent", "CCG_WAREHOUSE_URL": url})

    monkeypatch.setenv("CCG_WRITER_SLOTS", "6")
    assert writer_slots(settings("sqlite:////x/main.db")) == 1
    assert writer_slots(settings("postgresql+psycopg://u@h/db")) == 6
    monkeypatch.delenv("CCG_WRITER_SLOTS")
    assert writer_slots(settings("postgresql+psycopg://u@h/db")) == 4
    monkeypatch.setenv("CCG_WRITER_SLOTS", "0")
    with pytest.raises(ValueError, match="CCG_WRITER_SLOTS must be a whole number of at least 1"):
        writer_slots(settings("postgresql+psycopg://u@h/db"))
