"""DAG files parse cleanly, cheaply and with the metadata operators rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags
ROOT = Path(__file__).resolve().parents[2]
EXPECTED_DAGS = {
    "ccg_ingest",
    "ccg_retention",
    "ccg_statistics",
    "ccg_subject_requests",
    "ccg_evidence",
}


def _parse(**settings: str) -> dict:
    # As deployed: the default retries, not the suite setting CCG_TASK_RETRIES=0.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CCG_TASK_RETRIES", "CCG_DAG_CATCHUP", "CCG_DAG_START_DATE")
    }
    probe = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("parse_probe.py")), str(ROOT / "dags")],
        capture_output=True,
        text=True,
        env={**env, **settings},
        timeout=300,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    return json.loads(probe.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed() -> dict:
    return _parse()


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) >= EXPECTED_DAGS


def test_no_database_connection_or_variable_access_at_parse_time(parsed: dict) -> None:
    assert parsed["touched"] == []


def test_nothing_heavy_is_imported_at_parse_time(parsed: dict) -> None:
    assert parsed["heavy_modules"] == []


def test_one_dag_per_file_named_after_it(parsed: dict) -> None:
    assert {f"{dag_id}.py" for dag_id in parsed["dags"]} == set(parsed["files"])
    assert parsed["dags"]
    for dag_id, dag in parsed["dags"].items():
        assert dag["fileloc"] == f"{dag_id}.py"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_tags_owner_retries_callbacks_and_docs(parsed: dict, dag_id: str) -> None:
    dag = parsed["dags"][dag_id]
    assert "ccg" in dag["tags"]
    for heading in ("Schedule", "Reads", "Writes", "When it fails"):
        assert heading in dag["doc_md"], f"{dag_id} doc_md lacks '{heading}'"
    assert dag["max_active_runs"] == 1
    assert dag["tasks"], f"{dag_id} has no tasks"
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "data-engineering", task_id
        assert task["retries"] >= 1, task_id
        assert task["has_failure_callback"], task_id


def test_every_run_has_a_deadline_that_alerts(parsed: dict) -> None:
    """A stuck run raises an alert through the shared notifier; the hourly requests run must
    end before the next one is due."""
    minutes = {}
    for dag_id, dag in parsed["dags"].items():
        (deadline,) = dag["deadlines"]
        assert deadline["reference"] == "DagRunQueuedAtDeadline", dag_id
        assert deadline["callback"]["path"] == "ccg_pipeline.dag_support.CcgAlertNotifier"
        minutes[dag_id] = deadline["minutes"]
    assert minutes.pop("ccg_subject_requests") < 60
    assert set(minutes.values()) == {6 * 60}


def test_no_catch_up_by_default(parsed: dict) -> None:
    assert {d: dag["catchup"] for d, dag in parsed["dags"].items()} == dict.fromkeys(
        EXPECTED_DAGS, False
    )
    assert {dag["start_date"] for dag in parsed["dags"].values()} == {"2026-01-01T00:00:00+00:00"}


def test_catch_up_setting_applies_to_the_daily_interval_dags_only() -> None:
    """After an outage the daily DAGs run every missed interval from the start date; the hourly
    request queue and the Asset-triggered DAGs do not (their next run covers what was missed)."""
    dags = _parse(CCG_DAG_CATCHUP="true", CCG_DAG_START_DATE="2026-11-20")["dags"]
    assert {d for d, dag in dags.items() if dag["catchup"]} == {"ccg_ingest", "ccg_retention"}
    assert {dag["start_date"] for dag in dags.values()} == {"2026-11-20T00:00:00+00:00"}


def test_a_bad_catch_up_setting_names_itself() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CCG_DAG_START_DATE", "20/11/2026")
        patch.setenv("CCG_DAG_CATCHUP", "maybe")
        from ccg_pipeline import dag_support

        with pytest.raises(ValueError, match="CCG_DAG_START_DATE must be a date"):
            dag_support.start_date()
        with pytest.raises(ValueError, match="CCG_DAG_CATCHUP must be true or false"):
            dag_support.catchup_enabled()


def test_dag_files_do_not_import_each_other() -> None:
    files = sorted((ROOT / "dags").glob("*.py"))
    assert len(files) >= len(EXPECTED_DAGS)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "from dags" not in text and "import dags" not in text, path.name
