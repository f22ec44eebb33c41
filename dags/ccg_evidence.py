"""
### `ccg_evidence`: every clause of the privacy notice checked against the data (all clauses)

**Schedule:** at the end of the daily cycle, when `ccg_statistics` publishes
(`ccg://warehouse/statistics`), and in any case every day at 06:00 UTC, so a day whose
statistics failed to publish still gets its evidence. The as-of date is the publication's (its
event's `extra`), the `as_of` param of a manual run, or the day before a time-triggered run.
One run at a time.

**Reads:** the personal zone (free text, CRM lists, column catalogue), `ops` (holds, requests,
suppressions, tombstones), the published `statistics` zone, the policy (`notice.yaml`), the
marketing extracts in `$CCG_HOME/exports/marketing/`, and on PostgreSQL the database's grants.

**Writes:** `ops.clause_evidence` (one row per run and clause: pass, fail or no data,
figures as JSON) and
`ops.evidence_reports`; the report as HTML, Markdown and JSON in `$CCG_HOME/evidence/` (plus
`latest.*`, which the Airflow privacy view links to). The first task moves special-category
notes found in `personal.crm_activities` to `personal.quarantine` (reason `special_category`),
their keys retired so a re-ingest does not load them again, with an audit row; every check after
it only reads.

**Tasks:** `quarantine_special_categories` (the sweep of `ccg_pipeline/retention/special.py`,
under retention's stage lock) -> `check_clauses` (N-CAT, N-NOSPECIAL, N-AGG, N-MKT, N-XFER, N-SEC, N-RET, N-RIGHTS,
N-CHILD; each figure with the SQL behind it) -> `alert_on_failed_clauses`: a failing clause is a
finding for the data protection manager, not a broken pipeline, so the run succeeds and raises a
`CCG ALERT` (log line and the `ccg_alerts` webhook) naming the failed clause ids and the report.

**When it fails:** a task failure means the evidence could not be computed (database, policy
file); the log names the check. Clear and rerun: a rerun replaces its own rows and report. From
a shell: `ccg evidence --as-of YYYY-MM-DD [--format md|json|html] [--record]`.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from ccg_pipeline.dag_support import STATISTICS_URI, triggered_dag


@dag(
    dag_id="ccg_evidence",
    **triggered_dag(
        AssetOrTimeSchedule(
            timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
            assets=Asset(STATISTICS_URI),
        ),
        tags=["evidence", "compliance"],
        as_of_help="Check as of this date (YYYY-MM-DD) instead of the run's.",
    ),
    doc_md=__doc__,
)
def ccg_evidence() -> None:
    @task
    def quarantine_special_categories(**context) -> dict:
        """Move free text with special-category content from processing to quarantine."""
        from ccg_pipeline.dag_support import evidence_as_of, task_settings
        from ccg_pipeline.retention.special import run_special_category_sweep

        return run_special_category_sweep(
            task_settings(), evidence_as_of(context), str(context["run_id"])
        )

    @task
    def check_clauses(_swept: dict, **context) -> dict:
        """Check every clause (read-only), record and store the report."""
        from ccg_pipeline.dag_support import evidence_as_of, task_settings
        from ccg_pipeline.evidence import run_evidence

        return run_evidence(task_settings(), evidence_as_of(context), str(context["run_id"]))

    @task
    def alert_on_failed_clauses(outcome: dict, **context) -> list[str]:
        """A CCG ALERT naming the failed clauses (ids only); the run itself succeeds."""
        from ccg_pipeline.dag_support import alert

        failed = list(outcome["clauses_failed"])
        if failed:
            alert(
                context,
                "compliance evidence: clauses failed",
                {"clauses": failed, "as_of": outcome["as_of"], "report": outcome["report"]},
            )
        return failed

    alert_on_failed_clauses(check_clauses(quarantine_special_categories()))


ccg_evidence_dag = ccg_evidence()
