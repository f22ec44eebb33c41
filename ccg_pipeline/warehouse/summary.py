"""Counts-only views of the warehouse, for the demo, operators and tests."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.clause_status import status_of


@dataclass(frozen=True)
class WarehouseSummary:
    rows_per_table: dict[str, int]
    quarantine_by_reason: list[tuple[str, str, int]]
    batches_by_status: dict[str, int]
    retention: list[
        tuple[str, str, int, int, int, bool]
    ]  # latest run: rule, table, due, held, deleted, passed
    validation: list[tuple[str, int, int, str]]  # latest run: table, passed, evaluated, suite
    evidence: list[tuple[str, str]]  # latest evidence run: clause, pass / fail / no data
    evidence_report: str | None  # where that run's report is


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per `zone.table` for every table that exists (zones without tables are skipped)."""
    inspector = sa.inspect(engine)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for zone in schema.ZONES:
            for name in sorted(inspector.get_table_names(schema=zone)):
                if name == "alembic_version":
                    continue
                table = sa.table(name, schema=zone)
                counts[f"{zone}.{name}"] = conn.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar_one()
    return counts


def latest_run_id(table: sa.Table, newest: sa.Column) -> sa.ScalarSelect:
    """The run id of `table`'s newest run by `newest` (ties broken by run id)."""
    return (
        sa.select(table.c.run_id)
        .order_by(newest.desc(), table.c.run_id.desc())
        .limit(1)
        .scalar_subquery()
    )


def newest_retention_checks() -> sa.Select:
    """Every rule and table of the newest retention run."""
    c = schema.retention_checks
    return (
        sa.select(c)
        .where(c.c.run_id == latest_run_id(c, c.c.as_of))
        .order_by(c.c.rule_id, c.c.table_name)
    )


def newest_gate_by_table() -> sa.Select:
    """The newest validation-gate run, per table: expectations passed and evaluated."""
    v = schema.validation_results
    return (
        sa.select(
            v.c.run_id,
            v.c.table_name,
            sa.func.sum(sa.case((v.c.success.is_(True), 1), else_=0)).label("passed"),
            sa.func.count().label("evaluated"),
            sa.func.max(v.c.suite_version).label("suite_version"),
            sa.func.max(v.c.validated_at).label("validated_at"),
        )
        .where(v.c.run_id == latest_run_id(v, v.c.validated_at))
        .group_by(v.c.run_id, v.c.table_name)
        .order_by(v.c.table_name)
    )


def newest_evidence_clauses() -> sa.Select:
    """Clause, pass/fail and figures (which mark "no data") of the newest evidence run."""
    e, reports = schema.clause_evidence, schema.evidence_reports
    return sa.select(e.c.clause, e.c.passed, e.c.figures).where(
        e.c.run_id == latest_run_id(reports, reports.c.created_at)
    )


def summarise(engine: Engine) -> WarehouseSummary:
    q, b = schema.quarantine, schema.ingest_batches
    # The reason text names the rule and column, never the value, so it is safe to show.
    with engine.connect() as conn:
        reasons = [
            (source, reason, count)
            for source, reason, count in conn.execute(
                sa.select(q.c.source, q.c.reason, sa.func.count())
                .group_by(q.c.source, q.c.reason)
                .order_by(q.c.source, sa.func.count().desc())
            )
        ]
        statuses = {
            status: count
            for status, count in conn.execute(
                sa.select(b.c.status, sa.func.count()).group_by(b.c.status)
            )
        }
        retention = [
            (r.rule_id, r.table_name, r.due, r.held, r.deleted, bool(r.passed))
            for r in conn.execute(newest_retention_checks())
        ]
        validation = [
            (r.table_name, int(r.passed), int(r.evaluated), r.suite_version)
            for r in conn.execute(newest_gate_by_table())
        ]
        evidence = [
            (r.clause, status_of(r.passed, r.figures))
            for r in conn.execute(newest_evidence_clauses())
        ]
        reports = schema.evidence_reports
        latest_evidence = latest_run_id(reports, reports.c.created_at)
        report = conn.execute(
            sa.select(reports.c.report_file).where(reports.c.run_id == latest_evidence)
        ).scalar()
    return WarehouseSummary(
        table_counts(engine), reasons, statuses, retention, validation, evidence, report
    )


def render(summary: WarehouseSummary, zone_files: dict[str, str] | None = None) -> str:
    lines = ["Rows per zone and table", "-----------------------"]
    width = max((len(k) for k in summary.rows_per_table), default=10)
    lines += [f"  {name:<{width}}  {count:>9,}" for name, count in summary.rows_per_table.items()]
    total_q = sum(c for _, _, c in summary.quarantine_by_reason)
    lines += ["", f"Quarantined records: {total_q:,} (kept in personal.quarantine)", "-" * 40]
    lines += [
        f"  {source:<18} {count:>6,}  {reason}"
        for source, reason, count in summary.quarantine_by_reason
    ]
    lines += [
        "",
        "Ingest batches by status: "
        + ", ".join(f"{k}={v}" for k, v in sorted(summary.batches_by_status.items())),
    ]
    if summary.retention:
        lines += ["", "Retention, latest run (due / held / deleted, check)", "-" * 52]
        lines += [
            f"  {rule:<24} {table:<26} {due:>7,} {held:>5,} {deleted:>7,}  {'pass' if ok else 'FAIL'}"
            for rule, table, due, held, deleted, ok in summary.retention
        ]
    if summary.validation:
        lines += ["", "Validation gate, latest run (expectations passed / evaluated, suite)"]
        lines += ["-" * 68]
        lines += [
            f"  {table:<26} {passed:>4} / {evaluated:<4} {suite}"
            for table, passed, evaluated, suite in summary.validation
        ]
    if summary.evidence:
        failed = [clause for clause, status in summary.evidence if status == "fail"]
        no_data = [clause for clause, status in summary.evidence if status == "no data"]
        lines += ["", "Compliance evidence, latest run (notice clauses checked against the data)"]
        lines += ["-" * 72]
        lines += [
            "  "
            + "  ".join(
                f"{c} {'FAIL' if status == 'fail' else status}" for c, status in summary.evidence
            )
        ]
        passed = len(summary.evidence) - len(failed) - len(no_data)
        lines += [
            f"  {passed} of {len(summary.evidence)} pass"
            + (f", {len(no_data)} with no data to judge yet" if no_data else "")
        ]
        if summary.evidence_report:
            lines += [f"  report: {summary.evidence_report}"]
    if zone_files:
        lines += ["", "Warehouse files (SQLite, one per zone)", "-" * 38]
        lines += [f"  {zone:<10} {path}" for zone, path in zone_files.items()]
    return "\n".join(lines)
