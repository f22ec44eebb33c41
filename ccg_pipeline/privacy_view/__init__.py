"""The "Privacy" view data engineers open in the Airflow UI: what the notice's promises look like
today, in counts and ids only.

- retention per rule from the newest sweep: due, removed (of which anonymised first) and held.
  The sweep anonymises a row as it deletes it, so `anonymised` is part of `deleted`, never in
  addition to it: the headline counts each removed row once;
- open data-subject requests with the days left on their one-month clock;
- the newest validation gate, table by table;
- the newest compliance-evidence run, clause by clause (pass, fail or no data), with a link to
  its report.

`snapshot()` reads the warehouse; `page.render()` turns it into HTML; `app.create_app()` serves
both inside the Airflow api-server (see `plugins/ccg_privacy.py`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine

from ccg_pipeline.requests import queue
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.summary import (
    newest_evidence_clauses,
    newest_gate_by_table,
    newest_retention_checks,
)


@dataclass(frozen=True)
class RetentionRule:
    """One rule and table of a sweep. `deleted` is every row the sweep removed (or, for a
    column-clearing rule, cleared); `anonymised` is the part of those whose statistical value
    was kept in an anonymised table before the delete, not more rows."""

    rule_id: str
    table_name: str
    due: int
    deleted: int
    anonymised: int
    held: int
    expired_unheld_remaining: int
    passed: bool


@dataclass(frozen=True)
class RequestClock:
    """An open request's clock; the view names requests by id only, never by person."""

    request_id: str
    request_type: str
    status: str
    received_on: dt.date
    due_on: dt.date | None
    days_left: int | None  # None while the clock is stopped (awaiting identity verification)


@dataclass(frozen=True)
class GateTable:
    table_name: str
    passed: int
    evaluated: int


@dataclass(frozen=True)
class PrivacySnapshot:
    today: dt.date
    retention_as_of: dt.date | None
    retention: list[RetentionRule]
    requests: list[RequestClock]
    gate_run_id: str | None
    gate_validated_at: dt.datetime | None
    gate: list[GateTable]
    evidence: dict[str, Any] | None
    evidence_clauses: list[tuple[str, str]]  # clause id, "pass" / "fail" / "no data"

    @property
    def retention_due(self) -> int:
        return sum(r.due for r in self.retention)

    @property
    def retention_removed(self) -> int:
        """Rows the newest sweep removed, each once (anonymised rows are among the deleted)."""
        return sum(r.deleted for r in self.retention)

    @property
    def retention_anonymised(self) -> int:
        return sum(r.anonymised for r in self.retention)

    @property
    def retention_held(self) -> int:
        return sum(r.held for r in self.retention)

    def evidence_with(self, status: str) -> list[str]:
        return [clause for clause, s in self.evidence_clauses if s == status]

    @property
    def gate_passed(self) -> bool | None:
        """None when the gate has never run."""
        return all(t.passed == t.evaluated for t in self.gate) if self.gate else None

    @property
    def overdue_requests(self) -> int:
        return sum(1 for r in self.requests if r.days_left is not None and r.days_left < 0)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gate_passed"] = self.gate_passed
        data["overdue_requests"] = self.overdue_requests
        data["retention_totals"] = {
            "due": self.retention_due,
            "removed": self.retention_removed,
            "of_which_anonymised": self.retention_anonymised,
            "held": self.retention_held,
        }
        return data


def snapshot(engine: Engine, today: dt.date) -> PrivacySnapshot:
    """Everything the view shows, read in one pass; counts, dates and request ids only."""
    # Lazily: plugins load this module everywhere.
    from ccg_pipeline.evidence import latest_report, status_of

    e = schema.clause_evidence
    with engine.connect() as conn:
        retention_rows = conn.execute(newest_retention_checks()).all()
        gate_rows = conn.execute(newest_gate_by_table()).all()
        # A no-data clause is stored as passed = false with a `no_data` figure (evidence.record).
        clause_rows = conn.execute(newest_evidence_clauses().order_by(e.c.clause)).all()
    return PrivacySnapshot(
        today=today,
        retention_as_of=retention_rows[0].as_of if retention_rows else None,
        retention=[
            RetentionRule(
                r.rule_id,
                r.table_name,
                r.due,
                r.deleted,
                r.anonymised,
                r.held,
                r.expired_unheld_remaining,
                bool(r.passed),
            )
            for r in retention_rows
        ],
        requests=[
            RequestClock(
                e.request_id, e.request_type, e.status, e.received_on, e.due_on, e.days_left
            )
            for e in queue(engine, today)
        ],
        gate_run_id=gate_rows[0].run_id if gate_rows else None,
        gate_validated_at=max((r.validated_at for r in gate_rows), default=None),
        gate=[GateTable(r.table_name, int(r.passed), int(r.evaluated)) for r in gate_rows],
        evidence=latest_report(engine),
        evidence_clauses=[(c, status_of(ok, figures)) for c, ok, figures in clause_rows],
    )
