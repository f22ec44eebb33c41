"""Portal table rows a chunk at a time, a column at a time.

Each output column is made by one converter applied to one source column. A converter is the row
parser's own expression for that column (`portal._company`, `portal._user`, ...), with the plain
type of a value (an int id, a `None`) taken at once; where the expression would raise, for any
reason, it returns `SLOW`, and its row goes to the table's row parser, which gives the same row or
the reason it is rejected, in its own order of checks. So the rows loaded and the rows
quarantined, with their reasons, are the row parser's; the clean majority skips building a dict of
the raw row and the per-row call (`tests/unit/test_portal_batch.py` holds the two ways equal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from ccg_pipeline.ingest.common import (
    SLOW,
    country_code,
    normalise_email,
    parse_date,
    parse_int,
    parse_money_minor,
    parse_timestamp,
)

# A converter of one source column's values, for a run whose window ends at `end`.
Converter = Callable[[Any], Any]
MakeConverter = Callable[[str, dt.datetime], Converter | None]


def _guarded(expression: Callable[[Any], Any]) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return expression(value)
        except Exception:  # the row parser gives this row its own verdict (or error)
            return SLOW

    return convert


def _as_is(column: str, end: dt.datetime) -> Converter | None:
    return None  # the value goes into the row unchanged (`r.get(column)`)


def _int(column: str, end: dt.datetime) -> Converter:
    slow = _guarded(lambda v: parse_int(v, column))
    return lambda v: v if v.__class__ is int else slow(v)


def _optional_int(column: str, end: dt.datetime) -> Converter:
    slow = _guarded(lambda v: parse_int(v, column, required=False))
    return lambda v: v if v is None or v.__class__ is int else slow(v)


def _time(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: parse_timestamp(str(v or ""), column, not_after=end))


def _optional_time(column: str, end: dt.datetime) -> Converter:
    # `portal._opt_ts`
    return _guarded(lambda v: parse_timestamp(str(v), column, not_after=end) if v else None)


def _date(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: parse_date(v, column))


def _optional_date(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: parse_date(v, column) if v else None)  # `portal._opt_date`


def _money(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: parse_money_minor(v, column))


def _country(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: country_code(v, column))


def _or(default: str) -> MakeConverter:
    return lambda column, end: _guarded(lambda v: v or default)


def _stripped_or_empty(column: str, end: dt.datetime) -> Converter:
    return _guarded(lambda v: (v or "").strip())


def _email_key(column: str, end: dt.datetime) -> Converter:
    return _guarded(normalise_email)


def _required_text(column: str, end: dt.datetime) -> Converter:
    # `portal._required_text`, and the company name's check then `strip()`.
    return lambda v: v.strip() if isinstance(v, str) and v.strip() else SLOW


def _licence(column: str, end: dt.datetime) -> Converter:
    return lambda v: v if v.__class__ is str and v in ("trial", "full") else SLOW


# Per source table, in the row parser's key order: (output column, source column, converter).
FIELDS: dict[str, tuple[tuple[str, str, MakeConverter], ...]] = {
    "companies": (
        ("company_id", "id", _int),
        ("name", "name", _required_text),
        ("registration_number", "company_number", _as_is),
        ("vat_number", "vat_number", _as_is),
        ("country", "country_code", _country),
        ("sector", "sector", _as_is),
        ("employees", "employee_count", _optional_int),
        ("annual_revenue_gbp", "annual_revenue", _optional_int),
        ("billing_address", "address_line", _as_is),
        ("postcode", "postcode", _as_is),
        ("city", "city", _as_is),
        ("created_at", "created_at", _time),
        ("closed_at", "closed_at", _optional_time),
        ("updated_at", "updated_at", _time),
    ),
    "users": (
        ("user_id", "id", _int),
        ("company_id", "company_id", _int),
        ("email", "email", _stripped_or_empty),
        ("_email_norm", "email", _email_key),
        ("username", "username", _required_text),
        ("first_name", "first_name", _as_is),
        ("last_name", "last_name", _as_is),
        ("job_title", "job_title", _as_is),
        ("phone", "phone", _as_is),
        ("password_hash", "password_hash", _as_is),
        ("interests", "interests", _as_is),
        ("time_zone", "timezone", _as_is),
        ("created_at", "created_at", _time),
        ("closed_at", "closed_at", _optional_time),
        ("last_login_at", "last_login_at", _optional_time),
        ("updated_at", "updated_at", _time),
    ),
    "contracts": (
        ("contract_id", "id", _int),
        ("company_id", "company_id", _int),
        ("licence_type", "licence_type", _licence),
        ("service", "service", _or("unknown")),
        ("starts_on", "start_date", _date),
        ("ends_on", "end_date", _optional_date),
        ("annual_fee_minor", "annual_fee", _money),
        ("updated_at", "updated_at", _time),
    ),
    "orders": (
        ("order_id", "id", _int),
        ("company_id", "company_id", _int),
        ("user_id", "user_id", _optional_int),
        ("service", "service", _or("unknown")),
        ("ordered_at", "ordered_at", _time),
        ("amount_minor", "amount", _money),
        ("updated_at", "updated_at", _time),
    ),
    "invoices": (
        ("invoice_id", "id", _int),
        ("company_id", "company_id", _int),
        ("order_id", "order_id", _optional_int),
        ("invoice_number", "invoice_number", _or("")),
        ("issued_on", "issued_on", _date),
        ("due_on", "due_on", _date),
        ("amount_minor", "amount", _money),
        ("vat_minor", "vat", _money),
        ("status", "status", _or("unknown")),
        ("updated_at", "updated_at", _time),
    ),
    "payments": (
        ("payment_id", "id", _int),
        ("invoice_id", "invoice_id", _int),
        ("paid_at", "paid_at", _time),
        ("amount_minor", "amount", _money),
        ("method", "method", _or("unknown")),
        ("card_masked", "card_number_masked", _as_is),
        ("bank_account_masked", "bank_account_masked", _as_is),
        ("company_id", "company_id", _optional_int),
        ("updated_at", "updated_at", _time),
    ),
}


def fast_path_possible(table: str, names: Sequence[str]) -> bool:
    """Positions stand for names only when the source has each column the fields read, once
    (a missing one is `r.get`'s None, or `r["id"]`'s KeyError, in the row parser)."""
    return len(set(names)) == len(names) and {f[1] for f in FIELDS[table]} <= set(names)


def parse_chunk(
    table: str, names: Sequence[str], rows: Sequence[Sequence[Any]], end: dt.datetime
) -> list[dict[str, Any] | None]:
    """The parsed row for each of `rows` (tuples in the order of `names`) that every converter
    vouches for, else None (parse it row by row)."""
    if not rows:
        return []
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    slow: set[int] = set()
    values: list[Sequence[Any]] = []
    for _, source, make in FIELDS[table]:
        convert = make(source, end)
        if convert is None:
            values.append(columns[source])
            continue
        converted = list(map(convert, columns[source]))
        slow.update(n for n, value in enumerate(converted) if value is SLOW)
        values.append(converted)
    keys = [name for name, _, _ in FIELDS[table]]
    return [
        None if n in slow else dict(zip(keys, row_values, strict=True))
        for n, row_values in enumerate(zip(*values, strict=True))
    ]
