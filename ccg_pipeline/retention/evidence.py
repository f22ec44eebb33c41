"""Evidence of a retention run, read back from ops (counts only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ccg_pipeline.config import Settings
from ccg_pipeline.purposes import NotAProcessing, purpose_of
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.engine import create_warehouse_engine


class RetentionEvidenceMissing(RuntimeError):
    pass


@purpose_of(NotAProcessing("reads the sweep's own check records in ops, no personal row"))
def verify_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """Fail unless the run recorded a passing check for every rule and table."""
    from ccg_pipeline.retention.rules import targets
    from ccg_pipeline.retention.sweep import RetentionCheckFailed

    c = schema.retention_checks
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(c).where(c.c.run_id == run_id)).all()
    finally:
        engine.dispose()
    expected = {(t.rule_id, t.name) for t in targets()}
    recorded = {(r.rule_id, r.table_name) for r in rows}
    if expected - recorded:
        raise RetentionEvidenceMissing(
            f"run {run_id} has no check for {sorted(expected - recorded)}"
        )
    failed = [
        f"{r.rule_id}/{r.table_name}: {r.expired_unheld_remaining}" for r in rows if not r.passed
    ]
    if failed:
        raise RetentionCheckFailed(f"expired unheld rows remain: {', '.join(failed)}")
    return {
        "checks": len(rows),
        "deleted": sum(r.deleted for r in rows),
        "held": sum(r.held for r in rows),
        "expired_unheld_remaining": 0,
    }
