"""The backend adapter (`warehouse/backend.py`): one object per backend, and no other runtime
module asks which backend it runs on."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.warehouse.backend import (
    PostgresBackend,
    SQLiteBackend,
    _copy_text,
    _quick_sqlite_bind,
    backend_of,
    copy_rows_text,
)
from ccg_pipeline.warehouse.sql import day_after, day_label, month_label, quarter_label

ROOT = Path(__file__).resolve().parents[2]
# Where the backends are told apart: the adapter, engine creation, and reading an Airflow
# connection's type into a URL (configuration, before any backend exists).
ADAPTER = {
    "ccg_pipeline/warehouse/backend.py",
    "ccg_pipeline/warehouse/engine.py",
    "ccg_pipeline/dag_support.py",
}
DIALECT_TEST = re.compile(
    r"dialect\.name|get_backend_name|is_sqlite\(|startswith\(\"(sqlite|postgres)|"
    r"==\s*\"(sqlite|postgresql)\""
)


def test_a_backend_is_found_from_a_url_an_engine_or_a_connection(tmp_path: Path) -> None:
    assert isinstance(backend_of("sqlite:///x/main.db"), SQLiteBackend)
    assert isinstance(backend_of("postgresql+psycopg2://u@h/db"), PostgresBackend)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'main.db'}")
    with engine.connect() as conn:
        assert backend_of(engine) is backend_of(conn) is backend_of("sqlite://")
    engine.dispose()


def test_an_unsupported_backend_is_named() -> None:
    with pytest.raises(ValueError, match="unsupported warehouse backend 'mysql'"):
        backend_of("mysql://u@h/db")


def test_period_labels_compile_per_backend() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                month_label(sa.literal("2026-03-05 10:00:00")),
                day_label(sa.literal("2026-03-05 10:00:00")),
                quarter_label(sa.literal("2026-12-31")),
                day_after(sa.literal("2026-02-28")),
            )
        ).one()
    assert tuple(row) == ("2026-03", "2026-03-05", "2026-Q4", "2026-03-01 00:00:00")
    pg = sa.dialects.postgresql.dialect()
    column = sa.column("at")
    assert "to_char(at" in str(month_label(column).compile(dialect=pg))
    assert "interval '1 day'" in str(day_after(column).compile(dialect=pg))


def test_no_runtime_module_tests_the_backend_outside_the_adapter() -> None:
    files = [*(ROOT / "ccg_pipeline").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
    runtime = [p for p in files if "devtools" not in p.parts]
    assert len(runtime) > 50
    found = {
        f"{path.relative_to(ROOT)}:{number}"
        for path in runtime
        if str(path.relative_to(ROOT)) not in ADAPTER
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if DIALECT_TEST.search(line)
    }
    assert found == set()


_COPY_VALUES = (
    st.none()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
    | st.sampled_from(["\\N", "\\", "\t", "\n", "\r", "a\\tb", "\x00", ""])
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.datetimes()
    | st.dates()
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_COPY_VALUES, min_size=3, max_size=3), max_size=12))
def test_copy_text_a_column_at_a_time_is_the_per_value_text(values: list[list]) -> None:
    """PostgreSQL's COPY buffer, built a column at a time, holds exactly what escaping each
    value by itself gives (the format that `test_upsert` round-trips through a real server)."""
    columns = ["a", "b", "c"]
    rows = [dict(zip(columns, row, strict=True)) for row in values]
    expected = "".join("\t".join(_copy_text(row[c]) for c in columns) + "\n" for row in rows)
    assert copy_rows_text(rows, columns) == expected


_SQLITE = sa.create_engine("sqlite://").dialect
_BOUND_TIMES = (
    st.none()
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=st.timezones())
    | st.sampled_from([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)])
)


@settings(max_examples=500, deadline=None)
@given(_BOUND_TIMES, st.sampled_from([sa.DateTime(), sa.Date()]))
def test_quick_sqlite_dates_and_times_are_sqlalchemys_own_text(value: object, kind: object) -> None:
    """The C `isoformat` shortcut binds the same text as the type's own SQLite processor, for
    naive and aware datetimes, dates, datetimes given to a DATE column, and None (a change of
    SQLAlchemy's storage format, or a value the shortcut misjudges, fails here)."""
    impl = kind.dialect_impl(_SQLITE)  # type: ignore[attr-defined]
    process = impl.bind_processor(_SQLITE)
    quick = _quick_sqlite_bind(impl, process)
    assert quick is not process  # the shortcut is in use for both types
    assert quick(value) == process(value)
