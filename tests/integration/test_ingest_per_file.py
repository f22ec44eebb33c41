"""Per-file ingest lanes (web and auth logs): one mapped task per file in real `ccg_ingest` runs,
files loaded side by side, and a refused file that fails its own task only."""

from __future__ import annotations

import datetime as dt
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import env_for, fingerprint, migrated_settings, query, run_dag, state_of

from ccg_pipeline.ingest import ingest_source, lane_files

pytestmark = pytest.mark.integration

RUN = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)  # interval [2026-11-23, 2026-11-24)
END = dt.datetime(2026, 11, 24)


def _task_states(run) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): state_of(ti) for ti in run.get_task_instances()}


def _web_files(sources: Path) -> list[str]:
    """The web-log files the window holds, by first principles: every access log dated before
    the window's end (the generator names them by day)."""
    folder = sources / "logs" / "web"
    return sorted(
        f"logs.web_access:{p.name}" for p in folder.iterdir() if "access" in p.name and p.is_file()
    )


def test_each_web_log_file_is_its_own_mapped_task_and_the_files_add_up(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    from ccg_pipeline.dagrun import task_results

    run = run_dag(monkeypatch, "ccg_ingest", RUN, env_for(warehouse_url, demo_sources, tmp_path))
    assert state_of(run) == "success"
    states = _task_states(run)
    wanted = _web_files(demo_sources)
    assert len(wanted) >= 2
    mapped = sorted(index for task, index in states if task == "ingest_web_logs")
    assert mapped == list(range(len(wanted)))
    assert {states[("ingest_web_logs", i)] for i in mapped} == {"success"}
    results = task_results(run)
    assert sorted(results["list_web_logs"]) == wanted
    per_file = results["ingest_web_logs"]
    assert [r["batches"] for r in per_file] == [1] * len(wanted)
    loaded = query(
        warehouse_url,
        "SELECT sum(rows_loaded), sum(rows_quarantined) FROM ops.ingest_batches "
        "WHERE source = 'logs.web_access'",
    )[0]
    assert (
        sum(r["rows_loaded"] for r in per_file),
        sum(r["rows_quarantined"] for r in per_file),
    ) == loaded
    stored = query(warehouse_url, "SELECT count(DISTINCT source_file) FROM personal.web_access")
    assert stored == [(len(wanted),)]


def test_a_refused_file_fails_only_its_own_task_and_the_run(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    first = sources / "logs" / "web" / "access.log-20261122.gz"
    first.write_bytes(first.read_bytes()[: len(first.read_bytes()) // 2])  # truncated gzip
    run = run_dag(monkeypatch, "ccg_ingest", RUN, env_for(warehouse_url, sources, tmp_path))
    assert state_of(run) == "failed"
    files = query(warehouse_url, "SELECT source_ref, status FROM ops.ingest_batches")
    web = {ref: status for ref, status in files if ref.startswith("access.log")}
    assert web == {"access.log-20261122.gz": "refused", "access.log-20261123.gz": "loaded"}
    states = _task_states(run)
    order = sorted(_web_files(sources))
    refused = order.index("logs.web_access:access.log-20261122.gz")
    assert states[("ingest_web_logs", refused)] == "failed"
    assert states[("ingest_web_logs", 1 - refused)] == "success"
    assert states[("ingest_crm", -1)] == states[("ingest_portal", -1)] == "success"
    assert states[("publish_personal_zone", -1)] in ("upstream_failed", "skipped")


def test_a_day_without_log_files_maps_no_task_and_still_publishes(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    for folder in ("web", "auth"):
        shutil.rmtree(sources / "logs" / folder)
        (sources / "logs" / folder).mkdir()
    run = run_dag(monkeypatch, "ccg_ingest", RUN, env_for(warehouse_url, sources, tmp_path))
    assert state_of(run) == "success"
    states = _task_states(run)
    assert states[("publish_personal_zone", -1)] == "success"
    assert all(
        state == "skipped" for (task, _), state in states.items() if task == "ingest_web_logs"
    )
    assert query(warehouse_url, "SELECT count(*) FROM personal.web_access") == [(0,)]


def _sources_with_rejects(tmp_path: Path, demo_sources: Path) -> Path:
    """Both web-log files with the same kind of malformed line, so one run quarantines the same
    reason from two files."""
    import gzip

    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    for path in sorted((sources / "logs" / "web").glob("access.log-*.gz")):
        lines = gzip.decompress(path.read_bytes()).decode()
        path.write_bytes(gzip.compress((lines + "not a log line\n" * 3).encode()))
    return sources


def test_files_loaded_side_by_side_end_as_loaded_one_after_another(
    demo_sources: Path, warehouse_url: str, another_warehouse_url: str, tmp_path: Path
) -> None:
    """The same files through per-file calls on threads (as mapped tasks in the writers pool)
    and in one sequential call: the same rows, batches and quarantine counts, every file's
    count kept."""
    sources = _sources_with_rejects(tmp_path, demo_sources)
    settings = {
        url: migrated_settings(url, sources, tmp_path)
        for url in (warehouse_url, another_warehouse_url)
    }
    files = lane_files(settings[warehouse_url], "web_logs", END)
    assert files == _web_files(sources)

    def one(file: str) -> dict:
        return ingest_source(
            settings[warehouse_url],
            "web_logs",
            run_id="r",
            window_start=None,
            window_end=END,
            files=[file],
        )

    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        side_by_side = list(pool.map(one, files))
    ingest_source(
        settings[another_warehouse_url], "web_logs", run_id="r", window_start=None, window_end=END
    )
    assert fingerprint(warehouse_url) == fingerprint(another_warehouse_url)
    summary = "SELECT source_ref, reason_code, row_count FROM ops.quarantine_summary ORDER BY 1, 2"
    counts = query(warehouse_url, summary)
    assert counts == query(another_warehouse_url, summary)
    assert {ref for ref, _, _ in counts} == {f.split(":", 1)[1] for f in files}
    held = query(warehouse_url, "SELECT count(*) FROM personal.quarantine")[0][0]
    assert sum(n for _, _, n in counts) == held == sum(r["rows_quarantined"] for r in side_by_side)


def test_a_file_list_names_files_of_the_window_on_a_per_file_lane_only(
    demo_sources: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    settings = migrated_settings(url, demo_sources, tmp_path)
    with pytest.raises(
        ValueError, match=r"no such file to load in this window: \['logs.web_access:nope.log'\]"
    ):
        ingest_source(
            settings,
            "web_logs",
            run_id="r",
            window_start=None,
            window_end=END,
            files=["logs.web_access:nope.log"],
        )
    early = lane_files(settings, "web_logs", dt.datetime(2026, 11, 23))
    assert early == ["logs.web_access:access.log-20261122.gz"], "a file of a later day waits"
    with pytest.raises(ValueError, match="loads its files in order"):
        ingest_source(settings, "crm", run_id="r", window_start=None, window_end=END, files=[])
    assert query(url, "SELECT count(*) FROM ops.ingest_batches") == [(0,)]


def test_the_next_day_maps_tasks_only_for_new_files_unless_a_full_refresh(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    """Rotated logs stay in their folder: the next run lists only the file that arrived (one
    changed in place counts as new), not the history; a full refresh lists everything."""
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    env = env_for(warehouse_url, sources, tmp_path)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", RUN, env)) == "success"
    web = sources / "logs" / "web"
    (web / "access.log-20261124.gz").write_bytes((web / "access.log-20261123.gz").read_bytes())
    changed = web / "access.log-20261122.gz"
    changed.write_bytes(_with_extra_line(changed.read_bytes()))
    run = run_dag(monkeypatch, "ccg_ingest", RUN + dt.timedelta(days=1), env)
    assert state_of(run) == "success"
    from ccg_pipeline.dagrun import task_results

    assert sorted(task_results(run)["list_web_logs"]) == [
        "logs.web_access:access.log-20261122.gz",
        "logs.web_access:access.log-20261124.gz",
    ]
    refresh = run_dag(
        monkeypatch, "ccg_ingest", RUN + dt.timedelta(days=1), env, {"full_refresh": True}
    )
    assert state_of(refresh) == "success"
    assert len(task_results(refresh)["list_web_logs"]) == 3


def _with_extra_line(gzipped: bytes) -> bytes:
    import gzip

    text = gzip.decompress(gzipped).decode()
    extra = '1.2.3.4 - - [22/Nov/2026:23:59:59 +0000] "GET /late HTTP/1.1" 200 5 "-" "x"\n'
    return gzip.compress((text + extra).encode())


def test_an_ordered_lane_skips_loaded_files_and_reloads_a_changed_one(
    demo_sources: Path, warehouse_url: str, tmp_path: Path
) -> None:
    """A CRM folder keeps every daily export: a run skips each one already loaded with the same
    content (`loaded_contents`, one query), loads one changed in place, and a refused file is
    tried again; `full_refresh` loads them all."""
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    settings = migrated_settings(warehouse_url, sources, tmp_path / "home")
    window = {"window_start": None, "window_end": END}
    exports = sorted(p.name for p in (sources / "crm").glob("*.csv"))
    first = ingest_source(settings, "crm", run_id="r1", **window)
    assert (first["batches"], first["batches_skipped"]) == (len(exports), 0)

    again = ingest_source(settings, "crm", run_id="r2", **window)
    assert (again["batches_skipped"], again["rows_read"]) == (len(exports), 0)

    changed = sources / "crm" / "companies_20261123.csv"
    header, *rows = changed.read_text(encoding="utf-8").splitlines()
    changed.write_text("\n".join([header, *rows[:-1]]) + "\n", encoding="utf-8")
    unknown = sources / "crm" / "contacts_20261123.csv"
    text = unknown.read_text(encoding="utf-8")
    unknown.write_text(text.replace("Job Title", "Fax Number", 1), encoding="utf-8")
    with pytest.raises(Exception, match="Fax Number"):
        ingest_source(settings, "crm", run_id="r3", **window)
    statuses = query(
        warehouse_url,
        "SELECT source_ref, status, rows_read FROM ops.ingest_batches WHERE run_id = 'r3'",
    )
    assert sorted(statuses) == [
        ("companies_20261123.csv", "loaded", len(rows) - 1),
        ("contacts_20261123.csv", "refused", 0),
    ]

    unknown.write_text(text, encoding="utf-8")  # corrected: loaded, though its name was seen
    fixed = ingest_source(settings, "crm", run_id="r4", **window)
    assert (fixed["batches_skipped"], fixed["refused"]) == (len(exports) - 1, [])
    assert fixed["rows_read"] == len(text.splitlines()) - 1

    full = ingest_source(settings, "crm", run_id="r5", full_refresh=True, **window)
    assert full["batches_skipped"] == 0 and full["batches"] == len(exports)
