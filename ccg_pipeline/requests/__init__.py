"""Data-subject requests (N-RIGHTS, N-MKT): intake, the one-month clock, and what each type does.

Lifecycle: `awaiting_verification` (clock stopped) -> `verified` (due date set) -> handled by the
`ccg_subject_requests` DAG -> `completed`, or `awaiting_crm` for an erasure until a later CRM
export no longer holds the person. See `intake`, `clock` and `handlers`.
"""

from ccg_pipeline.requests.stage import (
    ProcessReport,
    QueueEntry,
    RequestNotFound,
    RequestStateError,
    confirm_crm_erasures,
    due_soon,
    extend,
    inbox,
    process_requests,
    queue,
    run_due_check,
    run_intake,
    run_processing,
    verify,
)

__all__ = [
    "ProcessReport",
    "QueueEntry",
    "RequestNotFound",
    "RequestStateError",
    "confirm_crm_erasures",
    "due_soon",
    "extend",
    "inbox",
    "process_requests",
    "queue",
    "run_due_check",
    "run_intake",
    "run_processing",
    "verify",
]
