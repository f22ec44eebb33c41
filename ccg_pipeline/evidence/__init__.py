"""Compliance evidence: every clause of the privacy notice that the data can answer, checked
against the data as of a date, with the figures and the queries behind them.

The package: `checks` (one check per clause), `report` (the results), `stage` (running the
checks and keeping the report), `render` (Markdown, JSON, HTML). `collect()` runs the checks in
`checks.CHECKS`, read-only (the special-category sweep that moves N-NOSPECIAL's finds to
quarantine is `retention.special`, its own task before this one). `record()` writes the outcome
to `ops.clause_evidence` and `ops.evidence_reports`; `store()` writes the report as Markdown,
JSON and HTML under `$CCG_HOME/evidence/`. `run_evidence()` is the daily step (`ccg_evidence`
DAG).

A clause is PASS, FAIL or NO DATA. "No data" is a check that found nothing wrong only because
its inputs are empty (nothing published yet, no requests received, no rows to judge): it is
never a pass, and not a failure either, so a fresh install does not alert. Its figure `no_data`
names the empty inputs with their counts. In `ops.clause_evidence` (whose `passed` column is a
boolean) a no-data clause is `passed = false` with that `no_data` key in its `figures` JSON;
`warehouse.clause_status.status_of()` reads the three states back.
`ops.evidence_reports.clauses_failed` lists real failures only.

Everything here is counts, ids, clause ids and SQL text: never a value from the data.
"""

from ccg_pipeline.evidence.report import ClauseResult, EvidenceReport
from ccg_pipeline.evidence.stage import (
    collect,
    evidence_folder,
    latest_report,
    record,
    run_evidence,
    store,
)
from ccg_pipeline.warehouse.clause_status import (
    FAIL,
    NO_DATA,
    NO_DATA_FIGURE,
    PASS,
    STATUSES,
    status_of,
)

__all__ = [
    "FAIL",
    "NO_DATA",
    "NO_DATA_FIGURE",
    "PASS",
    "STATUSES",
    "ClauseResult",
    "EvidenceReport",
    "collect",
    "evidence_folder",
    "latest_report",
    "record",
    "run_evidence",
    "status_of",
    "store",
]
