"""
### `ccg_subject_requests`: data-subject requests answered within one month (N-RIGHTS, N-MKT)

**Schedule:** hourly (`0 * * * *`, UTC), one run at a time.

**Reads:** the drop folder; `ops.subject_requests` and `personal.request_payloads`; the
personal zone and the customer-portal database (by the requester's email); CRM ingest batches.

**Writes:** `ops.subject_requests` (status, due date, outcome in counts), the personal zone and the
portal database (rectification, erasure), `ops.legal_holds`, `ops.marketing_suppression`,
`ops.processing_objections`, `ops.erasure_tombstones`, `ops.crm_outbox`, `ops.audit_ledger`;
export packages and CRM instruction files (owner-only permissions).

**Tasks:**
- `take_in_drop_folder`: every `*.json` request in the drop folder (`CCG_REQUEST_INBOX`, default
  `$CCG_HOME/requests/inbox`) is validated and stored awaiting verification; the file is
  replaced by an id-only receipt in `processed/`, or kept in `rejected/` with a `.reason` file
  naming the problem (owner-only; counts in XCom).
- `process_requests`: every verified request is handled by type, each in its own transaction:
  access (export package under `$CCG_HOME/exports/requests/`), rectify (personal zone and portal
  database), erase (deleted, or restricted where the tax hold applies; portal login deleted; CRM
  instruction in `$CCG_HOME/outbox/crm/`; tombstone against re-ingest), restrict (hold), object
  and withdraw-consent (marketing suppression; legitimate-interest objections also leave the
  subject out of the statistics). Erasures wait as `awaiting_crm` until a later CRM export no
  longer holds the person. A failing request is named by id, left verified for the next run, and
  fails the task after the others are done.
- `signal_statistics`: emits `ccg://warehouse/requests` when an erasure, a restriction or an
  objection changed who the statistics may count (skipped otherwise), which makes
  `ccg_statistics` rebuild.
- `check_due_dates`: alerts (log line and webhook) when an open request is within 7 days of its
  due date or overdue; ids and days left only.

**Identity:** a request waits as `awaiting_verification`, with its clock stopped, until an
operator runs `ccg request verify ID`. `ccg request list` shows the queue with masked identities;
`ccg request extend ID --months 1|2 --reason ...` extends within the first month.

**Deadline:** a run still unfinished 50 minutes after it was queued raises a `CCG ALERT` (an
Airflow Deadline Alert), before the next hour's run is due.

**When it fails:** every task is safe to clear and rerun; handled requests are not handled twice.
The log names request ids and exception classes, never personal data.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

from ccg_pipeline.dag_support import HOURLY_RUN_DEADLINE, REQUESTS_URI, daily_dag

REQUESTS = Asset(REQUESTS_URI)


@dag(
    dag_id="ccg_subject_requests",
    # Every run works through the whole queue, so missed hours need no runs of their own.
    **daily_dag(
        "0 * * * *",
        tags=["requests", "N-RIGHTS", "N-MKT"],
        catch_up_missed=False,
        finish_within=HOURLY_RUN_DEADLINE,
    ),
    doc_md=__doc__,
)
def ccg_subject_requests() -> None:
    @task
    def take_in_drop_folder(**context) -> dict:
        """Validate and store the drop folder's request files (counts only)."""
        from ccg_pipeline.dag_support import run_window, task_settings
        from ccg_pipeline.requests import run_intake

        _start, end, _run_id = run_window(context)
        return run_intake(task_settings(), end)

    @task
    def process_requests(_intake: dict, **context) -> dict:
        """Handle every verified request; counts per type in XCom."""
        from ccg_pipeline.dag_support import run_window, task_settings
        from ccg_pipeline.requests import run_processing

        _start, end, _run_id = run_window(context)
        return run_processing(task_settings(), end)

    @task(outlets=[REQUESTS])
    def signal_statistics(processed: dict, **context) -> None:
        """Tell ccg_statistics to rebuild the current release when erasures, restrictions or
        objections changed its population."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ccg_pipeline.dag_support import task_settings
        from ccg_pipeline.publication import current_release_day

        handled = processed.get("handled", {})
        if not (handled.get("erase") or handled.get("object") or handled.get("restrict")):
            raise AirflowSkipException("no request changed who the statistics may count")
        # A rebuild of the current release, as of its day (none yet: the day before this run).
        release_day = current_release_day(task_settings())
        extra = {"run_id": str(context["run_id"])}
        if release_day is not None:
            extra["as_of"] = release_day.isoformat()
        context["outlet_events"][REQUESTS].extra = extra

    @task
    def check_due_dates(_processed: dict, **context) -> list:
        """Alert on open requests within 7 days of their due date (ids and days only)."""
        from ccg_pipeline.dag_support import alert, run_as_of, task_settings
        from ccg_pipeline.requests import run_due_check

        soon = run_due_check(task_settings(), run_as_of(context))
        if soon:
            alert(context, "subject requests due within 7 days", {"requests": soon})
        return soon

    processed = process_requests(take_in_drop_folder())
    signal_statistics(processed)
    check_due_dates(processed)


ccg_subject_requests_dag = ccg_subject_requests()
