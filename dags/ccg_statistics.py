"""
### `ccg_statistics`: anonymised statistics for analysts, built, validated, then published (N-AGG, N-ANON)

**Schedule:** by Assets. A run starts once both `ccg://warehouse/personal` (from `ccg_ingest`)
and `ccg://warehouse/retention` (from `ccg_retention`) have new events, so each day's figures
are built after that day's load and sweep; or when `ccg://warehouse/requests` (from
`ccg_subject_requests`) says an erasure, restriction or objection changed who may be counted. The as-of date comes from the triggering events
(`as_of` in their extra), never the clock; a manual run takes the `as_of` param, or the day
before its logical date. `max_active_runs=1`: staging is one build at a time.

**Reads:** the personal zone (minus held subjects: a hold excludes a person from everything but
storage), the anonymised roll-ups in `staging.anon_*` (the value of rows retention deleted), and
`ops.subject_requests`.

**Writes:** `staging.build_*` and `staging.build_manifest`; `ops.statistics_reports` (per table:
suppressed cells, records dropped, generalisation levels, information lost, validation outcome) and `ops.validation_results`; on
success the `statistics` schema, swapped in one transaction, plus `statistics.publications`;
on SQLite also `$CCG_HOME/analyst/statistics.sqlite`, the self-contained file analysts receive.
Emits the Asset `ccg://warehouse/statistics`.

**Tasks:** `build_statistics` -> `validate_statistics`, the validation gate: each staged table
against its Great Expectations suite in `expectations/` (exact columns, types, ranges and
formats; identifier detectors and the known-identifier scan on every text column; no count from
1 to the minimum cell; rows suppressed whole; no margin hiding a single cell; k-anonymous
profiles) -> `publish_statistics` (refuses any build that is not this run's or did not pass).

**When it fails:** nothing was published and analysts keep the previous version. The task log
lists each failing expectation with a count, never a value; `ops.validation_results` holds one
row per run, table and expectation, and the GX Data Docs (`$CCG_HOME/gx/uncommitted/data_docs/
local_site/index.html`) show every run. To see which cells tripped a detector, masked:
`ccg scan staging.build_<table>`. Every task is safe to clear and rerun. From a shell:
`ccg statistics run --as-of YYYY-MM-DD`.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from ccg_pipeline.dag_support import (
    PERSONAL_ZONE_URI,
    REQUESTS_URI,
    RETENTION_URI,
    STATISTICS_URI,
    triggered_dag,
)

STATISTICS = Asset(STATISTICS_URI)


@dag(
    dag_id="ccg_statistics",
    **triggered_dag(
        (Asset(PERSONAL_ZONE_URI) & Asset(RETENTION_URI)) | Asset(REQUESTS_URI),
        tags=["statistics", "N-AGG", "N-ANON"],
        as_of_help="Build as of this date (YYYY-MM-DD) instead of the triggering events'.",
    ),
    doc_md=__doc__,
)
def ccg_statistics() -> None:
    @task
    def build_statistics(**context) -> dict:
        """Build every table in staging for the run's as-of date (counts in XCom only)."""
        from ccg_pipeline.dag_support import task_settings, triggered_as_of
        from ccg_pipeline.publication import build_statistics as build

        return build(task_settings(), triggered_as_of(context), str(context["run_id"]))

    @task
    def validate_statistics(_built: dict, **context) -> dict:
        """The GX validation gate on the staged build; fails with counts per expectation."""
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.publication import validate_statistics as validate

        return validate(task_settings(), str(context["run_id"]))

    @task(outlets=[STATISTICS])
    def publish_statistics(_validated: dict, **context) -> dict:
        """Swap the validated build in, in one transaction; the previous version stays otherwise."""
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.publication import publish_statistics as publish

        published = publish(task_settings(), str(context["run_id"]))
        context["outlet_events"][STATISTICS].extra = {
            "as_of": published["as_of"],
            "run_id": str(context["run_id"]),
        }
        return published

    publish_statistics(validate_statistics(build_statistics()))


ccg_statistics_dag = ccg_statistics()
