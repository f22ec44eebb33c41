"""Parse every DAG file the way the dag-processor does, with database, connection and variable
access booby-trapped, then print what was parsed as JSON. Run in a fresh interpreter so the
module list reflects parse-time imports only."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import sqlalchemy.engine
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import BaseHook, Variable

touched: list[str] = []


def _trap(name: str):
    def trapped(*_args, **_kwargs):
        touched.append(name)
        raise RuntimeError(f"{name} called while parsing DAGs")

    return trapped


sqlalchemy.engine.Engine.connect = _trap("Engine.connect")
sqlalchemy.engine.Engine.raw_connection = _trap("Engine.raw_connection")
sqlite3.connect = _trap("sqlite3.connect")
BaseHook.get_connection = _trap("BaseHook.get_connection")
Variable.get = _trap("Variable.get")

dags_dir = Path(sys.argv[1])
bag = DagBag(dag_folder=str(dags_dir), safe_mode=False)
heavy = sorted(
    m for m in ("pandas", "great_expectations", "faker", "psycopg2", "pyarrow") if m in sys.modules
)
print(
    json.dumps(
        {
            "import_errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()},
            "touched": touched,
            "heavy_modules": heavy,
            "files": sorted(p.name for p in dags_dir.glob("*.py")),
            "dags": {
                dag_id: {
                    "fileloc": Path(dag.fileloc).name,
                    "tags": sorted(dag.tags),
                    "doc_md": dag.doc_md or "",
                    "catchup": dag.catchup,
                    "start_date": dag.start_date.isoformat() if dag.start_date else None,
                    "max_active_runs": dag.max_active_runs,
                    "deadlines": [
                        {
                            "reference": type(d.reference).__name__,
                            "minutes": d.interval.total_seconds() / 60,
                            "callback": d.callback.serialize(),
                        }
                        for d in dag.deadline or []
                    ],
                    "tasks": {
                        t.task_id: {
                            "owner": t.owner,
                            "retries": t.retries,
                            "has_failure_callback": bool(t.on_failure_callback),
                        }
                        for t in dag.tasks
                    },
                }
                for dag_id, dag in bag.dags.items()
            },
        }
    )
)
