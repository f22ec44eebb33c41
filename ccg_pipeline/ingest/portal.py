"""Customer-portal database, reached through SQLAlchemy (connection `ccg_portal`).

Each table is read for the run's window on `updated_at` and upserted into the personal zone. The
first run for a table (no watermark yet) or a full refresh reads everything before the window's
end; after that a run reads from the earlier of its interval start and the table's watermark, so
intervals missed while the scheduler was down are picked up. Only a row at least as new as the stored one
overwrites it, so replaying an old interval never rolls data back.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.ingest import portal_batch
from ccg_pipeline.ingest.common import (
    BatchResult,
    IngestContext,
    QuarantinedRecord,
    Rejected,
    UnknownColumnsError,
    country_code,
    load_chunk,
    normalise_email,
    parse_date,
    parse_int,
    parse_money_minor,
    parse_records,
    parse_timestamp,
    raw_json,
    record_batch,
)
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.backend import STREAM_CHUNK_ROWS
from ccg_pipeline.warehouse.engine import write_transaction

log = logging.getLogger(__name__)

Row = dict[str, Any]


class RowParser(Protocol):
    """Checks and converts one source row; `end` is the end of the run's window."""

    def __call__(self, r: Row, end: dt.datetime) -> Row: ...


def _opt_ts(row: Row, column: str, end: dt.datetime) -> dt.datetime | None:
    return parse_timestamp(str(row[column]), column, not_after=end) if row.get(column) else None


def _opt_date(row: Row, column: str) -> dt.date | None:
    return parse_date(row[column], column) if row.get(column) else None


def _required_text(row: Row, column: str) -> str:
    value = row.get(column)
    if not isinstance(value, str) or not value.strip():
        raise Rejected("missing_field", f"{column} is empty")
    return value.strip()


def _company(r: Row, end: dt.datetime) -> Row:
    if not (r.get("name") or "").strip():
        raise Rejected("missing_field", "name is empty")
    return {
        "company_id": parse_int(r["id"], "id"),
        "name": r["name"].strip(),
        "registration_number": r.get("company_number"),
        "vat_number": r.get("vat_number"),
        "country": country_code(r.get("country_code"), "country_code"),
        "sector": r.get("sector"),
        "employees": parse_int(r.get("employee_count"), "employee_count", required=False),
        "annual_revenue_gbp": parse_int(r.get("annual_revenue"), "annual_revenue", required=False),
        "billing_address": r.get("address_line"),
        "postcode": r.get("postcode"),
        "city": r.get("city"),
        "created_at": parse_timestamp(str(r.get("created_at") or ""), "created_at", not_after=end),
        "closed_at": _opt_ts(r, "closed_at", end),
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


def _user(r: Row, end: dt.datetime) -> Row:
    return {
        "user_id": parse_int(r["id"], "id"),
        "company_id": parse_int(r.get("company_id"), "company_id"),
        "email": (r.get("email") or "").strip(),
        "_email_norm": normalise_email(r.get("email")),
        "username": _required_text(r, "username"),
        "first_name": r.get("first_name"),
        "last_name": r.get("last_name"),
        "job_title": r.get("job_title"),
        "phone": r.get("phone"),
        "password_hash": r.get("password_hash"),
        "interests": r.get("interests"),
        "time_zone": r.get("timezone"),
        "created_at": parse_timestamp(str(r.get("created_at") or ""), "created_at", not_after=end),
        "closed_at": _opt_ts(r, "closed_at", end),
        "last_login_at": _opt_ts(r, "last_login_at", end),
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


def _contract(r: Row, end: dt.datetime) -> Row:
    kind = r.get("licence_type")
    if kind not in ("trial", "full"):
        raise Rejected("bad_value", "licence_type is not trial or full")
    return {
        "contract_id": parse_int(r["id"], "id"),
        "company_id": parse_int(r.get("company_id"), "company_id"),
        "licence_type": kind,
        "service": r.get("service") or "unknown",
        "starts_on": parse_date(r.get("start_date"), "start_date"),
        "ends_on": _opt_date(r, "end_date"),
        "annual_fee_minor": parse_money_minor(r.get("annual_fee"), "annual_fee"),
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


def _order(r: Row, end: dt.datetime) -> Row:
    return {
        "order_id": parse_int(r["id"], "id"),
        "company_id": parse_int(r.get("company_id"), "company_id"),
        "user_id": parse_int(r.get("user_id"), "user_id", required=False),
        "service": r.get("service") or "unknown",
        "ordered_at": parse_timestamp(str(r.get("ordered_at") or ""), "ordered_at", not_after=end),
        "amount_minor": parse_money_minor(r.get("amount"), "amount"),
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


def _invoice(r: Row, end: dt.datetime) -> Row:
    return {
        "invoice_id": parse_int(r["id"], "id"),
        "company_id": parse_int(r.get("company_id"), "company_id"),
        "order_id": parse_int(r.get("order_id"), "order_id", required=False),
        "invoice_number": r.get("invoice_number") or "",
        "issued_on": parse_date(r.get("issued_on"), "issued_on"),
        "due_on": parse_date(r.get("due_on"), "due_on"),
        "amount_minor": parse_money_minor(r.get("amount"), "amount"),
        "vat_minor": parse_money_minor(r.get("vat"), "vat"),
        "status": r.get("status") or "unknown",
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


def _payment(r: Row, end: dt.datetime) -> Row:
    return {
        "payment_id": parse_int(r["id"], "id"),
        "invoice_id": parse_int(r.get("invoice_id"), "invoice_id"),
        "paid_at": parse_timestamp(str(r.get("paid_at") or ""), "paid_at", not_after=end),
        "amount_minor": parse_money_minor(r.get("amount"), "amount"),
        "method": r.get("method") or "unknown",
        "card_masked": r.get("card_number_masked"),
        "bank_account_masked": r.get("bank_account_masked"),
        # Looked up from the portal's invoices with the row (`_source_columns`).
        "company_id": parse_int(r.get("company_id"), "company_id", required=False),
        "updated_at": parse_timestamp(str(r.get("updated_at") or ""), "updated_at", not_after=end),
    }


# Source table -> (warehouse table, row parser), in load order.
TABLES: dict[str, tuple[sa.Table, RowParser]] = {
    "companies": (schema.companies, _company),
    "users": (schema.portal_users, _user),
    "contracts": (schema.contracts, _contract),
    "orders": (schema.orders, _order),
    "invoices": (schema.invoices, _invoice),
    "payments": (schema.payments, _payment),
}


def _watermark(conn: Connection, source: str) -> dt.datetime | None:
    w = schema.watermarks
    return conn.execute(
        sa.select(w.c.high_water_mark).where(w.c.source == source)
    ).scalar_one_or_none()


def _loaded_by(conn: Connection, source: str, run_id: str) -> bool:
    b = schema.ingest_batches
    query = sa.select(b.c.batch_id).where(
        b.c.source == source, b.c.run_id == run_id, b.c.status == "loaded"
    )
    return conn.execute(query.limit(1)).first() is not None


def _set_watermark(conn: Connection, source: str, value: dt.datetime, run_id: str) -> None:
    w = schema.watermarks
    current = _watermark(conn, source)
    if current is None:
        conn.execute(sa.insert(w).values(source=source, high_water_mark=value, run_id=run_id))
    elif current < value:
        conn.execute(
            sa.update(w).where(w.c.source == source).values(high_water_mark=value, run_id=run_id)
        )


def _bound(column: sa.Column, value: dt.datetime) -> Any:
    """Compare text timestamps (SQLite sources) as text, real timestamps as timestamps."""
    if isinstance(column.type, sa.String | sa.Text) or column.type.__class__ is sa.types.NullType:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _source_columns(meta: sa.MetaData, name: str) -> list[sa.ColumnElement[Any]]:
    """The source table's columns as stored, plus a payment's company from its invoice in the
    portal: the warehouse then reaches the payment by company key even when the invoice row is
    quarantined (personal_model, rule customer_basic)."""
    src = meta.tables[name]
    columns: list[sa.ColumnElement[Any]] = [
        sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in src.columns
    ]
    if name == "payments" and "company_id" not in src.c:
        invoices = meta.tables["invoices"]
        company = (
            sa.select(invoices.c.company_id)
            .where(invoices.c.id == src.c.invoice_id)
            .scalar_subquery()
        )
        columns.append(sa.type_coerce(company, sa.types.NullType()).label("company_id"))
    return columns


def parse_rows(
    table: str,
    names: list[str],
    rows: Sequence[Sequence[Any]],
    result: BatchResult,
    end: dt.datetime,
    *,
    columnar: bool,
) -> tuple[list[Row], list[QuarantinedRecord]]:
    """A chunk of a source table's rows (tuples in the order of `names`): (parsed rows,
    quarantined records), counted in `result`. `columnar`: the clean rows are converted a column
    at a time (`portal_batch`; the caller checks `fast_path_possible`), the rest row by row."""
    prepared = portal_batch.parse_chunk(table, names, rows, end) if columnar else None
    # A dict of the raw row only for the row parser (and the quarantine) to read.
    raws = [
        None if ready else dict(zip(names, row, strict=True))
        for row, ready in zip(rows, prepared or [None] * len(rows), strict=True)
    ]
    id_at = names.index("id") if "id" in names else None  # the quarantine's reference
    refs = [f"id {None if id_at is None else row[id_at]}" for row in rows]
    parse = functools.partial(TABLES[table][1], end=end)
    return parse_records(result, zip(refs, raws, strict=True), parse, raw_json, prepared)


# Row by row is the default: in an A/B on 8 December 2026 (bulk-generated S sources, 169,387
# rows, SQLite, each load a fresh process and warehouse, three alternating pairs) the portal
# took a median of 4.88 s column at a time and 4.92 s row by row, and `make bench-ingest` the
# same day had row by row at 0.91x column at a time on SQLite and 1.04x on PostgreSQL: no
# consistent gain for a second description of every table (`portal_batch.FIELDS`). Kept, with
# its equivalence test, as the frame for converters that do the work in Arrow compute (as
# `crm.COLUMNAR`).
COLUMNAR = False


def ingest_portal(
    ctx: IngestContext, portal: Engine, *, columnar: bool = COLUMNAR
) -> list[BatchResult]:
    """Load every portal table for the run's window. Refused tables are recorded, not loaded.
    `columnar`: the clean rows of each chunk are converted a column at a time (`portal_batch`),
    the rest row by row; False (the default, see `COLUMNAR`) parses every row by itself."""
    results = []
    meta = sa.MetaData()
    meta.reflect(portal, only=list(TABLES))
    for name, (target, _) in TABLES.items():
        source = f"portal.{name}"
        src = meta.tables[name]
        with ctx.engine.connect() as conn:  # reads only: no write lock
            watermark = _watermark(conn, source)
            done = not ctx.full_refresh and _loaded_by(conn, source, ctx.run_id)
        if done:
            # A retried task: this run committed the table (rows, counts and watermark in one
            # transaction) before it was cut off. Reading it again from the new watermark would
            # find nothing and overwrite the run's counts with zeros.
            log.info("%s: already loaded by this run, skipped", source)
            results.append(BatchResult(source=source, source_ref=name, status="skipped"))
            continue
        bootstrap = ctx.full_refresh or watermark is None
        # Resume from the watermark when runs were missed (it is behind the window), but re-read
        # the whole window when an older interval is replayed (the watermark is ahead of it).
        lower = (
            None
            if bootstrap or watermark is None
            else min(ctx.window_start or watermark, watermark)
        )
        # The window itself is recorded in ops.ingest_batches; the ref stays the table name so a
        # quarantined row keeps one identity across reruns and refreshes.
        result = BatchResult(source=source, source_ref=name)
        unknown = ctx.data_map.check_columns(source, [c.name for c in src.columns])
        if unknown:
            error = UnknownColumnsError(source, name, unknown)
            result.status, result.error = "refused", str(error)
            log.error("%s", error)
            with write_transaction(ctx.engine) as conn:
                record_batch(conn, ctx, result, None)
            results.append(result)
            continue
        # Read values as the database stores them; the row parsers own all conversion, so a
        # malformed value is quarantined by name instead of failing the driver's type processing.
        raw_columns = _source_columns(meta, name)
        query = sa.select(*raw_columns).where(
            src.c.updated_at < _bound(src.c.updated_at, ctx.window_end)
        )
        if lower is not None:
            query = query.where(src.c.updated_at >= _bound(src.c.updated_at, lower))
        with portal.connect() as source_conn, write_transaction(ctx.engine) as conn:
            stream = source_conn.execution_options(stream_results=True, yield_per=STREAM_CHUNK_ROWS)
            found = stream.execute(query.order_by(src.c.id))
            names = list(found.keys())
            fast = columnar and portal_batch.fast_path_possible(name, names)
            for chunk in found.partitions(STREAM_CHUNK_ROWS):
                parsed = parse_rows(name, names, chunk, result, ctx.window_end, columnar=fast)
                load_chunk(conn, ctx, result, target, parsed, newer_than="updated_at")
            record_batch(conn, ctx, result, None)
            _set_watermark(conn, source, ctx.window_end, ctx.run_id)
        log.info("%s", result.describe())
        results.append(result)
    return results
