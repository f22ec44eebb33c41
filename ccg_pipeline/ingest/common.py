"""Shared machinery of every ingest: window, quarantine, upserts, subject matching, evidence.

An ingest reads a batch (a file, or a window of a source table), turns each record into a row or a
`Rejected`, and writes rows, quarantined records and a batch summary in one transaction. Writes
are upserts keyed on source ids, so rerunning a batch leaves the same state; snapshot sources only
overwrite a row with data at least as new as what is stored, so replaying an old interval never
rolls data back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import logging
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline import identity
from ccg_pipeline.identity import crm_contact_key, pseudonym
from ccg_pipeline.personal_model import QUARANTINE_LINKS
from ccg_pipeline.policy.models import DataMap, Notice
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.backend import UPSERT_CHUNK_ROWS, backend_of, in_chunks
from ccg_pipeline.warehouse.sql import audit, insert_for, upsert_row

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


# What a column-at-a-time converter (`crm_batch`, `portal_batch`) returns for a value it does not
# vouch for: its row is parsed row by row.
SLOW: Any = object()


class Rejected(ValueError):
    """A record that cannot be loaded. `code` is stable (for counts); `detail` names the problem
    (a column or a rule), never the offending value, so it is safe in logs."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


_LOOKS_LIKE_DATA = re.compile(r"@|\d{4,}")


def column_label(name: str) -> str:
    """A column name fit for logs and ops. A header cell that looks like data (an address, a long
    number), as when a file arrives without its header row, is masked, not echoed."""
    if _LOOKS_LIKE_DATA.search(name) or len(name) > 64:
        return (
            f"<column of {len(name)} characters that looks like data; is the header row missing?>"
        )
    return repr(name)


class BatchRefused(ValueError):
    """A whole batch cannot be loaded (unknown columns, no header): it is recorded as refused and
    the run fails after the other batches are loaded."""


class UnknownColumnsError(BatchRefused):
    """A source carries columns the data map does not know: the batch is refused, never loaded."""

    def __init__(self, source: str, ref: str, columns: Sequence[str]) -> None:
        names = ", ".join(column_label(c) for c in columns)
        super().__init__(
            f"{source} ({ref}): column(s) not in the data map: {names}. Tag them with a category "
            "and role in ccg_pipeline/policy/data_map.yaml, or drop them at the source."
        )
        self.source = source
        self.columns = list(columns)


class IngestFailed(RuntimeError):
    """Raised after all batches ran when any was refused; valid batches are already committed."""


@dataclass(frozen=True)
class IngestContext:
    engine: Engine
    notice: Notice
    data_map: DataMap
    pseudonym_key: str
    run_id: str
    window_start: dt.datetime | None
    window_end: dt.datetime
    full_refresh: bool = False


@dataclass
class BatchResult:
    source: str
    source_ref: str
    rows_read: int = 0
    rows_loaded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    status: str = "loaded"
    error: str | None = None
    # Valid rows not loaded because retention already retired them (unchanged since) or because
    # they are past their retention period on arrival: loading them would only resurrect data.
    rows_retired: int = 0
    # Valid rows not loaded because their subject was erased on request (a tombstone).
    rows_erased: int = 0

    @property
    def rows_quarantined(self) -> int:
        return sum(self.rejected.values())

    def describe(self) -> str:
        """One log line of counts (reasons are codes, never values)."""
        reasons = f" {dict(self.rejected)}" if self.rejected else ""
        retired = f", already retired {self.rows_retired}" if self.rows_retired else ""
        erased = f", erased on request {self.rows_erased}" if self.rows_erased else ""
        return (
            f"{self.source} {self.source_ref}: read {self.rows_read}, loaded {self.rows_loaded}, "
            f"quarantined {self.rows_quarantined}{reasons}{retired}{erased}"
        )


# --- value normalisation -----------------------------------------------------------------------


def normalise_email(raw: str | None) -> str:
    """The matching key across sources (`identity.normalise_email`). Raises Rejected if not an
    address."""
    try:
        return identity.normalise_email(raw)
    except identity.NotAnAddress:
        raise Rejected("bad_email", "email is not a valid address") from None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_24 = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}")


@lru_cache(maxsize=65_536)
def _ipv6_prefix(raw: str, bits: int) -> str | None:
    """An IPv6 address's network through the C library (a tenth of `ipaddress`'s time), or None
    to let `ipaddress` decide: text the C parser refuses (it may take a zone id `ipaddress`
    takes) and networks it would write with an embedded IPv4 part, which `ipaddress` writes in
    hex. Both ways agree on everything else (a Hypothesis test holds them to it)."""
    try:
        packed = socket.inet_pton(socket.AF_INET6, raw)
    except (OSError, ValueError):
        return None
    kept = int.from_bytes(packed, "big") >> (128 - bits) << (128 - bits)
    text = socket.inet_ntop(socket.AF_INET6, kept.to_bytes(16, "big"))
    return None if "." in text else f"{text}/{bits}"


def minimise_ip(raw: str, v4_bits: int = 24, v6_bits: int = 48) -> str:
    """Keep only the network prefix the policy allows (N-CAT technical data, minimised)."""
    if v4_bits == 24 and (match := _IPV4_24.fullmatch(raw)):
        return f"{match[1]}.0/24"  # the hot path of log ingest, without ipaddress objects
    if ":" in raw and (prefix := _ipv6_prefix(raw, v6_bits)) is not None:
        return prefix
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise Rejected("bad_ip", "client address is not an IP address") from None
    bits = v4_bits if address.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def parse_timestamp(
    raw: str | None, column: str, *, not_after: dt.datetime | None = None
) -> dt.datetime:
    """ISO-8601 (with or without offset) to naive UTC; rejects unparseable and future values."""
    if not raw or not raw.strip():
        raise Rejected("missing_field", f"{column} is empty")
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("bad_date", f"{column} is not a valid timestamp") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if not_after is not None and value >= not_after:
        raise Rejected("future_date", f"{column} is after the end of the data interval")
    return value


def parse_date(raw: str | None, column: str) -> dt.date:
    if not raw or not str(raw).strip():
        raise Rejected("missing_field", f"{column} is empty")
    try:
        return dt.date.fromisoformat(str(raw).strip()[:10])
    except ValueError:
        raise Rejected("bad_date", f"{column} is not a valid date") from None


def parse_int(raw: Any, column: str, *, required: bool = True) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise Rejected("missing_field", f"{column} is empty")
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        raise Rejected("bad_number", f"{column} is not a whole number") from None


def parse_money_minor(raw: Any, column: str) -> int:
    """Decimal amount (e.g. '1234.50') to integer minor units, exactly."""
    text = str(raw).strip() if raw is not None else ""
    whole, dot, frac = text.lstrip("-").partition(".")
    if not whole.isdigit() or (dot and not (frac.isdigit() and len(frac) <= 2)):
        raise Rejected("bad_number", f"{column} is not an amount")
    minor = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -minor if text.startswith("-") else minor


def country_code(raw: Any, column: str) -> str:
    text = str(raw or "").strip().upper()
    if len(text) != 2 or not text.isalpha():
        raise Rejected("bad_country", f"{column} is not an ISO 3166 alpha-2 code")
    return text


# --- writes ------------------------------------------------------------------------------------


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    newer_than: str | None = None,
    update: bool = True,
) -> int:
    """Insert or update `rows` by primary key, in chunks. With `newer_than`, an existing row is
    only overwritten by a row whose `newer_than` column is at least as recent."""
    if not rows:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    columns = list(rows[0])
    backend_of(conn).load_rows(
        conn,
        table,
        columns,
        rows,
        lambda stmt: _on_conflict(stmt, table, keys, columns, newer_than, update),
    )
    return len(rows)


def upsert_columns(conn: Connection, table: sa.Table, columns: pa.Table) -> int:
    """`upsert` of an Arrow table's rows (column names as `table`'s), written a column at a
    time."""
    if columns.num_rows == 0:
        return 0
    keys = [c.name for c in table.primary_key.columns]
    names = columns.column_names
    backend_of(conn).load_columns(
        conn, table, columns, lambda stmt: _on_conflict(stmt, table, keys, names, None, True)
    )
    return columns.num_rows


def _on_conflict(
    stmt: Any,
    table: sa.Table,
    keys: list[str],
    columns: list[str],
    newer_than: str | None,
    update: bool,
) -> Any:
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    values = {c: stmt.excluded[c] for c in columns if c not in keys}
    where = table.c[newer_than] <= stmt.excluded[newer_than] if newer_than else None
    return stmt.on_conflict_do_update(index_elements=keys, set_=values, where=where)


def resolve_subjects(
    conn: Connection, emails: Iterable[str], key: str, at: dt.datetime
) -> dict[str, int]:
    """Match normalised emails to subject ids, creating subjects as needed (set-based). A daily
    snapshot names mostly known people: they are looked up, and only the rest inserted (an insert
    that meets one created meanwhile does nothing, and the second look-up finds it)."""
    unique = sorted(set(emails))
    found = _subject_ids(conn, unique)
    missing = [e for e in unique if e not in found]
    if not missing:
        return found
    stmt = insert_for(conn, schema.subjects).on_conflict_do_nothing(index_elements=["email_norm"])
    for start in range(0, len(missing), UPSERT_CHUNK_ROWS):
        chunk = missing[start : start + UPSERT_CHUNK_ROWS]
        conn.execute(
            stmt,
            [
                {
                    "email_norm": e,
                    "subject_key": pseudonym(key, e),
                    "first_seen_at": at,
                    "updated_at": at,
                }
                for e in chunk
            ],
        )
    return found | _subject_ids(conn, missing)


def _subject_ids(conn: Connection, emails: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    s = schema.subjects
    for start in range(0, len(emails), UPSERT_CHUNK_ROWS):
        chunk = emails[start : start + UPSERT_CHUNK_ROWS]
        query = sa.select(s.c.email_norm, s.c.subject_id).where(s.c.email_norm.in_(chunk))
        found.update((email, subject_id) for email, subject_id in conn.execute(query))
    return found


@dataclass(frozen=True)
class QuarantinedRecord:
    record_ref: str
    code: str
    detail: str
    raw: str
    # The record's email and company key, where its source has them (personal_model).
    email: str | None = None
    company_id: int | None = None


def _subject_key_of(ctx: IngestContext, email: str | None) -> str | None:
    """The keyed pseudonym of a quarantined record's email, when the field holds an address."""
    if not email:
        return None
    try:
        return pseudonym(ctx.pseudonym_key, normalise_email(email))
    except Rejected:
        return None


def storable(text: str) -> str:
    """A lossless, storable form of a raw record: undecodable bytes and NUL as backslash escapes."""
    raw = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return raw.replace("\x00", "\\x00")


def quarantine(
    conn: Connection, ctx: IngestContext, result: BatchResult, records: Sequence[QuarantinedRecord]
) -> None:
    """Keep rejected records whole in the personal zone (counts go to ops via record_batch)."""
    stmt = insert_for(conn, schema.quarantine).on_conflict_do_nothing(
        index_elements=["source", "source_ref", "record_ref"]
    )
    rows = [
        {
            "source": result.source,
            "source_ref": result.source_ref,
            "record_ref": r.record_ref,
            "reason": f"{r.code}: {r.detail}",
            "raw_record": storable(r.raw),
            "run_id": ctx.run_id,
            "quarantined_at": ctx.window_end,
            "subject_key": _subject_key_of(ctx, r.email),
            "company_id": r.company_id,
        }
        for r in records
    ]
    for start in range(0, len(rows), UPSERT_CHUNK_ROWS):
        conn.execute(stmt, rows[start : start + UPSERT_CHUNK_ROWS])


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most `size` items (memory stays bounded by the chunk)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_records(
    result: BatchResult,
    records: Iterable[tuple[str, Any]],
    parse: Callable[[Any], dict[str, Any]],
    raw_text: Callable[[Any], str],
    prepared: Sequence[dict[str, Any] | None] | None = None,
) -> tuple[list[dict[str, Any]], list[QuarantinedRecord]]:
    """Split (record ref, raw record) pairs into parsed rows and quarantined records, counting.
    `prepared`, one per record: the row a vectorised parser already made of it, or None to
    `parse` it here."""
    rows: list[dict[str, Any]] = []
    bad: list[QuarantinedRecord] = []
    link = QUARANTINE_LINKS.get(result.source)
    ready = iter(prepared) if prepared is not None else itertools.repeat(None)
    for ref, raw in records:
        result.rows_read += 1
        row = next(ready)
        if row is not None:
            rows.append(row)
            continue
        try:
            rows.append(parse(raw))
        except Rejected as exc:
            result.rejected[exc.code] += 1
            email, company_id = link.read(raw) if link is not None else (None, None)
            bad.append(
                QuarantinedRecord(ref, exc.code, exc.detail, raw_text(raw), email, company_id)
            )
    return rows, bad


# When a source row last changed, per table: a retired row that changed after its retirement
# (a customer who came back) is new data and loads; an unchanged one stays retired.
CHANGED_AT: dict[str, Callable[[dict[str, Any]], dt.datetime | dt.date | None]] = {
    **{
        name: (lambda row: row["updated_at"])
        for name in ("companies", "portal_users", "contracts", "orders", "invoices", "payments")
    },
    "crm_contacts": lambda row: row["last_activity_at"] or row["created_at"],
    # A CRM company export row carries no change date: once retired, it stays retired.
    "crm_companies": lambda row: row["created_at"],
    "crm_activities": lambda row: row["occurred_at"],
}


# Columns retention nulls in place (profile data after account closure), per table.
NULLED_COLUMNS = {"portal_users": ("password_hash", "interests")}


def _retired_on(conn: Connection, name: str, keys: list[str]) -> dict[str, dt.date]:
    r = schema.retired_keys
    found: dict[str, dt.date] = {}
    for start in range(0, len(keys), UPSERT_CHUNK_ROWS):
        query = sa.select(r.c.key, r.c.retired_on).where(
            r.c.table_name == name, r.c.key.in_(keys[start : start + UPSERT_CHUNK_ROWS])
        )
        found.update((k, on) for k, on in conn.execute(query))
    return found


def _without_retired(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]], result: BatchResult
) -> list[dict[str, Any]]:
    """Drop rows retention retired (and blank columns it nulled) unless the source row changed
    after the retirement."""
    changed_at = CHANGED_AT.get(table.name)
    if changed_at is None or not rows:
        return rows
    (key,) = [c.name for c in table.primary_key.columns]
    keys = sorted({str(row[key]) for row in rows})

    def unchanged_since(row: dict[str, Any], on: dt.date | None) -> bool:
        if on is None:
            return False
        changed = changed_at(row)
        changed_day = changed.date() if isinstance(changed, dt.datetime) else changed
        return changed_day is None or changed_day <= on

    retired = _retired_on(conn, table.name, keys)
    kept = [row for row in rows if not unchanged_since(row, retired.get(str(row[key])))]
    result.rows_retired += len(rows) - len(kept)
    if table.name in NULLED_COLUMNS:
        nulled = _retired_on(conn, f"{table.name}#nulled", keys)
        for row in kept:
            if unchanged_since(row, nulled.get(str(row[key]))):
                row.update(dict.fromkeys(NULLED_COLUMNS[table.name]))
    return kept


def _without_erased(
    conn: Connection,
    ctx: IngestContext,
    table: sa.Table,
    rows: list[dict[str, Any]],
    result: BatchResult,
) -> list[dict[str, Any]]:
    """Drop rows of people erased on request, so a re-ingest of the same sources does not bring
    them back; note when a CRM export still held one (the CRM erasure is not done yet)."""
    keys = {row["_email_norm"]: pseudonym(ctx.pseudonym_key, row["_email_norm"]) for row in rows}
    t = schema.erasure_tombstones
    erased = _present(conn, t.c.subject_key, keys.values())
    if not erased:
        return rows
    kept = [row for row in rows if keys[row["_email_norm"]] not in erased]
    result.rows_erased += len(rows) - len(kept)
    if table.name == "crm_contacts":
        conn.execute(
            sa.update(t)
            .where(t.c.subject_key.in_(sorted(erased)))
            .values(last_seen_in_crm_at=ctx.window_end)
        )
        # The CRM still holds them, and may log new activities under this record: note its id,
        # since an activity row carries no address the tombstone could match.
        note_erased_crm_contacts(
            conn,
            ctx.pseudonym_key,
            {
                row["crm_contact_id"]: keys[row["_email_norm"]]
                for row in rows
                if keys[row["_email_norm"]] in erased
            },
            ctx.window_end,
        )
    return kept


def note_erased_crm_contacts(
    conn: Connection, key: str, subject_key_of: dict[int, str], at: dt.datetime
) -> None:
    """Remember erased people's CRM record ids (as keyed hashes), once each."""
    if not subject_key_of:
        return
    rows = [
        {
            "contact_key": crm_contact_key(key, contact_id),
            "subject_key": subject_key,
            "noted_at": at,
        }
        for contact_id, subject_key in sorted(subject_key_of.items())
    ]
    conn.execute(
        insert_for(conn, schema.erased_crm_contacts)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["contact_key"])
    )


def erased_crm_contact_ids(conn: Connection, key: str, contact_ids: Iterable[int]) -> set[int]:
    """Those of `contact_ids` that are an erased person's CRM record."""
    e = schema.erased_crm_contacts
    if conn.execute(sa.select(e.c.contact_key).limit(1)).first() is None:
        return set()  # the common case: nobody erased, no hashing of every id
    key_of = {contact_id: crm_contact_key(key, contact_id) for contact_id in set(contact_ids)}
    erased = _present(conn, e.c.contact_key, key_of.values())
    return {contact_id for contact_id, k in key_of.items() if k in erased}


def _present(conn: Connection, column: sa.Column, values: Iterable[str]) -> set[str]:
    """Those of `values` that `column` (a key) holds, looked up a chunk at a time."""
    found: set[str] = set()
    for chunk in in_chunks(sorted(set(values)), UPSERT_CHUNK_ROWS):
        found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return found


def _without_erased_contacts(
    conn: Connection, ctx: IngestContext, rows: list[dict[str, Any]], result: BatchResult
) -> list[dict[str, Any]]:
    """Drop CRM activities logged under an erased person's record."""
    erased = erased_crm_contact_ids(conn, ctx.pseudonym_key, (r["crm_contact_id"] for r in rows))
    if not erased:
        return rows
    kept = [row for row in rows if row["crm_contact_id"] not in erased]
    result.rows_erased += len(rows) - len(kept)
    return kept


def load_chunk(
    conn: Connection,
    ctx: IngestContext,
    result: BatchResult,
    table: sa.Table,
    parsed: tuple[list[dict[str, Any]], list[QuarantinedRecord]],
    *,
    newer_than: str | None = None,
    expired_before: tuple[str, dt.datetime] | None = None,
) -> None:
    """Write one chunk: drop rows retention already retired, match subjects (rows carrying
    `_email_norm`), upsert, quarantine."""
    rows, bad = parsed
    if expired_before is not None:
        column, cutoff = expired_before
        fresh = [r for r in rows if r[column] >= cutoff]
        result.rows_retired += len(rows) - len(fresh)
        rows = fresh
    rows = _without_retired(conn, table, rows, result)
    if rows and "_email_norm" in rows[0]:
        rows = _without_erased(conn, ctx, table, rows, result)
    if rows and table.name == "crm_activities":
        rows = _without_erased_contacts(conn, ctx, rows, result)
    if rows and "_email_norm" in rows[0]:
        subjects = resolve_subjects(
            conn, (r["_email_norm"] for r in rows), ctx.pseudonym_key, ctx.window_end
        )
        for row in rows:
            row["subject_id"] = subjects[row.pop("_email_norm")]
    key = [c.name for c in table.primary_key.columns]
    # An upsert statement must not touch one key twice: the last record of a chunk wins.
    unique = list({tuple(r[k] for k in key): r for r in rows}.values())
    result.rows_loaded += upsert(conn, table, unique, newer_than=newer_than)
    quarantine(conn, ctx, result, bad)


def record_batch(
    conn: Connection, ctx: IngestContext, result: BatchResult, sha256: str | None
) -> None:
    """Write the batch's counts to ops (idempotent per run, source and batch)."""
    for table in (schema.ingest_batches, schema.quarantine_summary):
        conn.execute(
            sa.delete(table).where(
                table.c.run_id == ctx.run_id,
                table.c.source == result.source,
                table.c.source_ref == result.source_ref,
            )
        )
    conn.execute(
        sa.insert(schema.ingest_batches).values(
            run_id=ctx.run_id,
            source=result.source,
            source_ref=result.source_ref,
            content_sha256=sha256,
            window_start=ctx.window_start,
            window_end=ctx.window_end,
            rows_read=result.rows_read,
            rows_loaded=result.rows_loaded,
            rows_quarantined=result.rows_quarantined,
            rows_retired=result.rows_retired,
            rows_erased=result.rows_erased,
            status=result.status,
            error=result.error,
            finished_at=ctx.window_end,
        )
    )
    for code, count in result.rejected.items():
        upsert_row(
            conn,
            schema.quarantine_summary,
            {
                "run_id": ctx.run_id,
                "source": result.source,
                "source_ref": result.source_ref,
                "reason_code": code,
                "row_count": count,
            },
        )
    audit(
        conn,
        run_id=ctx.run_id,
        action="ingest",
        table_name=f"{result.source}:{result.source_ref}",
        row_count=result.rows_loaded,
        at=ctx.window_end,
    )


def already_loaded(conn: Connection, source: str, source_ref: str, sha256: str) -> bool:
    b = schema.ingest_batches
    found = conn.execute(
        sa.select(sa.func.count())
        .select_from(b)
        .where(b.c.source == source, b.c.source_ref == source_ref, b.c.content_sha256 == sha256)
        .where(b.c.status == "loaded")
    ).scalar_one()
    return bool(found)


def raw_json(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str, ensure_ascii=False)
