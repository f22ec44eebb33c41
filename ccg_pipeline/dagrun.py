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
    the DAGs' convention), by task id in task order of completion."""
    import sqlalchemy as sa
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    x, ti = XComModel, TaskInstance
    with create_session() as session:
        rows = session.execute(
            sa.select(x.task_id, x.value)
            .join(
                ti, sa.and_(ti.dag_id == x.dag_id, ti.run_id == x.run_id, ti.task_id == x.task_id)
            )
            .where(x.dag_id == run.dag_id, x.run_id == run.run_id, x.key == "return_value")
            .order_by(ti.end_date)
        ).all()
    return {row.task_id: XComModel.deserialize_value(row) for row in rows}


def main(argv: list[str] | None = None) -> int:
    """`python -m ccg_pipeline.dagrun DAG_ID YYYY-MM-DD [key=value ...]`: exit 0 on success."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    conf = {k: json.loads(v) for k, _, v in (a.partition("=") for a in args[2:])}
    run = run_dag(args[0], dt.datetime.fromisoformat(args[1]), conf or None)
    state = str(getattr(run, "state", "unknown"))
    for task_id, result in task_results(run).items():
        if result not in (None, {}, []):
            print(f"  {task_id}: {json.dumps(result, default=str, separators=(', ', ': '))}")
    print(f"DAG run {args[0]} for {args[1]}: {state}")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    raise SystemExit(main())
