"""The retention stage as its DAG and the `ccg` command run it (the package's entry points;
`ccg_pipeline.retention` re-exports them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.purposes import declare_obligation, purpose_of
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.locks import stage_lock

# N-BASIS: the sweep reads every category it deletes or anonymises, under the legal obligation
# of s.8 (six years for tax records, no longer than necessary for the rest).
RETENTION_SWEEP = declare_obligation(
    "retention.sweep",
    "data_retention",
    "deletes or anonymises what is past its retention period, keeps what holds keep",
)


def _summary(outcomes: list[Any]) -> dict[str, Any]:
    return {
        "targets": [asdict(o) for o in outcomes],
        "due": sum(o.due for o in outcomes),
        "held": sum(o.held for o in outcomes),
        "deleted": sum(o.deleted for o in outcomes),
        "anonymised": sum(o.anonymised for o in outcomes),
        "expired_unheld_remaining": sum(o.expired_unheld_remaining for o in outcomes),
    }


@purpose_of(RETENTION_SWEEP)
def plan_retention(
    settings: Settings, as_of: dt.date, *, align_to_year_end: bool | None = None
) -> dict[str, Any]:
    from ccg_pipeline.retention.sweep import plan

    with migrate.migrated(settings.warehouse_url) as engine, purposes.scope(RETENTION_SWEEP):
        return _summary(plan(engine, load_notice(), as_of, align_to_year_end=align_to_year_end))


@purpose_of(RETENTION_SWEEP)
def run_retention(
    settings: Settings,
    as_of: dt.date,
    run_id: str,
    *,
    chunk_rows: int | None = None,
    align_to_year_end: bool | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """The sweep under its lock and purpose; `progress` as `sweep` calls it (per table)."""
    from ccg_pipeline.retention.sweep import DEFAULT_CHUNK_ROWS, sweep

    with (
        stage_lock(settings.warehouse_url, "retention"),
        migrate.migrated(settings.warehouse_url) as engine,
        purposes.judged(engine, RETENTION_SWEEP, run_id, as_of),
    ):
        outcomes = sweep(
            engine,
            load_notice(),
            as_of,
            run_id,
            chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
            align_to_year_end=align_to_year_end,
            progress=progress,
        )
    return _summary(outcomes)


def render_plan(summary: dict[str, Any], as_of: dt.date) -> str:
    lines = [
        f"Retention plan as of {as_of} (counts only; nothing changed)",
        f"{'rule':<24} {'table':<26} {'due':>8} {'held':>6} {'anonymise':>10} {'delete':>8}",
    ]
    for t in summary["targets"]:
        lines.append(
            f"{t['rule_id']:<24} {t['table']:<26} {t['due']:>8,} {t['held']:>6,} {t['anonymised']:>10,} {t['deleted']:>8,}"
        )
    lines.append(
        f"{'total':<51} {summary['due']:>8,} {summary['held']:>6,} {summary['anonymised']:>10,} {summary['deleted']:>8,}"
    )
    return "\n".join(lines)
