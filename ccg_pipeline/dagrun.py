"""Run a DAG from `dags/` for one logical date through Airflow's own `dag.test()`.

Used by `make demo` and the integration tests: a real DAG run (scheduling rules, XCom, assets,
callbacks) in one process, against the configured warehouse. Airflow is imported lazily so the
core package stays usable without it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from typing import Any

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"


def load_dag(dag_id: str, dags_dir: Path = DAGS_DIR) -> Any:
    """Import `dags/<dag_id>.py` and return its DAG object, `<dag_id>_dag`."""
    path = dags_dir / f"{dag_id}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no DAG file {path}")
    spec = importlib.util.spec_from_file_location(f"ccg_dag_{dag_id}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, f"{dag_id}_dag")


def run_dag(dag_id: str, logical_date: dt.datetime, conf: dict[str, Any] | None = None) -> Any:
    """Run the DAG for `logical_date` (UTC) and return the finished DagRun."""
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=dt.UTC)
    dag = load_dag(dag_id)
    # Airflow 3.3's dag.test() ends a run by looking the DAG's Deadline Alerts up by their
    # database ids, but its in-memory copy of the DAG holds their definitions instead, so the
    # run fails as it finishes. A deadline is the scheduler's to watch: deployed DAGs keep theirs
    # (the scheduler tests run them); an in-process run leaves it out.
    dag.deadline = None
    # `run_after` defaults to the wall clock: a run for a past day would then show in the UI as
    # spanning every day since. The scheduler would have run it when its interval ended.
    return dag.test(run_after=logical_date, logical_date=logical_date, run_conf=conf)


def task_results(run: Any) -> dict[str, Any]:
    """What each task of a finished run returned (XCom `return_value`: counts and ids only, by
    the DAGs' convention), by task id in task order of completion; a mapped task's results
    (one per file of a per-file ingest lane) as a list in map-index order."""
    import sqlalchemy as sa
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    x, ti = XComModel, TaskInstance
    with create_session() as session:
        rows = session.execute(
            sa.select(x.task_id, x.map_index, x.value)
            .join(
                ti,
                sa.and_(
                    ti.dag_id == x.dag_id,
                    ti.run_id == x.run_id,
                    ti.task_id == x.task_id,
                    ti.map_index == x.map_index,
                ),
            )
            .where(x.dag_id == run.dag_id, x.run_id == run.run_id, x.key == "return_value")
            .order_by(ti.end_date, x.map_index)
        ).all()
    results: dict[str, Any] = {}
    mapped: dict[str, list[tuple[int, Any]]] = {}
    for row in rows:
        value = XComModel.deserialize_value(row)
        if row.map_index < 0:
            results[row.task_id] = value
        else:
            mapped.setdefault(row.task_id, []).append((row.map_index, value))
            results[row.task_id] = None  # keeps the task's place in completion order
    for task_id, values in mapped.items():
        results[task_id] = [value for _, value in sorted(values, key=lambda pair: pair[0])]
    return results


def main(argv: list[str] | None = None) -> int:
    """`python -m ccg_pipeline.dagrun DAG_ID DATE [key=value ...]`, or several runs in order in
    one process (Airflow is imported and set up once): `... DAG_ID@DATE DAG_ID@DATE ...`. Each
    DATE is YYYY-MM-DD[THH:MM:SS] (UTC). Prints what each task returned and the run's state;
    stops at the first run that does not succeed. Exit 0 when all succeeded."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    runs: list[tuple[str, str, dict[str, Any] | None]]
    if args and all("@" in a for a in args):
        runs = [(dag_id, date, None) for dag_id, _, date in (a.partition("@") for a in args)]
    elif len(args) >= 2:
        given = {k: json.loads(v) for k, _, v in (a.partition("=") for a in args[2:])}
        runs = [(args[0], args[1], given or None)]
    else:
        print(main.__doc__, file=sys.stderr)
        return 2
    for dag_id, date, conf in runs:
        run = run_dag(dag_id, dt.datetime.fromisoformat(date), conf)
        state = str(getattr(run, "state", "unknown"))
        for task_id, result in task_results(run).items():
            if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
                for index, each in enumerate(result):  # a mapped task: one line per file
                    print(f"  {task_id}[{index}]: {_compact(each)}")
            elif result not in (None, {}, []):
                print(f"  {task_id}: {_compact(result)}")
        print(f"DAG run {dag_id} for {date}: {state}", flush=True)
        if not state.endswith("success"):
            return 1
    return 0


def _compact(result: Any) -> str:
    """A task's return value on one line: `key=value` for what is not zero or empty."""
    import json

    if not isinstance(result, dict):
        return json.dumps(result, default=str)
    shown = {k: v for k, v in result.items() if v not in (0, None, "", [], {})}
    if not shown:
        return "nothing to do"
    return " ".join(
        f"{k}={v if isinstance(v, int | float | str) else json.dumps(v, default=str)}"
        for k, v in shown.items()
    )


if __name__ == "__main__":
    raise SystemExit(main())
