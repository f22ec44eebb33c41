"""Small dialect-aware SQL building blocks shared by ingest, retention and statistics."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ccg_pipeline import faults
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.backend import backend_of

if TYPE_CHECKING:
    import pandas as pd

# A query of ids: a SELECT, or a UNION of several (usable with `in_`, `not_in` and `subquery`).
IdQuery = sa.Select[Any] | sa.CompoundSelect[Any]


def frame_of(result: sa.Result[Any], *, dtype: Any = None) -> pd.DataFrame:
    """A query result's rows as a DataFrame, one column per selected column.

    pandas gets plain tuples. Given SQLAlchemy rows, it first asks each row for a `dtype`
    attribute, and each miss raises and catches a lookup error inside SQLAlchemy: 2.1 s of a
    5.4 s statistics build at S. pandas then turns such rows into tuples itself, so the frame,
    dtypes included, is the same (`tests/unit/test_frame_of.py`)."""
    import pandas as pd

    return pd.DataFrame([tuple(row) for row in result], columns=list(result.keys()), dtype=dtype)


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's backend."""
    return backend_of(conn).insert(table)


def add_into(conn: Connection, table: sa.Table, rows: sa.Select) -> None:
    """INSERT ... SELECT, adding the selected measures onto existing rows with the same key."""
    keys = [c.name for c in table.primary_key.columns]
    columns = [c.name for c in rows.selected_columns]
    stmt = insert_for(conn, table).from_select(columns, rows)
    measures = {c: table.c[c] + stmt.excluded[c] for c in columns if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=measures))


def upsert_row(conn: Connection, table: sa.Table, row: dict[str, Any]) -> None:
    """Insert one row, or overwrite the non-key columns of the row with the same primary key
    (reruns replace what an earlier attempt wrote)."""
    keys = [c.name for c in table.primary_key.columns]
    stmt = insert_for(conn, table).values(**row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=keys, set_={k: stmt.excluded[k] for k in row if k not in keys}
        )
    )


def audit(
    conn: Connection,
    *,
    run_id: str,
    action: str,
    table_name: str,
    row_count: int,
    at: dt.datetime,
    rule_id: str = "",
    subject_pseudonym: str = "",
    accumulate: bool = False,
) -> None:
    """Write the audit-ledger row for (run, action, rule, table, subject); with `accumulate` the
    count adds to what the run already recorded (chunked work), else it replaces it (reruns)."""
    faults.reach(f"audit.{action}", conn, backend_of(conn).cut_connection)
    ledger = schema.audit_ledger
    stmt = insert_for(conn, ledger).values(
        run_id=run_id,
        action=action,
        rule_id=rule_id,
        table_name=table_name,
        row_count=row_count,
        subject_pseudonym=subject_pseudonym,
        recorded_at=at,
    )
    count = ledger.c.row_count + stmt.excluded.row_count if accumulate else stmt.excluded.row_count
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["run_id", "action", "rule_id", "table_name", "subject_pseudonym"],
            set_={"row_count": count, "recorded_at": stmt.excluded.recorded_at},
        )
    )


# Period labels of a date or timestamp column, one SQL construct each, compiled per backend
# (SQLite stores dates as ISO text): callers never name a dialect.


class month_label(FunctionElement[str]):
    """'YYYY-MM' of a date or timestamp."""

    type = sa.Text()
    inherit_cache = True


class day_label(FunctionElement[str]):
    """The calendar day of a timestamp ('YYYY-MM-DD' on SQLite, a date on PostgreSQL)."""

    type = sa.Text()
    inherit_cache = True


class quarter_label(FunctionElement[str]):
    """'YYYY-Qn' of a date or timestamp."""

    type = sa.Text()
    inherit_cache = True


class day_after(FunctionElement[Any]):
    """The timestamp one day after a date or timestamp."""

    inherit_cache = True


@compiles(day_after, "sqlite")
def _day_after_sqlite(element: day_after, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.datetime(*element.clauses, "+1 day"), **kw)


@compiles(day_after)
def _day_after(element: day_after, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column + sa.text("interval '1 day'"), **kw)


@compiles(month_label, "sqlite")
def _month_sqlite(element: month_label, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.strftime("%Y-%m", *element.clauses), **kw)


@compiles(month_label)
def _month(element: month_label, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.to_char(*element.clauses, "YYYY-MM"), **kw)


@compiles(day_label, "sqlite")
def _day_sqlite(element: day_label, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.substr(*element.clauses, 1, 10), **kw)


@compiles(day_label)
def _day(element: day_label, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.date(*element.clauses), **kw)


@compiles(quarter_label, "sqlite")
def _quarter_sqlite(element: quarter_label, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    quarter = (sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) // 3
    return compiler.process(sa.func.strftime("%Y", column) + "-Q" + sa.cast(quarter, sa.Text), **kw)


@compiles(quarter_label)
def _quarter(element: quarter_label, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(sa.func.to_char(*element.clauses, 'YYYY-"Q"Q'), **kw)
