"""Small dialect-aware SQL building blocks shared by ingest, retention and statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ccg_pipeline import faults
from ccg_pipeline.warehouse import schema

# A query of ids: a SELECT, or a UNION of several (usable with `in_`, `not_in` and `subquery`).
IdQuery = sa.Select[Any] | sa.CompoundSelect[Any]


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's dialect."""
    return (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table)


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
    faults.reach(f"audit.{action}", conn)
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


def month_label(column: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m", column)
    return sa.func.to_char(column, "YYYY-MM")


def day_label(column: Any, dialect: str) -> Any:
    """The calendar day of a timestamp (SQLite stores ISO text, so its first ten characters)."""
    if dialect == "sqlite":
        return sa.func.substr(column, 1, 10)
    return sa.func.date(column)


def quarter_label(column: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        quarter = (sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) // 3
        return sa.func.strftime("%Y", column) + "-Q" + sa.cast(quarter, sa.Text)
    return sa.func.to_char(column, 'YYYY-"Q"Q')
