"""Web access logs (combined log format) and portal authentication logs (JSON lines).

Client IP addresses are cut to the network prefix the policy allows before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.anonymise.labels import browser_of, region_of_network, site_section
from ccg_pipeline.ingest.common import (
    BatchResult,
    IngestContext,
    Rejected,
    chunked,
    load_chunk,
    minimise_ip,
    parse_records,
    parse_timestamp,
    upsert_columns,
)
from ccg_pipeline.ingest.files import has_bad_encoding, line_blocks, lines
from ccg_pipeline.ingest.web_batch import WebChunk, parse_web_lines
from ccg_pipeline.retention.deadlines import end_of_day, expired_cutoff
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.backend import STREAM_CHUNK_ROWS
from ccg_pipeline.warehouse.rollups import roll_up_web_file

WEB_SOURCE = "logs.web_access"
AUTH_SOURCE = "logs.auth"
MAX_LINE_CHARS = 16_384
# The columns' limits (`schema.web_access`): a method or protocol over 16 characters, or a byte
# count past a signed 64-bit integer, is no HTTP request; refused per line, not a failed file.
MAX_WORD_CHARS = 16
MAX_BYTES_DIGITS = 18

# host ident user [time] "request" status bytes ["referrer" "user agent"]; quoted fields may
# contain backslash-escaped quotes.
_COMBINED = re.compile(
    r"^(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)")?\s*$'
)
# The same format without escaped quotes: six times faster, and it matches nearly every real line;
# a line it does not match gets the full pattern.
_COMBINED_PLAIN = re.compile(
    r"^(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>[^"\\]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>[^"\\]*)" "(?P<user_agent>[^"\\]*)")?\s*$'
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


def _check_line(line: str) -> None:
    if len(line) > MAX_LINE_CHARS:
        raise Rejected("oversized_record", f"line is longer than {MAX_LINE_CHARS} characters")
    if has_bad_encoding(line):
        raise Rejected("bad_encoding", "line holds NUL or undecodable bytes")


def parse_clf_time(raw: str) -> dt.datetime:
    """'17/May/2015:10:05:03 +0000' to naive UTC, without strptime (the hot path of log ingest)."""
    try:
        if len(raw) != 26 or raw[2] != "/" or raw[6] != "/" or raw[11] != ":" or raw[20] != " ":
            raise ValueError
        local = dt.datetime(  # noqa: DTZ001 - the line's own wall clock; its offset follows
            int(raw[7:11]),
            _MONTHS[raw[3:6]],
            int(raw[0:2]),
            int(raw[12:14]),
            int(raw[15:17]),
            int(raw[18:20]),
        )
        sign = -1 if raw[21] == "-" else 1
        if raw[21] not in "+-":
            raise ValueError
        offset = dt.timedelta(hours=int(raw[22:24]), minutes=int(raw[24:26]))
    except (ValueError, KeyError):
        raise Rejected("bad_date", "time is not a valid log timestamp") from None
    return local - sign * offset


def parse_web_line(
    line: str, window_end: dt.datetime, v4_bits: int, v6_bits: int
) -> dict[str, Any]:
    _check_line(line)
    match = _COMBINED_PLAIN.match(line) or _COMBINED.match(line)
    if match is None:
        raise Rejected("malformed_line", "line is not in combined or common log format")
    requested_at = parse_clf_time(match["time"])
    if requested_at >= window_end:
        raise Rejected("future_date", "time is after the end of the data interval")
    parts = match["request"].split(" ")
    method, url, protocol = parts if len(parts) == 3 else (None, match["request"] or None, None)
    if len(method or "") > MAX_WORD_CHARS or len(protocol or "") > MAX_WORD_CHARS:
        raise Rejected("malformed_line", f"method or protocol is over {MAX_WORD_CHARS} characters")
    size = match["bytes"]
    if len(size) > MAX_BYTES_DIGITS:
        raise Rejected("bad_number", "bytes sent is out of range")
    ip_prefix = minimise_ip(match["ip"], v4_bits, v6_bits)
    return {
        "site_section": site_section(url),
        "browser_family": browser_of(match["user_agent"]),
        "visitor_region": region_of_network(ip_prefix),
        "requested_at": requested_at,
        "ip_prefix": ip_prefix,
        "method": method,
        "url": url,
        "protocol": protocol,
        "status": int(match["status"]),
        "bytes_sent": None if size == "-" else int(size),
        "referrer": match["referrer"],
        "user_agent": match["user_agent"],
    }


def _retention_start(ctx: IngestContext, rule_id: str) -> dt.datetime:
    """The earliest event time still inside `rule_id`'s retention period at the interval end."""
    as_of = (ctx.window_end - dt.timedelta(microseconds=1)).date()
    cutoff = expired_cutoff(as_of, ctx.notice.rule(rule_id))
    return end_of_day(cutoff)


def _load_lines(
    conn: Connection,
    ctx: IngestContext,
    path: Path,
    result: BatchResult,
    table: sa.Table,
    parse: Callable[[str], dict[str, Any]],
    *,
    time_column: str,
    rule_id: str,
    parse_chunk: Callable[[list[str]], WebChunk] | None = None,
) -> None:
    """Parse and load a file's lines a chunk at a time. With `parse_chunk` (a format's columnar
    parser), the lines it parses are written as columns and `parse` sees only the rest."""
    # Lines already past their retention period when they arrive are not loaded: they would be
    # deleted by the next sweep, and their roll-up counted twice after a replay.
    expired_before = (time_column, _retention_start(ctx, rule_id))

    def parse_line(numbered: tuple[int, str]) -> dict[str, Any]:
        number, line = numbered
        row = parse(line)
        row["source_file"] = path.name
        row["line_no"] = number
        return row

    if parse_chunk is None:
        records = ((f"line {n}", (n, line)) for n, line in lines(path) if line.strip())
        for chunk in chunked(records, STREAM_CHUNK_ROWS):
            parsed = parse_records(result, chunk, parse_line, lambda raw: raw[1][:MAX_LINE_CHARS])
            load_chunk(conn, ctx, result, table, parsed, expired_before=expired_before)
        return
    # Columnar: a block of lines goes to the parser as one list; only the lines it leaves (and
    # never a blank one) become per-line records.
    for first, block in line_blocks(path, STREAM_CHUNK_ROWS):
        parsed_columns = parse_chunk(block)
        _load_columns(conn, result, table, path, first, parsed_columns, expired_before)
        chunk = [
            (f"line {first + i}", (first + i, block[i]))
            for i in parsed_columns.left
            if block[i].strip()
        ]
        parsed = parse_records(result, chunk, parse_line, lambda raw: raw[1][:MAX_LINE_CHARS])
        load_chunk(conn, ctx, result, table, parsed, expired_before=expired_before)


def _load_columns(
    conn: Connection,
    result: BatchResult,
    table: sa.Table,
    path: Path,
    first_line: int,
    parsed: WebChunk,
    expired_before: tuple[str, dt.datetime],
) -> None:
    """Write the rows a columnar parser gave, as `load_chunk` writes parsed rows: those already
    past retention are counted and left out (nothing else in `load_chunk` applies to logs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not parsed.positions:
        return
    rows = parsed.rows.append_column(
        "source_file", pa.array([path.name] * parsed.rows.num_rows, pa.string())
    ).append_column("line_no", pc.add(pa.array(parsed.positions, pa.int64()), first_line))
    result.rows_read += rows.num_rows
    column, cutoff = expired_before
    fresh = rows.filter(pc.greater_equal(rows[column], pa.scalar(cutoff, rows[column].type)))
    result.rows_retired += rows.num_rows - fresh.num_rows
    result.rows_loaded += upsert_columns(conn, table, fresh)


def load_web_log(
    conn: Connection, ctx: IngestContext, path: Path, result: BatchResult, *, columnar: bool = True
) -> None:
    """A web access log's lines, most through the columnar parser. `columnar=False` reads and
    parses every line one by one (the previous implementation, which the equivalence test and
    the ingest benchmark compare with)."""
    s = ctx.notice.settings
    end = ctx.window_end
    parse_chunk = partial(
        parse_web_lines,
        window_end=end,
        v4_bits=s.ipv4_prefix_bits,
        v6_bits=s.ipv6_prefix_bits,
        max_chars=MAX_LINE_CHARS,
        max_word_chars=MAX_WORD_CHARS,
    )
    _load_lines(
        conn,
        ctx,
        path,
        result,
        schema.web_access,
        lambda line: parse_web_line(line, end, s.ipv4_prefix_bits, s.ipv6_prefix_bits),
        time_column="requested_at",
        rule_id="web_logs_raw",
        parse_chunk=parse_chunk if columnar else None,
    )
    roll_up_web_file(conn, path.name)


def parse_auth_line(
    line: str, known: frozenset[str], window_end: dt.datetime, v4_bits: int, v6_bits: int
) -> dict[str, Any]:
    _check_line(line)
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        raise Rejected("malformed_line", "line is not a JSON object") from None
    if not isinstance(event, dict):
        raise Rejected("malformed_line", "line is not a JSON object")
    if any(isinstance(v, str) and has_bad_encoding(v) for v in event.values()):
        raise Rejected("bad_encoding", "a field holds NUL or undecodable characters")
    unknown = sorted(set(event) - known)
    if unknown:
        raise Rejected("unknown_column", f"field(s) not in the data map: {', '.join(unknown)}")
    for required in ("ts", "event", "outcome"):
        if not event.get(required):
            raise Rejected("missing_field", f"{required} is missing")
    for text_field in ("ts", "event", "outcome", "username", "ip", "user_agent"):
        if event.get(text_field) is not None and not isinstance(event[text_field], str):
            raise Rejected("bad_value", f"{text_field} is not a string")
    user_id = event.get("user_id")
    if user_id is not None and not isinstance(user_id, int):
        raise Rejected("bad_number", "user_id is not a whole number")
    ip = event.get("ip")
    return {
        "occurred_at": parse_timestamp(str(event["ts"]), "ts", not_after=window_end),
        "event": str(event["event"])[:64],
        "outcome": str(event["outcome"])[:32],
        "username": event.get("username"),
        "user_id": user_id,
        "ip_prefix": minimise_ip(str(ip), v4_bits, v6_bits) if ip else None,
        "user_agent": event.get("user_agent"),
    }


def load_auth_log(conn: Connection, ctx: IngestContext, path: Path, result: BatchResult) -> None:
    s = ctx.notice.settings
    known = frozenset(ctx.data_map.sources[AUTH_SOURCE].columns)
    end = ctx.window_end
    _load_lines(
        conn,
        ctx,
        path,
        result,
        schema.auth_events,
        lambda line: parse_auth_line(line, known, end, s.ipv4_prefix_bits, s.ipv6_prefix_bits),
        time_column="occurred_at",
        rule_id="auth_logs_raw",
    )
    # Link events to subjects through the portal account, set-based.
    a, u = schema.auth_events, schema.portal_users
    conn.execute(
        sa.update(a)
        .where(a.c.subject_id.is_(None), a.c.user_id.is_not(None))
        .values(
            subject_id=sa.select(u.c.subject_id).where(u.c.user_id == a.c.user_id).scalar_subquery()
        )
    )
