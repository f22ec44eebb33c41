"""
### `ccg_ingest`: daily ingest into the personal zone

**Schedule:** daily, one run per UTC day (data interval `[day, day + 1)`); no catch-up by default,
`max_active_runs=1`.

**Reads:** the customer-portal database (connection `ccg_portal`, or `CCG_PORTAL_URL`), then one
task per file lane that `ccg_pipeline/policy/data_map.yaml` registers (its `ingest` entries):
CRM exports (`CCG_CRM_DIR`), web access logs (`CCG_WEB_LOG_DIR`) and portal authentication logs
(`CCG_AUTH_LOG_DIR`), each under `CCG_SOURCE_DIR` by default. A lane marked `per_file` (the
logs) is listed by `list_<lane>` and loaded by one mapped task per file in the pool
`ccg_writers` (1 slot on SQLite, `CCG_WRITER_SLOTS` or 4 on PostgreSQL).

**Writes:** the personal zone (identifiable rows, IPs cut to a network prefix), quarantined
records in `personal.quarantine`, and counts in `ops.ingest_batches`, `ops.quarantine_summary`
and `ops.audit_ledger`. Emits the Asset `ccg://warehouse/personal` when every source loaded.

**Behaviour:** the warehouse schema is migrated first (idempotent). Each source loads every batch
it can; malformed rows are quarantined and counted, never dropped. A batch with a column the data
map does not know is refused, and the task fails *after* the other batches are committed, naming
the column (a per-file lane fails only that file's mapped task). Reruns of an interval leave the
same state (upserts keyed on source ids; files already loaded with the same content are skipped
unless `full_refresh`).

**When it fails:** read the task log (counts and column names only, never values). Refused
batches: tag the new column in `ccg_pipeline/policy/data_map.yaml`, then clear the task.
Quarantined rows: `ccg summary` shows counts by reason; the records are in
`personal.quarantine`. Database errors: check the `ccg_warehouse` connection and clear the task;
reruns are safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, Param, dag, task

from ccg_pipeline.dag_support import PERSONAL_ZONE_URI, WRITERS_POOL, daily_dag
from ccg_pipeline.policy import load_data_map

PERSONAL_ZONE = Asset(PERSONAL_ZONE_URI)
INGEST_LANES = load_data_map().ingest_lanes()


def _ingest(source: str, context: dict, files: list[str] | None = None) -> dict:
    """A lane (or, for a per-file lane, the given files) for the run's interval: counts only."""
    from ccg_pipeline.dag_support import run_window, task_settings
    from ccg_pipeline.ingest import ingest_source

    start, end, run_id = run_window(context)
    return ingest_source(
        task_settings(),
        source,
        run_id=run_id,
        window_start=start,
        window_end=end,
        full_refresh=bool(context["params"].get("full_refresh")),
        files=files,
    )


@dag(
    dag_id="ccg_ingest",
    **daily_dag("0 0 * * *", tags=["ingest", "personal-zone"]),
    doc_md=__doc__,
    params={
        "full_refresh": Param(
            False, type="boolean", description="Reload every source from the beginning."
        )
    },
)
def ccg_ingest() -> None:
    @task
    def migrate_warehouse() -> str | None:
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.warehouse import migrate
        from ccg_pipeline.warehouse.engine import create_warehouse_engine

        engine = create_warehouse_engine(task_settings().warehouse_url)
        try:
            return migrate.upgrade(engine)
        finally:
            engine.dispose()

    def make_ingest_task(source: str):
        @task(task_id=f"ingest_{source}")
        def ingest(**context) -> dict:
            return _ingest(source, context)

        return ingest

    def make_per_file_tasks(source: str, upstream: list) -> Any:
        """A per-file lane: list its new or changed files, then one mapped task per file in the
        writers pool (on SQLite, one slot). A refused file fails its own task only."""

        @task(task_id=f"list_{source}")
        def list_files(**context) -> list[str]:
            from ccg_pipeline.dag_support import run_window, task_settings
            from ccg_pipeline.ingest import lane_files

            _start, end, _run_id = run_window(context)
            full_refresh = bool(context["params"].get("full_refresh"))
            return lane_files(task_settings(), source, end, full_refresh=full_refresh)

        @task(task_id=f"ingest_{source}", pool=WRITERS_POOL)
        def ingest_file(file: str, **context) -> dict:
            return _ingest(source, context, files=[file])

        listed = list_files()
        upstream >> listed
        return ingest_file.expand(file=listed)

    # The downstream DAGs wait for this; a per-file lane with no file that day maps no task
    # (skipped), which is no failure.
    @task(outlets=[PERSONAL_ZONE], trigger_rule="none_failed")
    def publish_personal_zone(summaries: list, **context) -> dict:
        """Emit the Asset downstream DAGs wait for, with the run's as-of date as metadata."""
        from ccg_pipeline.dag_support import asset_extra

        context["outlet_events"][PERSONAL_ZONE].extra = asset_extra(context)
        # A per-file lane's summaries arrive as one list (its mapped tasks' results).
        flat = [
            summary
            for item in summaries
            for summary in (item if isinstance(item, Sequence) else [item])
        ]
        return {
            key: sum(s[key] for s in flat)
            for key in ("rows_read", "rows_loaded", "rows_quarantined")
        }

    # One task per lane: the portal, then each file lane the data map registers (per file when
    # the lane's files stand alone). A lane that links to subjects through another (auth events
    # through portal accounts) waits for it.
    migrated = migrate_warehouse()
    loads: dict[str, Any] = {}
    for lane in INGEST_LANES:
        upstream = [loads[name] for name in lane.after] if lane.after else [migrated]
        if lane.per_file:
            loads[lane.name] = make_per_file_tasks(lane.name, upstream)
        else:
            loads[lane.name] = make_ingest_task(lane.name)()
            upstream >> loads[lane.name]
    publish_personal_zone(list(loads.values()))


ccg_ingest_dag = ccg_ingest()
