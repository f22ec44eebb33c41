"""The subject-request stage as its DAG and the `ccg` command run it (the package's entry points;
`ccg_pipeline.requests` re-exports them)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.purposes import NotAProcessing, purpose_of
from ccg_pipeline.requests import clock
from ccg_pipeline.requests.handlers import (
    HANDLERS,
    INTAKE,
    PROCESSINGS,
    Request,
    note_portal_logins,
)
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.locks import stage_lock
from ccg_pipeline.warehouse.migrate import migrated
from ccg_pipeline.warehouse.sql import audit

log = logging.getLogger(__name__)


class RequestNotFound(LookupError):
    pass


class RequestStateError(ValueError):
    """The request is not in a state that allows this (the message says which)."""


def _request_row(conn: sa.Connection, request_id: str) -> Any:
    row = conn.execute(
        sa.select(s.subject_requests).where(s.subject_requests.c.request_id == request_id)
    ).first()
    if row is None:
        raise RequestNotFound(f"no request {request_id}")
    return row


def verify(engine: Engine, request_id: str, at: dt.datetime) -> dt.date:
    """Identity checked: the clock starts again and the due date is set. Returns it."""
    r = s.subject_requests
    with write_transaction(engine) as conn:
        row = _request_row(conn, request_id)
        if row.status != s.AWAITING_VERIFICATION:
            raise RequestStateError(
                f"request {request_id} is {row.status}, not awaiting verification"
            )
        due = clock.due_date(row.received_at.date(), at.date())
        conn.execute(
            sa.update(r)
            .where(r.c.request_id == request_id)
            .values(status=s.VERIFIED, verified_at=at, due_on=due, first_due_on=due, updated_at=at)
        )
        audit(
            conn,
            run_id=f"request-{request_id}",
            action="request_verified",
            table_name="ops.subject_requests",
            row_count=1,
            subject_pseudonym=row.subject_key,
            at=at,
        )
    return due


def extend(engine: Engine, request_id: str, months: int, reason: str, today: dt.date) -> dt.date:
    """Extend by up to the policy's maximum, with a recorded reason, within the first month."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise RequestStateError("an extension needs a reason of 1 to 500 characters")
    allowed = load_notice().settings.request_max_extension_months
    if months > allowed:
        raise RequestStateError(f"the policy allows at most {allowed} more months")
    r = s.subject_requests
    with write_transaction(engine) as conn:
        row = _request_row(conn, request_id)
        if row.status not in (s.VERIFIED, s.AWAITING_CRM) or row.first_due_on is None:
            raise RequestStateError(
                f"request {request_id} is {row.status}; only an open, "
                "verified request can be extended"
            )
        if row.extension_months:
            raise RequestStateError(f"request {request_id} was already extended")
        try:
            due = clock.extended_due_date(row.first_due_on, months, today)
        except clock.ClockError as exc:
            raise RequestStateError(str(exc)) from None
        conn.execute(
            sa.update(r)
            .where(r.c.request_id == request_id)
            .values(
                due_on=due,
                extension_months=months,
                extension_reason=reason,
                extended_on=today,
                updated_at=dt.datetime.combine(today, dt.time()),
            )
        )
    return due


@dataclass(frozen=True)
class ProcessReport:
    handled: dict[str, int]
    failed: list[str]  # request ids

    def as_dict(self) -> dict[str, Any]:
        return {"handled": self.handled, "failed": self.failed}


def _pending(conn: sa.Connection) -> list[Request]:
    r, p = s.subject_requests, s.request_payloads
    rows = conn.execute(
        sa.select(
            r.c.request_id, r.c.request_type, r.c.subject_key, r.c.scope, p.c.email, p.c.payload
        )
        .join(p, p.c.request_id == r.c.request_id)
        .where(r.c.status == s.VERIFIED)
        .order_by(r.c.due_on, r.c.received_at)
    ).all()
    return [
        Request(
            row.request_id,
            row.request_type,
            row.subject_key,
            row.scope,
            row.email,
            json.loads(row.payload),
        )
        for row in rows
    ]


def process_requests(engine: Engine, settings: Settings, at: dt.datetime) -> ProcessReport:
    """Handle every verified request, each in its own transaction. A failing request is logged
    by id and left verified for the next run; the others go on."""
    with engine.connect() as conn:
        pending = _pending(conn)
    handled: dict[str, int] = {}
    failed: list[str] = []
    r = s.subject_requests
    for request in pending:
        try:
            # Within the legal-rights purpose (N-BASIS), statement by statement.
            with purposes.scope(PROCESSINGS[request.request_type]) as read:
                if request.request_type == "erase":
                    note_portal_logins(engine, settings, request, at)
                with write_transaction(engine) as conn:
                    counts = HANDLERS[request.request_type](settings, conn, request, at)
                    purposes.record(
                        conn, read, run_id=f"request-{request.request_id}", as_of=at.date()
                    )
                    waiting = request.request_type == "erase" and counts.get("crm_outbox")
                    status = s.AWAITING_CRM if waiting else s.COMPLETED
                    conn.execute(
                        sa.update(r)
                        .where(r.c.request_id == request.request_id)
                        .values(
                            status=status,
                            completed_at=None if waiting else at,
                            outcome=json.dumps(counts, sort_keys=True, default=str),
                            updated_at=at,
                        )
                    )
                    conn.execute(
                        sa.delete(s.request_payloads).where(
                            s.request_payloads.c.request_id == request.request_id
                        )
                    )
                    audit(
                        conn,
                        run_id=f"request-{request.request_id}",
                        action=f"request_{request.request_type}",
                        table_name="ops.subject_requests",
                        row_count=1,
                        subject_pseudonym=request.subject_key,
                        at=at,
                    )
        except Exception as exc:  # one bad request must not block the queue
            if isinstance(exc, purposes.PurposeViolation):
                purposes.record_violation(engine, exc, f"request-{request.request_id}", at.date())
            log.error(
                "request %s (%s) failed: %s",
                request.request_id,
                request.request_type,
                type(exc).__name__,
            )
            failed.append(request.request_id)
            continue
        handled[request.request_type] = handled.get(request.request_type, 0) + 1
        log.info("request %s (%s) -> %s", request.request_id, request.request_type, status)
    return ProcessReport(handled, failed)


def confirm_crm_erasures(engine: Engine, at: dt.datetime) -> int:
    """Close erasures whose CRM instruction took effect: a CRM contacts export ingested after the
    instruction no longer held the person (their tombstone was not hit by it)."""
    o, t, b, r = s.crm_outbox, s.erasure_tombstones, s.ingest_batches, s.subject_requests
    with write_transaction(engine) as conn:
        open_rows = conn.execute(
            sa.select(o.c.request_id, o.c.created_at, t.c.last_seen_in_crm_at)
            .join(t, t.c.subject_key == o.c.subject_key)
            .where(o.c.confirmed_at.is_(None))
        ).all()
        confirmed = 0
        for row in open_rows:
            later_export = conn.execute(
                sa.select(sa.func.max(b.c.finished_at)).where(
                    b.c.source == "crm.contacts", b.c.finished_at > row.created_at
                )
            ).scalar()
            if later_export is None:
                continue
            if row.last_seen_in_crm_at is not None and row.last_seen_in_crm_at >= row.created_at:
                continue  # an export after the instruction still held the person
            conn.execute(
                sa.update(o).where(o.c.request_id == row.request_id).values(confirmed_at=at)
            )
            conn.execute(
                sa.update(r)
                .where(r.c.request_id == row.request_id, r.c.status == s.AWAITING_CRM)
                .values(status=s.COMPLETED, completed_at=at, updated_at=at)
            )
            confirmed += 1
    return confirmed


@dataclass(frozen=True)
class QueueEntry:
    request_id: str
    request_type: str
    email_masked: str
    status: str
    received_on: dt.date
    due_on: dt.date | None
    days_left: int | None


def queue(engine: Engine, today: dt.date, *, include_closed: bool = False) -> list[QueueEntry]:
    r = s.subject_requests
    query = sa.select(r).order_by(r.c.due_on.is_(None), r.c.due_on, r.c.received_at)
    if not include_closed:
        query = query.where(r.c.status.in_(s.OPEN_STATUSES))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        QueueEntry(
            row.request_id,
            row.request_type,
            row.email_masked or "",
            row.status,
            row.received_at.date(),
            row.due_on,
            clock.days_left(row.due_on, today),
        )
        for row in rows
    ]


def due_soon(engine: Engine, today: dt.date, days: int = clock.DUE_SOON_DAYS) -> list[QueueEntry]:
    """Open, verified requests due within `days` (or overdue)."""
    return [e for e in queue(engine, today) if e.days_left is not None and e.days_left <= days]


# --- entry points for the DAG and the command line (settings in, counts out) ------------------


def inbox(settings: Settings) -> Path:
    return settings.request_inbox or settings.home / "requests" / "inbox"


@purpose_of(INTAKE)
def run_intake(settings: Settings, now: dt.datetime) -> dict[str, Any]:
    from ccg_pipeline.requests.intake import take_in_drop_folder

    with (
        stage_lock(settings.warehouse_url, "requests"),
        migrated(settings.warehouse_url) as engine,
        purposes.scope(INTAKE),
    ):
        report = take_in_drop_folder(engine, settings.pseudonym_key, inbox(settings), now)
    log.info("drop folder: %s", report.as_dict())
    return report.as_dict()


@purpose_of(tuple(PROCESSINGS.values()))  # each request type's handler
def run_processing(settings: Settings, now: dt.datetime) -> dict[str, Any]:
    """Handle verified requests and close confirmed CRM erasures; raises when a request failed
    (after handling all the others), so the task fails and alerts."""
    with stage_lock(settings.warehouse_url, "requests"), migrated(settings.warehouse_url) as engine:
        report = process_requests(engine, settings, now)
        confirmed = confirm_crm_erasures(engine, now)
    summary = {**report.as_dict(), "crm_erasures_confirmed": confirmed}
    log.info("requests processed: %s", summary)
    if report.failed:
        raise RuntimeError(
            f"{len(report.failed)} request(s) failed and stay verified for the next run: "
            f"{', '.join(report.failed)}"
        )
    return summary


@purpose_of(NotAProcessing("reads request ids, types and due dates in ops, no personal row"))
def run_due_check(settings: Settings, today: dt.date) -> list[dict[str, Any]]:
    with migrated(settings.warehouse_url) as engine:
        soon = due_soon(engine, today)
    return [
        {"request_id": e.request_id, "type": e.request_type, "days_left": e.days_left} for e in soon
    ]
