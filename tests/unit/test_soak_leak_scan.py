"""The soak's leak oracle on `ops.validation_results` scans each row's text once, and again when
a rerun rewrites it: what it skips is what it has already judged."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from ccg_pipeline.devtools.soak import Soak
from ccg_pipeline.warehouse import migrate, schema
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.unit
PATTERN = re.compile(re.escape("ulrika.wallin@example.se"))


def _row(position: int, column: str) -> dict:
    return {
        "run_id": "stats-1",
        "table_name": "customer_profiles",
        "position": position,
        "expectation": "expect_column_values_to_not_match_regex",
        "column_name": column,
        "success": True,
        "unexpected_count": 0,
        "observed_value": None,
        "raised_error": False,
        "suite_version": "1",
        "validated_at": dt.datetime(2026, 11, 24, 1),
    }


def test_each_row_is_judged_once_and_again_when_rewritten(tmp_path: Path) -> None:
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'wh' / 'main.db'}")
    migrate.upgrade(engine)
    soak = SimpleNamespace()  # the oracle keeps what it scanned on the soak (and its checkpoint)
    table = schema.validation_results

    def leaks() -> bool:
        with engine.connect() as conn:
            return Soak._unscanned_results_leak(soak, conn, PATTERN)  # type: ignore[arg-type]

    with engine.begin() as conn:
        conn.execute(sa.insert(table), [_row(0, "region"), _row(1, "sector")])
    assert leaks() is False
    with engine.begin() as conn:
        conn.execute(sa.insert(table), _row(2, "ULRIKA.WALLIN@EXAMPLE.SE"))
    assert leaks() is True  # a new row with an address
    assert leaks() is False  # the same rows again: nothing new to judge
    with engine.begin() as conn:  # a rerun rewrites a judged row with an address
        conn.execute(
            sa.update(table)
            .where(table.c.position == 0)
            .values(column_name="ulrika.wallin@example.se")
        )
    assert leaks() is True
    engine.dispose()
