"""N-BASIS: every processing has a purpose and a lawful basis, and reads only what it allows.

Judged twice, from two places:

- **The declarations** (`ccg_pipeline.purposes`), against the notice: each purpose exists, each
  basis is one of its purpose's, each declared category is one the purpose lists, and each
  basis-evidence column exists.
- **What the runs read** (`ops.purpose_checks`, written by the purpose guard as each processing
  ran): the columns are mapped to categories again here, from the personal-data model and the
  data map, and judged against the notice's purpose (not against the declaration the guard
  used). A run the guard stopped is a violation. Every published statistics table must have a
  check from its latest build: a table built outside its purpose's scope would have none.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from ccg_pipeline.evidence.checks import CheckContext
from ccg_pipeline.evidence.checks import _nothing_to_judge as nothing_to_judge
from ccg_pipeline.evidence.report import ClauseResult
from ccg_pipeline.personal_model import TABLES, category_of
from ccg_pipeline.policy import load_data_map
from ccg_pipeline.policy.models import Notice
from ccg_pipeline.purposes import Processing, check_declaration, registered
from ccg_pipeline.warehouse import schema as s


def declared_processings() -> dict[str, Processing]:
    """Every declaration in the code: importing the modules that declare them registers them."""
    import ccg_pipeline.breach
    import ccg_pipeline.evidence.stage
    import ccg_pipeline.marketing
    import ccg_pipeline.publication
    import ccg_pipeline.requests.handlers
    import ccg_pipeline.retention.special
    import ccg_pipeline.retention.stage
    import ccg_pipeline.statistics.build  # noqa: F401

    return registered()


def declaration_problems(
    processings: dict[str, Processing], notice: Notice | None = None
) -> dict[str, list[str]]:
    """Processing id -> what is wrong with its declaration (only those with a problem)."""
    known_columns = _categories_by_column()
    problems = {}
    for processing in processings.values():
        found = check_declaration(processing, notice)
        found += [
            f"basis evidence {c!r} is not a personal column of the model"
            for c in sorted(processing.basis_evidence - set(known_columns))
        ]
        if found:
            problems[processing.id] = found
    return problems


def _categories_by_column() -> dict[str, str]:
    """`zone.table.column` -> category: the evidence's own reading of the model and data map."""
    data_map = load_data_map()
    return {
        f"{table}.{column}": category
        for table, spec in TABLES.items()
        for column, tag in spec.columns.items()
        if (category := category_of(tag, data_map)) is not None
    }


def _latest_checks(ctx: CheckContext) -> list[Any]:
    """The newest check of each processing on or before the date."""
    p = s.purpose_checks
    newest = (
        sa.select(p.c.processing_id, sa.func.max(p.c.checked_at).label("at"))
        .where(p.c.as_of <= ctx.as_of)
        .group_by(p.c.processing_id)
        .subquery()
    )
    query = sa.select(p).join(
        newest, sa.and_(newest.c.processing_id == p.c.processing_id, newest.c.at == p.c.checked_at)
    )
    return list(ctx.conn.execute(query.order_by(p.c.processing_id)))


def _unchecked_tables(ctx: CheckContext) -> list[str]:
    """Published tables whose latest build has no purpose check of its run."""
    r, p = s.statistics_reports, s.purpose_checks
    builds = ctx.conn.execute(
        sa.select(r.c.table_name, sa.func.max(r.c.run_id))
        .where(r.c.as_of <= ctx.as_of)
        .group_by(r.c.table_name)
    ).all()
    missing = []
    for table, run_id in builds:
        found = ctx.conn.execute(
            sa.select(sa.func.count()).where(
                p.c.run_id == run_id, p.c.processing_id == f"statistics.{table}"
            )
        ).scalar_one()
        if not found:
            missing.append(table)
    return sorted(missing)


def check_basis(ctx: CheckContext) -> ClauseResult:
    processings = declared_processings()
    purposes = {a.id: a for a in ctx.notice.processing_activities}
    declared_wrong = declaration_problems(processings, ctx.notice)
    categories = _categories_by_column()
    read_by_purpose: dict[str, set[str]] = defaultdict(set)
    findings = [f"{pid}: {p}" for pid, ps in sorted(declared_wrong.items()) for p in ps]
    run_violations = 0
    excluded: dict[str, int] = defaultdict(int)
    checks = _latest_checks(ctx)
    for row in checks:
        declared = processings.get(row.processing_id)
        evidence = declared.basis_evidence if declared else frozenset()
        used = {c for c in row.columns_read.split(",") if c} - evidence
        read = {categories.get(c, "unmapped") for c in used}
        read_by_purpose[row.purpose] |= read
        allowed = set(purposes[row.purpose].categories) if row.purpose in purposes else set()
        beyond = sorted(read - allowed)
        if row.violation or beyond or declared is None:
            run_violations += 1
            what = row.violation or (
                f"read {', '.join(beyond)} beyond purpose {row.purpose!r}"
                if beyond
                else "is not declared in the code"
            )
            findings.append(f"{row.processing_id} (run {row.run_id}): {what}")
        # Each run counts every objector it left out: the people, not the sum over runs.
        excluded[row.basis] = max(excluded[row.basis], row.subjects_excluded or 0)
    unchecked = _unchecked_tables(ctx)
    findings += [f"statistics.{t}: its latest build has no purpose check" for t in unchecked]
    violations = len(declared_wrong) + run_violations + len(unchecked)
    figures: dict[str, Any] = {
        "processings_declared": len(processings),
        "processings_checked": len(checks),
        "declarations_with_problems": len(declared_wrong),
        "runs_beyond_purpose": run_violations,
        "published_tables_without_check": len(unchecked),
        "violations": violations,
        "categories_read_per_purpose": {k: sorted(v) for k, v in sorted(read_by_purpose.items())},
        # People left out by the newest run of each processing: objectors (legitimate
        # interest), people without consent in force (consent).
        "subjects_excluded_objections": excluded["legitimate_interest"],
        "subjects_excluded_without_consent": excluded["consent"],
    }
    return ClauseResult(
        "N-BASIS",
        "Every processing has a purpose and a lawful basis, and reads only what its purpose lists",
        passed=violations == 0,
        figures=figures,
        no_data=nothing_to_judge(violations == 0, {"processing_runs": len(checks)}, figures),
        queries={
            "declarations": "code: ccg_pipeline.purposes.declare (ccg ropa lists them)",
            "runs": "SELECT * FROM ops.purpose_checks (newest per processing up to the date)",
        },
        findings=findings,
    )
