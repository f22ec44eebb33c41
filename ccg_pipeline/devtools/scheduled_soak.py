"""The soak's scheduler profile: a real Airflow scheduler catching up on a week of missed days.

The world changes day by day for `--days` days ending yesterday (UTC), writing what the sources
would during an outage: portal changes, daily CRM exports, rotated logs, requests. Then the
compose deployment starts natively (`devtools/deployment.py`: PostgreSQL and the four Airflow
services) with `CCG_DAG_CATCHUP=true` and `CCG_DAG_START_DATE` at the first day, and the DAGs
are unpaused. Nobody triggers anything: the scheduler runs every missed interval of the daily
DAGs in order, and the Asset-triggered statistics and evidence runs follow.

When the scheduler is idle, every run must have succeeded, `ccg_ingest` and `ccg_retention`
must each have run every interval exactly once, and the soak's oracles judge the final state
as of the last day retention decided for: retention deadlines, nothing deleted early, requests,
the release, the evidence and leaks (task and service logs, XCom in the metadata database,
validation results, the GX store).

    python -m ccg_pipeline.devtools.scheduled_soak [--days 8] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from ccg_pipeline.devtools.deployment import NativeDeployment, native_deployment
from ccg_pipeline.devtools.soak import Profile, Soak, Violation, recorded_arguments
from ccg_pipeline.devtools.world import WorldOptions

DAG_IDS = ("ccg_ingest", "ccg_retention", "ccg_subject_requests", "ccg_statistics", "ccg_evidence")
CATCH_UP_DAGS = ("ccg_ingest", "ccg_retention")
RUNNING = {"queued", "running"}
# Tasks long enough to be caught mid-run and killed.
KILLED_TASKS = ("ingest_crm", "ingest_web_logs", "ingest_portal", "ingest_auth_logs")
# Seconds with no queued or running run (and every interval done) before the scheduler counts
# as idle: the Asset-triggered runs are created a few scheduler loops after their producers.
SETTLE_SECONDS = 45


def scheduler_profile(first: dt.date, days: int, seed: int = 23) -> Profile:
    """A small world with requests, a cease on the first day and one malformed row."""
    return Profile(
        name="scheduler",
        days=days,
        world=WorldOptions(
            seed=seed,
            start=first,
            companies=40,
            prospects=20,
            requests_per_day=0.6,
            scripted_ceases={first: 1},
            faults={first + dt.timedelta(days=2): "malformed_row"},
        ),
    )


def _runs(api: httpx.Client, dag_id: str) -> list[dict]:
    response = api.get(
        f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 500}
    )
    response.raise_for_status()
    return list(response.json()["dag_runs"])


def _wait_parsed(api: httpx.Client, deployment: NativeDeployment, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.check_alive()
        listed = {d["dag_id"] for d in api.get("/api/v2/dags").json().get("dags", [])}
        if set(DAG_IDS) <= listed:
            return
        time.sleep(2)
    raise RuntimeError(f"DAGs not parsed in time; see {deployment.log_file('dag-processor')}")


def _wait_idle(
    api: httpx.Client,
    deployment: NativeDeployment,
    expected: dict[str, int],
    timeout: float,
    progress: bool,
    on_poll: Callable[[], None] = lambda: None,
) -> dict[str, list[dict]]:
    """Until each catch-up DAG has its expected number of finished runs and no DAG has had a
    queued or running run for SETTLE_SECONDS. `on_poll` runs at every look."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    last_report = 0.0
    while time.monotonic() < deadline:
        deployment.check_alive()
        on_poll()
        runs = {dag_id: _runs(api, dag_id) for dag_id in DAG_IDS}
        busy = any(r["state"] in RUNNING for rs in runs.values() for r in rs)
        done = all(
            sum(r["state"] not in RUNNING for r in runs[d]) >= n for d, n in expected.items()
        )
        now = time.monotonic()
        if progress and now - last_report > 60:
            last_report = now
            states = {d: dict(Counter(r["state"] for r in rs)) for d, rs in runs.items()}
            print(f"runs so far: {states}", flush=True)
        if busy or not done:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= SETTLE_SECONDS:
            return runs
        time.sleep(5)
    raise Violation(
        dt.datetime.now(dt.UTC).date(), "runs", f"the scheduler was not idle after {timeout:.0f}s"
    )


class TaskKiller:
    """Once, SIGKILL the process running a task of `dag_id` mid-run, as the kernel's OOM killer
    would: no cleanup, the open transaction dies with its connection. Airflow's retry must
    then finish the run. Linux: the task process is the child of the supervisor whose command
    line names the task instance's id."""

    def __init__(self, api: httpx.Client, dag_id: str, task_ids: tuple[str, ...]) -> None:
        self.api, self.dag_id, self.task_ids = api, dag_id, task_ids
        self.killed: tuple[str, str, int] | None = None  # run, task, map index (-1: not mapped)

    def __call__(self) -> None:
        if self.killed is not None:
            return
        for run in _runs(self.api, self.dag_id):
            if run["state"] != "running":
                continue
            listed = self.api.get(
                f"/api/v2/dags/{self.dag_id}/dagRuns/{run['dag_run_id']}/taskInstances"
            ).json()["task_instances"]
            for ti in listed:
                running = ti["state"] == "running" and ti["task_id"] in self.task_ids
                if running and _kill_children_of(ti["id"]):
                    self.killed = (run["dag_run_id"], ti["task_id"], ti.get("map_index", -1))
                    return

    def retried(self) -> dict:
        """The killed task instance as the API shows it now."""
        assert self.killed is not None
        run_id, task_id, map_index = self.killed
        # A per-file ingest task is mapped: its instance is addressed by map index too.
        mapped = f"/{map_index}" if map_index >= 0 else ""
        response = self.api.get(
            f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{mapped}"
        )
        response.raise_for_status()
        return dict(response.json())


def _kill_children_of(marker: str) -> int:
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            children = (proc / "task" / proc.name / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            os.kill(int(child), signal.SIGKILL)
            killed += 1
    return killed


def _interval_day(run: dict) -> dt.date:
    """The day a daily run decides for: the last day of its data interval (as `run_as_of`)."""
    end = dt.datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00"))
    return (end - dt.timedelta(microseconds=1)).date()


def expected_intervals(first: dt.date, now: dt.datetime) -> dict[str, list[dt.date]]:
    """The days the scheduler must run, by first principles: ingest's intervals are the days
    from `first` to yesterday (each ends at the next midnight); retention's end at 03:00 of the
    day after `first`, and of each day since, up to the last 03:00 already past."""
    today = now.date()
    ingest = [first + dt.timedelta(days=k) for k in range((today - first).days)]
    last_sweep = today if now.time() >= dt.time(3) else today - dt.timedelta(days=1)
    sweep = [first + dt.timedelta(days=k) for k in range(1, (last_sweep - first).days + 1)]
    return {"ccg_ingest": ingest, "ccg_retention": sweep}


def run_scheduled(days: int, out: Path, *, timeout: float = 5400, progress: bool = True) -> dict:
    started = time.monotonic()
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=days)
    profile = scheduler_profile(first, days)
    work = Path(tempfile.mkdtemp(prefix="ccg-soak-scheduler-"))
    sources = work / "sources"
    sources.mkdir()
    extra_env = {"CCG_DAG_CATCHUP": "true", "CCG_DAG_START_DATE": first.isoformat()}
    with native_deployment(sources, extra_env=extra_env) as deployment:
        soak = Soak(profile, deployment.warehouse_url(), deployment.ccg_home, sources=sources)
        # The oracles read Airflow's metadata and task logs where the deployment keeps them.
        for key in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            os.environ[key] = deployment.env[key]
        soak.extra_logs = [deployment.root / "logs"]
        for offset in range(days):
            soak.world.advance(first + dt.timedelta(days=offset))
        with deployment.client() as api:
            _wait_parsed(api, deployment)
            for dag_id in DAG_IDS:
                api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
            unpaused = time.monotonic()
            wanted = expected_intervals(first, dt.datetime.now(dt.UTC).replace(tzinfo=None))
            expected = {d: len(v) for d, v in wanted.items()}
            killer = TaskKiller(api, "ccg_ingest", KILLED_TASKS)
            runs = _wait_idle(api, deployment, expected, timeout, progress, killer)
            catch_up_seconds = time.monotonic() - unpaused
            # The operator verifies the requests the catch-up took in; one manual run of the
            # request queue must then handle every one of them.
            soak.operate(today - dt.timedelta(days=1))
            api.post(
                "/api/v2/dags/ccg_subject_requests/dagRuns",
                json={"dag_run_id": "operator__after_catch_up", "logical_date": None},
            ).raise_for_status()
            time.sleep(10)
            runs = _wait_idle(api, deployment, expected, timeout, progress)
            killed = _check_killed_task_retried(killer, wanted["ccg_ingest"][-1])
        # Again from the clock: a 03:00 UTC passed during the run adds a sweep for today.
        wanted = expected_intervals(first, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        verdict = _judge(soak, runs, wanted)
    shutil.rmtree(work, ignore_errors=True)
    result = {
        "command": "python -m ccg_pipeline.devtools.scheduled_soak "
        + " ".join(recorded_arguments(sys.argv[1:])),
        "profile": profile.name,
        "backend": "postgresql",
        "first_day": first.isoformat(),
        "judged_as_of": verdict["as_of"],
        "seconds": round(time.monotonic() - started, 1),
        "catch_up_seconds": round(catch_up_seconds, 1),
        "runs": {d: dict(Counter(r["state"] for r in rs)) for d, rs in runs.items()},
        "run_types": {d: dict(Counter(r["run_type"] for r in rs)) for d, rs in runs.items()},
        "intervals": {d: [day.isoformat() for day in v] for d, v in wanted.items()},
        "checks_passed": verdict["checks"] + 1,
        "requests": len(soak.world.requests),
        "requests_verified_and_handled": len(soak.verified),
        "killed_task": killed,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak-scheduler-postgresql.json").write_text(json.dumps(result, indent=1))
    return result


def _check_killed_task_retried(killer: TaskKiller, day: dt.date) -> dict:
    if killer.killed is None:
        raise Violation(day, "faults", "no ingest task was caught running to be killed")
    ti = killer.retried()
    if ti["state"] != "success" or ti["try_number"] < 2:
        raise Violation(
            day,
            "faults",
            f"the killed task {ti['task_id']} ended {ti['state']} after {ti['try_number']} tries",
        )
    return {"run_id": killer.killed[0], "task_id": ti["task_id"], "tries": ti["try_number"]}


def _judge(soak: Soak, runs: dict[str, list[dict]], wanted: dict[str, list[dt.date]]) -> dict:
    """All runs green, each catch-up interval run once, then the soak's oracles."""
    last = max(max(v) for v in wanted.values())
    failed = {d: [r["dag_run_id"] for r in rs if r["state"] != "success"] for d, rs in runs.items()}
    if any(failed.values()):
        raise Violation(last, "runs", f"runs not successful: {failed}")
    for dag_id, days in wanted.items():
        scheduled = sorted(_interval_day(r) for r in runs[dag_id] if r["run_type"] == "scheduled")
        if scheduled != days:
            raise Violation(
                last,
                "runs",
                f"{dag_id} ran intervals {[str(d) for d in scheduled]}, expected "
                f"{[str(d) for d in days]}",
            )
    for dag_id in ("ccg_statistics", "ccg_evidence", "ccg_subject_requests"):
        if not runs[dag_id]:
            raise Violation(last, "runs", f"{dag_id} never ran")
    _check_verified_handled(soak, last)
    # Retention's last decision is the day the state is judged as of.
    as_of = max(wanted["ccg_retention"])
    checks = soak.judge(as_of, {r["dag_run_id"] for rs in runs.values() for r in rs})
    return {"as_of": as_of.isoformat(), "checks": checks}


def _check_verified_handled(soak: Soak, day: dt.date) -> None:
    """Every request the operator verified was handled by the run after: completed, or (an
    erasure) waiting for the CRM export to drop the person."""
    import sqlalchemy as sa

    from ccg_pipeline.warehouse import schema as s

    if not soak.verified:
        raise Violation(day, "N-RIGHTS", "no request reached verification (nothing to judge)")
    r = s.subject_requests
    with soak.engine.connect() as conn:
        status = dict(
            conn.execute(
                sa.select(r.c.source_ref, r.c.status).where(r.c.source_ref.in_(soak.verified))
            ).all()
        )
    handled = {s.COMPLETED, s.AWAITING_CRM}
    waiting = Counter(
        state for ref in soak.verified if (state := status.get(ref, "missing")) not in handled
    )
    if waiting:
        raise Violation(day, "N-RIGHTS", f"verified requests not handled: {dict(waiting)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=8, help="missed days to catch up (>= 7)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--timeout", type=float, default=5400)
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2")
    # Stopped from outside (SIGTERM), the deployment's services and server still go down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run_scheduled(args.days, args.out, timeout=args.timeout)
    except Violation as violation:
        print(
            f"VIOLATION on {violation.day}: {violation.clause}: {violation.detail}", file=sys.stderr
        )
        return 1
    print(
        f"scheduler soak: {sum(sum(v.values()) for v in result['runs'].values())} runs, all "
        f"successful; judged as of {result['judged_as_of']}: {result['checks_passed']} checks "
        f"passed, 0 violations; catch-up {result['catch_up_seconds'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
