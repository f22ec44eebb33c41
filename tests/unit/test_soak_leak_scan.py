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


def test_each_xcom_value_is_judged_once_and_again_when_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for Airflow's XCom table (read from the metadata database the soak's Airflow
    uses): a new value with an address is caught, values already judged are not searched again, a
    rewritten one is, and values of runs that are not the soak's are left alone."""
    from ccg_pipeline.devtools.soak import _airflow_xcom_leaks

    metadata = tmp_path / "airflow.db"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{metadata}")
    engine = sa.create_engine(f"sqlite:///{metadata}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE xcom (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INT, "
                "key TEXT, value TEXT)"
            )
        )

    def put(run_id: str, task_id: str, value: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM xcom WHERE run_id = :r AND task_id = :t"),
                {"r": run_id, "t": task_id},
            )
            conn.execute(
                sa.text("INSERT INTO xcom VALUES ('ccg_ingest', :r, :t, -1, 'return_value', :v)"),
                {"r": run_id, "t": task_id, "v": value},
            )

    seen: set[bytes] = set()
    ours = {"manual__1"}
    put("manual__1", "ingest_crm", '{"rows_loaded": 12}')
    assert _airflow_xcom_leaks(PATTERN, ours, seen) is False
    put("manual__1", "ingest_portal", '{"note": "Ulrika.Wallin@example.se"}')
    assert _airflow_xcom_leaks(PATTERN, ours, seen) is True
    assert _airflow_xcom_leaks(PATTERN, ours, seen) is False  # judged already
    put("manual__1", "ingest_crm", '{"who": "ulrika.wallin@example.se"}')  # a rerun rewrites it
    assert _airflow_xcom_leaks(PATTERN, ours, seen) is True
    put("someone_else", "t", "ulrika.wallin@example.se")
    assert _airflow_xcom_leaks(PATTERN, ours, seen) is False
    engine.dispose()
