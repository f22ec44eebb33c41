"""Run one pipeline stage in its own process, as an Airflow task would, so a test can kill it.

`python stage_child.py STAGE RUN_ID`, with the warehouse, home and sources in the CCG_*
environment and an optional CCG_FAULT_INJECT (see `ccg_pipeline.faults`). STAGE is `ingest`
(every source, in the DAG's order), `ingest:SOURCE` (one source, as one DAG task), `retention`,
`statistics` or `requests`. Exit code 0 when the stage finished.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

AS_OF = dt.date(2026, 11, 23)
END = dt.datetime(2026, 11, 24)
# The moment subject requests are processed (an hour into the run after the one that took them in).
REQUESTS_AT = dt.datetime(2026, 11, 24, 1)


def run(stage: str, run_id: str, env: dict[str, str] | None = None) -> None:
    """Run `stage` with the settings of `env` (default: this process's environment)."""
    from ccg_pipeline.config import Settings

    settings = Settings.from_env(env)
    if stage == "ingest" or stage.startswith("ingest:"):
        from ccg_pipeline.ingest import ingest_source, lane_names

        # Every source (portal before auth_logs, as in the DAG), or the one named.
        for source in lane_names() if stage == "ingest" else (stage.partition(":")[2],):
            ingest_source(settings, source, run_id=run_id, window_start=None, window_end=END)
    elif stage == "retention":
        from ccg_pipeline.retention import run_retention

        chunk_rows = int((os.environ if env is None else env).get("CCG_TEST_CHUNK_ROWS", "0"))
        run_retention(settings, AS_OF, run_id, chunk_rows=chunk_rows or None)
    elif stage == "statistics":
        from ccg_pipeline import publication

        publication.build_statistics(settings, AS_OF, run_id)
        publication.validate_statistics(settings, run_id)
        publication.publish_statistics(settings, run_id)
    elif stage == "requests":
        from ccg_pipeline.requests import run_processing

        run_processing(settings, REQUESTS_AT)
    else:
        raise SystemExit(f"unknown stage {stage!r}")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
