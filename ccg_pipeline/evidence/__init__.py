"""Compliance evidence: every clause of the privacy notice that the data can answer, checked
against the data as of a date, with the figures and the queries behind them.

`collect()` runs the checks in `checks.CHECKS`, read-only (the special-category sweep that
moves N-NOSPECIAL's finds to quarantine is `retention.special`, its own task before this one). `record()` writes the outcome to
`ops.clause_evidence` and `ops.evidence_reports`; `store()` writes the report as Markdown, JSON
and HTML under `$CCG_HOME/evidence/`. `run_evidence()` is the daily step (`ccg_evidence` DAG).

A clause is PASS, FAIL or NO DATA. "No data" is a check that found nothing wrong only because
its inputs are empty (nothing published yet, no requests received, no rows to judge): it is
never a pass, and not a failure either, so a fresh install does not alert. Its figure `no_data`
names the empty inputs with their counts. In `ops.clause_evidence` (whose `passed` column is a
boolean) a no-data clause is `passed = false` with that `no_data` key in its `figures` JSON;
`warehouse.clause_status.status_of()` reads the three states back.
`ops.evidence_reports.clauses_failed` lists real failures only.

Everything here is counts, ids, clause ids and SQL text: never a value from the data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.private_files import private_dir, write_private
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.clause_status import (  # re-exported: the evidence API
    FAIL as FAIL,
)
from ccg_pipeline.warehouse.clause_status import (
    NO_DATA as NO_DATA,
)
from ccg_pipeline.warehouse.clause_status import (
    NO_DATA_FIGURE as NO_DATA_FIGURE,
)
from ccg_pipeline.warehouse.clause_status import (
    PASS as PASS,
)
from ccg_pipeline.warehouse.clause_status import (
    STATUSES as STATUSES,
)
from ccg_pipeline.warehouse.clause_status import (
    status_of as status_of,
)
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.migrate import migrated
from ccg_pipeline.warehouse.sql import upsert_row

log = logging.getLogger(__name__)


@dataclass
class ClauseResult:
    """One clause: pass, fail or no data, the figures that decide it, findings and the evidence
    queries. `passed` stays a boolean (false for no data) so older readers of the JSON and of
    `ops.clause_evidence` never take a no-data clause for a pass."""

    clause: str
    title: str
    passed: bool
    figures: dict[str, Any]
    queries: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    no_data: bool = False

    def __post_init__(self) -> None:
        if self.no_data:
            self.passed = False  # nothing to judge is never a pass
            if not isinstance(self.figures.get(NO_DATA_FIGURE), dict):
                raise ValueError(
                    f"{self.clause}: a no-data result names its empty inputs in "
                    f"figures[{NO_DATA_FIGURE!r}]"
                )

    @property
    def status(self) -> str:
        if self.no_data:
            return NO_DATA
        return PASS if self.passed else FAIL


@dataclass
class EvidenceReport:
    as_of: dt.date
    run_id: str
    backend: str
    generated_at: dt.datetime
    controller: str
    clauses: list[ClauseResult]
    # Clause id -> why the data cannot answer it (reviewed by people, not by this report).
    not_checked: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Clauses that failed: not the ones with no data to judge."""
        return [c.clause for c in self.clauses if c.status == FAIL]

    @property
    def passing(self) -> list[str]:
        return [c.clause for c in self.clauses if c.status == PASS]

    @property
    def without_data(self) -> list[str]:
        return [c.clause for c in self.clauses if c.status == NO_DATA]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["generated_at"] = self.generated_at.isoformat(timespec="seconds")
        for clause, result in zip(data["clauses"], self.clauses, strict=True):
            clause["status"] = result.status
        data["failed"] = self.failed
        data["no_data"] = self.without_data
        return data

    def summary(self) -> dict[str, Any]:
        """For logs and XCom: clause ids and counts only."""
        return {
            "as_of": self.as_of.isoformat(),
            "clauses_checked": len(self.clauses),
            "clauses_failed": self.failed,
            "clauses_no_data": self.without_data,
        }


def collect(
    engine: Engine,
    settings: Settings,
    as_of: dt.date,
    run_id: str,
    *,
    at: dt.datetime | None = None,
) -> EvidenceReport:
    """Run every check as of `as_of`, read-only."""
    from ccg_pipeline.evidence.checks import CHECKS, NOT_CHECKED, CheckContext

    notice = load_notice()
    results = []
    for check in CHECKS:
        # One read transaction per check: a consistent view, and no write lock held.
        with engine.connect() as conn:
            ctx = CheckContext(conn, settings, notice, as_of, run_id)
            result = check(ctx)
        log.info(
            "evidence %s: %s %s",
            result.clause,
            result.status,
            {k: v for k, v in result.figures.items() if isinstance(v, int | float)},
        )
        results.append(result)
    return EvidenceReport(
        as_of=as_of,
        run_id=run_id,
        backend=backend_of(engine).name,
        generated_at=at or dt.datetime.now(dt.UTC).replace(tzinfo=None),
        controller=notice.controller,
        clauses=results,
        not_checked=dict(NOT_CHECKED),
    )


def evidence_folder(settings: Settings) -> Path:
    return settings.home / "evidence"


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120]


def store(settings: Settings, report: EvidenceReport) -> dict[str, Path]:
    """Write the report in every format, plus `latest.*` copies the privacy view links to."""
    from ccg_pipeline.evidence.render import RENDERERS

    folder = evidence_folder(settings)
    private_dir(folder)
    stem = f"evidence-{report.as_of.isoformat()}-{_safe(report.run_id)}"
    written = {}
    for fmt, render in RENDERERS.items():
        text = render(report)
        written[fmt] = folder / f"{stem}.{fmt}"
        write_private(written[fmt], text)
        write_private(folder / f"latest.{fmt}", text)
    return written


def record(engine: Engine, report: EvidenceReport, report_file: Path | None) -> None:
    """One row per clause and one per run in ops; a rerun of the run replaces its rows. A no-data
    clause is `passed = false` with its `no_data` figure (see `status_of`); `clauses_failed`
    names real failures only."""
    with write_transaction(engine) as conn:
        for result in report.clauses:
            upsert_row(
                conn,
                s.clause_evidence,
                {
                    "run_id": report.run_id,
                    "clause": result.clause,
                    "as_of": report.as_of,
                    "passed": result.passed,
                    "figures": json.dumps(result.figures, sort_keys=True, default=str),
                    "findings": json.dumps(result.findings),
                    "checked_at": report.generated_at,
                },
            )
        upsert_row(
            conn,
            s.evidence_reports,
            {
                "run_id": report.run_id,
                "as_of": report.as_of,
                "clauses_checked": len(report.clauses),
                "clauses_failed": ",".join(report.failed),
                "report_file": str(report_file) if report_file else None,
                "created_at": report.generated_at,
            },
        )


def run_evidence(settings: Settings, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """The daily step: check every clause (read-only), record, store the report."""
    with migrated(settings.warehouse_url) as engine:
        report = collect(engine, settings, as_of, run_id)
        files = store(settings, report)
        record(engine, report, files["html"])
    return {**report.summary(), "report": str(files["html"])}


def latest_report(engine: Engine) -> dict[str, Any] | None:
    """The newest evidence run, for summaries and the privacy view."""
    r = s.evidence_reports
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(r).order_by(r.c.created_at.desc(), r.c.run_id.desc()).limit(1)
        ).first()
    return dict(row._mapping) if row else None
