"""
### `ccg_retention`: enforce every retention period, anonymise then delete (N-RET, N-ANON)

**Schedule:** daily at 03:00 UTC, three hours after `ccg_ingest`. A run's data interval ends at
03:00 on its day, and every decision is made as of that day (from the interval, never the wall
clock), so a backfill for an earlier day decides as that day would have; `max_active_runs=1`,
so sweeps never overlap. A scheduled run first waits (`wait_for_the_day_s_load`, a rescheduling
sensor) until `ccg_ingest` has finished, in success or failure, its run for the day before or a
later day's, at most three hours; then the sweep runs regardless. Manual runs do not wait.

**Reads:** the personal zone, the policy's retention rules (`ccg_pipeline/policy/notice.yaml`)
and legal holds (`ops.legal_holds`).

**Writes:** deletes or nulls expired rows in the personal zone; writes their statistical value
to `staging.anon_*` first; `ops.audit_ledger` (one row per rule, table and run),
`ops.retention_checks` (due, held, anonymised, deleted, remaining per rule and table),
`ops.marketing_suppression` (keyed hashes of opted-out people). Emits the Asset
`ccg://warehouse/retention`.

**Rules:** contact, identity, financial and transaction data six years after the customer
ceased (the latest of contract end, account closure, last invoice, last payment); profile data
three months after account closure; marketing history 30 days after opt-out; prospects after two
inactive years; raw web logs after 90 days, authentication logs after 365 days, quarantined
records after 30 days. The last five periods are CCG decisions where the notice says "as long as
necessary". Held subjects are never deleted.

**Params:** `align_to_year_end` counts the six years from the end of the financial year (HMRC),
with the year end from the policy.

**Then:** `vacuum_personal_zone` rewrites the personal zone from its live rows, so deleted
and erased people's data leaves the database files too: `VACUUM (FULL, ANALYZE)` of every
personal table on PostgreSQL (plain VACUUM only marks dead rows' space reusable; their bytes stay
in the pages), `VACUUM` of the zone's file on SQLite (secure_delete zeroes freed cells, but not
copies of rows that page splits left behind).

**When it fails:** `retention_sweep` commits chunk by chunk and is safe to clear and rerun: it
resumes where it stopped with no double counting. `verify_retention` failing means expired,
unheld rows survived: `ops.retention_checks` for the run id names the rule and table; check for
rows that arrived during the sweep, then rerun. Dry run from a shell:
`ccg retention plan --as-of YYYY-MM-DD`.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from ccg_pipeline.dag_support import LOAD_WAIT, RETENTION_URI, daily_dag

RETENTION = Asset(RETENTION_URI)


@dag(
    dag_id="ccg_retention",
    **daily_dag("0 3 * * *", tags=["retention", "N-RET"]),
    doc_md=__doc__,
    params={
        "align_to_year_end": Param(
            False, type="boolean", description="Count six years from the financial-year end."
        )
    },
)
def ccg_retention() -> None:
    @task.sensor(
        poke_interval=60,
        timeout=LOAD_WAIT.total_seconds(),
        mode="reschedule",
        soft_fail=True,
    )
    def wait_for_the_day_s_load(**context) -> bool:
        """A scheduled sweep waits for the day's ingest run to finish, so that it judges what
        was loaded (in a catch-up, the two DAGs would otherwise race). After LOAD_WAIT it is
        skipped and the sweep runs anyway: deadlines do not wait for a late load."""
        from ccg_pipeline.dag_support import day_s_load_finished

        return day_s_load_finished(context)

    @task(trigger_rule="none_failed")
    def retention_plan(**context) -> dict:
        """Log what is due, per rule and table, before anything changes (counts only)."""
        from ccg_pipeline.dag_support import run_as_of, task_settings
        from ccg_pipeline.retention import plan_retention

        align = bool(context["params"].get("align_to_year_end")) or None
        summary = plan_retention(task_settings(), run_as_of(context), align_to_year_end=align)
        return {k: v for k, v in summary.items() if k != "targets"}

    @task(outlets=[RETENTION])
    def retention_sweep(**context) -> dict:
        from ccg_pipeline.dag_support import asset_extra, run_as_of, run_window, task_settings
        from ccg_pipeline.retention import run_retention

        align = bool(context["params"].get("align_to_year_end")) or None
        _start, _end, run_id = run_window(context)
        summary = run_retention(
            task_settings(), run_as_of(context), run_id, align_to_year_end=align
        )
        context["outlet_events"][RETENTION].extra = asset_extra(context)
        return {k: v for k, v in summary.items() if k != "targets"}

    @task
    def verify_retention(**context) -> dict:
        """Re-read the evidence of this run; fail loudly if any expired unheld row survived."""
        from ccg_pipeline.dag_support import run_window, task_settings
        from ccg_pipeline.retention.evidence import verify_run

        _start, _end, run_id = run_window(context)
        return verify_run(task_settings(), run_id)

    @task
    def vacuum_personal_zone() -> list[str]:
        """Rewrite the personal zone from its live rows: deleted data leaves the files too."""
        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.retention.sweep import vacuum_personal_zone as vacuum
        from ccg_pipeline.warehouse.engine import create_warehouse_engine

        engine = create_warehouse_engine(task_settings().warehouse_url)
        try:
            return vacuum(engine, rewrite=True)
        finally:
            engine.dispose()

    swept = retention_sweep()
    wait_for_the_day_s_load() >> retention_plan() >> swept
    swept >> [verify_retention(), vacuum_personal_zone()]


ccg_retention_dag = ccg_retention()
