"""
### `ccg_statistics`: anonymised statistics for analysts, built, checked, then published (N-AGG, N-ANON)

**Schedule:** by Assets. A run starts once both `ccg://warehouse/personal` (from `ccg_ingest`)
and `ccg://warehouse/retention` (from `ccg_retention`) have new events, so each day's figures
are built after that day's load and sweep. The as-of date comes from the triggering events
(`as_of` in their extra), never the clock; a manual run takes the `as_of` param, or the day
before its logical date. `max_active_runs=1`: staging is one build at a time.

**Reads:** the personal zone (minus held subjects: a hold excludes a person from everything but
storage), the anonymised roll-ups in `staging.anon_*` (the value of rows retention deleted), and
`ops.subject_requests`.

**Writes:** `staging.build_*` and `staging.build_manifest`; `ops.statistics_reports` (per table:
suppressed cells, records dropped, generalisation levels, information lost, check outcome); on
success the `statistics` schema, swapped in one transaction, plus `statistics.publications`;
on SQLite also `$CCG_HOME/analyst/statistics.sqlite`, the self-contained file analysts receive.
Emits the Asset `ccg://warehouse/statistics`.

**Tasks:** `build_statistics` -> `check_statistics` (every count is 0 or at least the minimum
cell; no margin group hides a single cell; customer profiles are k-anonymous; no identifying or
linking column) -> `publish_statistics` (refuses any build that is not this run's or did not pass).

**When it fails:** nothing was published and analysts keep the previous version. The task log
names each failing table and the reason in counts; `ops.statistics_reports` holds the same per
run id. Every task is safe to clear and rerun. From a shell:
`ccg statistics run --as-of YYYY-MM-DD`.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from ccg_pipeline.dag_support import (
    DEFAULT_ARGS,
    PERSONAL_ZONE_URI,
    RETENTION_URI,
    START_DATE,
    STATISTICS_URI,
)

STATISTICS = Asset(STATISTICS_URI)


@dag(
    dag_id="ccg_statistics",
    schedule=Asset(PERSONAL_ZONE_URI) & Asset(RETENTION_URI),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ccg", "statistics", "N-AGG", "N-ANON"],
    doc_md=__doc__,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Build as of this date (YYYY-MM-DD) instead of the triggering events'.",
        )
    },
)
def ccg_statistics() -> None:
    @task
    def build_statistics(**context) -> dict:
        """Build every table in staging for the run's as-of date (counts in XCom only)."""
        from ccg_pipeline.dag_support import task_settings, triggered_as_of
        from ccg_pipeline.statistics import build_statistics as build

        return build(task_settings(), triggered_as_of(context), str(context["run_id"]))

    @task
    def check_statistics(_built: dict, **context) -> dict:
        """k, minimum cells, margins and identifying columns; fails with counts per table."""
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.statistics import check_statistics as check

        return check(task_settings(), str(context["run_id"]))

    @task(outlets=[STATISTICS])
    def publish_statistics(_checked: dict, **context) -> dict:
        """Swap the checked build in, in one transaction; the previous version stays otherwise."""
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.statistics import publish_statistics as publish

        published = publish(task_settings(), str(context["run_id"]))
        context["outlet_events"][STATISTICS].extra = {
            "as_of": published["as_of"],
            "run_id": str(context["run_id"]),
        }
        return published

    publish_statistics(check_statistics(build_statistics()))


dag = ccg_statistics()
