"""The evidence stage as `ccg_evidence` and `ccg evidence` run it: every check as of a date
(read-only), then the report recorded in `ops` and stored as files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.evidence.report import EvidenceReport
from ccg_pipeline.policy import load_notice
from ccg_pipeline.private_files import private_dir, write_private
from ccg_pipeline.purposes import declare_obligation, purpose_of
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.migrate import migrated
from ccg_pipeline.warehouse.sql import upsert_row

log = logging.getLogger(__name__)

# N-BASIS: the evidence reads every category to show the notice's promises are kept (s.7), under
# the legal obligation (accountability).
EVIDENCE = declare_obligation(
    "evidence.clauses",
    "security_and_accountability",
    "checks every notice clause against the data, as of a date",
)


def collect(
    engine: Engine,
    settings: Settings,
    as_of: dt.date,
    run_id: str,
    *,
    at: dt.datetime | None = None,
) -> EvidenceReport:
    """Run every check as of `as_of`, read-only."""
    from ccg_pipeline.evidence.basis import check_basis
    from ccg_pipeline.evidence.checks import CHECKS, NOT_CHECKED, CheckContext

    notice = load_notice()
    results = []
    for check in (*CHECKS, check_basis):
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


@purpose_of(EVIDENCE)
def run_evidence(settings: Settings, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """The daily step: check every clause (read-only), record, store the report."""
    with migrated(settings.warehouse_url) as engine:
        with purposes.judged(engine, EVIDENCE, run_id, as_of):
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
