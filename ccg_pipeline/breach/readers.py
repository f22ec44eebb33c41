"""Reading a leaked file into an Arrow table of text columns, and finding its date column.

CSV/TSV, Parquet, JSON (an array, or JSON lines) and logs (combined/common log format, or any
text, one row per line); a text file may be gzipped, and must be UTF-8: one that is not is
refused with the offset of its first bad byte. Errors name the file and the problem, never the
data.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ccg_pipeline.breach.report import BreachInputError
from ccg_pipeline.scan import ScanInputError, read_file
from ccg_pipeline.scan.files import csv_delimiter, file_kind, open_binary, unique_names

LOG_COLUMNS = ("ip", "ident", "user", "time", "url", "status", "bytes", "referrer", "user_agent")
# Columns this module adds to a file's table: the text of lines that are not records, and a
# timestamp found in such a line. Neither is a column of the file.
LINE, LINE_TIMESTAMP = "<line>", "<timestamp>"
INTERNAL_LABELS = {LINE: "line text", LINE_TIMESTAMP: "timestamp in the line"}
# Combined/common log format, as RE2 for pyarrow: host ident user [time] "request" status bytes.
_CLF = (
    r"^(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<url>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)")?\s*$'
)
_ISO_TIMESTAMP = (
    r"(?P<timestamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)"
)
_DATE_LIKE = r"^\s*\d{4}-\d{2}-\d{2}"
CLF_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
# Preferred date columns for --since, best first (case-insensitive); then any other date column.
SINCE_PREFERENCE = (
    "updated_at", "occurred_at", "ts", "time", "timestamp", "requested_at", "activity date",
    "last activity date", "paid_at", "ordered_at", "issued_on", "last_login_at", "create date",
    "created_at", LINE_TIMESTAMP,
)  # fmt: skip
DATE_COLUMN_SHARE = 0.9  # of a column's non-empty cells that must parse as dates
DECODE_CHUNK_BYTES = 1 << 20


def _check_utf8(path: Path) -> int:
    """Decode the file as a stream; refuse it, naming the offset, if it is not UTF-8. Returns
    its size in characters (0: empty)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = chars = 0
    try:
        with open_binary(path) as handle:
            while chunk := handle.read(DECODE_CHUNK_BYTES):
                try:
                    chars += len(decoder.decode(chunk))
                except UnicodeDecodeError as exc:
                    raise BreachInputError(
                        f"{path}: unreadable encoding: not UTF-8 (first bad byte at offset "
                        f"{offset + exc.start}); convert it to UTF-8 and run again"
                    ) from None
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BreachInputError(
            f"{path}: unreadable encoding: not UTF-8 (the file ends inside a character)"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise BreachInputError(f"{path}: cannot be read ({type(exc).__name__})") from None
    return chars


def _read_text(path: Path) -> str:
    _check_utf8(path)
    with open_binary(path) as handle:
        return codecs.decode(handle.read(), "utf-8-sig")


def _strings(table: pa.Table) -> pa.Table:
    """Every column as text (Parquet columns are typed); binary and nested columns dropped."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns[name] = column
            continue
        try:
            columns[name] = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return pa.table(columns)


def _json_table(path: Path, text: str, notes: list[str]) -> pa.Table:
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BreachInputError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        items = document if isinstance(document, list) else [document]
    else:
        items, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                items.append({LINE: line})
                bad += 1
        if bad:
            notes.append(f"{bad:,} line(s) are not JSON; they were scanned as plain text")
    records = []
    for item in items:
        if not isinstance(item, dict):
            item = {LINE: json.dumps(item)}
        records.append(
            {
                str(k): None if v is None else v if isinstance(v, str) else json.dumps(v)
                for k, v in item.items()
            }
        )
    names = list(dict.fromkeys(k for r in records for k in r))
    return pa.table({n: pa.array([r.get(n) for r in records], type=pa.string()) for n in names})


def _log_table(text: str, notes: list[str]) -> pa.Table:
    """One row per line; combined-format lines split into the data map's log columns."""
    lines = pa.array([line for line in text.splitlines() if line.strip()], type=pa.string())
    parsed = pc.extract_regex(lines, _CLF)
    matched = pc.sum(parsed.is_valid()).as_py() or 0
    if len(lines) and matched >= len(lines) / 2:
        columns: dict[str, pa.Array] = {}
        for name in LOG_COLUMNS:
            values = pc.if_else(parsed.is_valid(), pc.struct_field(parsed, name), None)
            empty = pc.or_(pc.equal(values, "-"), pc.equal(values, ""))
            columns[name] = pc.if_else(empty, None, values)
        # Lines that are not in the format are kept whole, for the detectors.
        columns[LINE] = pc.if_else(parsed.is_valid(), None, lines)
        notes.append(f"{matched:,} of {len(lines):,} line(s) are in combined/common log format")
        return pa.table(columns)
    found = pc.extract_regex(lines, _ISO_TIMESTAMP)
    stamp = pc.if_else(found.is_valid(), pc.struct_field(found, "timestamp"), None)
    return pa.table({LINE: lines, LINE_TIMESTAMP: stamp})


_REPEAT_SUFFIX = re.compile(r" #\d+$")


def _tolerant_csv(path: Path, notes: list[str]) -> pa.Table:
    """CSV read row by row: short rows are padded, extra fields kept as one text column."""
    delimiter = csv_delimiter(path)
    handle = io.StringIO(_read_text(path), newline="")
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = next(reader, [])
        width = len(header)
        columns: list[list[str | None]] = [[] for _ in range(width + 1)]
        ragged = 0
        for row in reader:
            if not row:
                continue
            ragged += len(row) != width
            for i in range(width):
                columns[i].append(row[i] if i < len(row) and row[i] != "" else None)
            columns[width].append(delimiter.join(row[width:]) if len(row) > width else None)
    except csv.Error:
        raise BreachInputError(
            f"{path}: cannot be parsed as CSV (at line {reader.line_num})"
        ) from None
    if ragged:
        notes.append(
            f"{ragged:,} row(s) do not have as many fields as the header; fields past the "
            "header's were scanned as text"
        )
    names = [*unique_names(header), LINE]
    return pa.table({n: pa.array(v, type=pa.string()) for n, v in zip(names, columns, strict=True)})


def _read_leak(path: Path, notes: list[str]) -> tuple[pa.Table, str]:
    if not path.exists():
        raise BreachInputError(f"{path}: no such file")
    if not path.is_file():
        raise BreachInputError(f"{path}: not a file")
    kind = file_kind(path)
    if kind == "parquet":
        try:
            return _strings(read_file(path)), kind
        except ScanInputError as exc:
            raise BreachInputError(str(exc)) from None
    if kind == "csv":
        # The encoding is checked first so that it, not a parser error, is named.
        if _check_utf8(path) == 0:
            return pa.table({}), kind
        try:
            table = read_file(path)
        except ScanInputError:
            # Arrow refuses a file with ragged rows; a leaked export may well have some.
            return _tolerant_csv(path, notes), kind
        return table.rename_columns(unique_names(table.column_names)), kind
    text = _read_text(path)
    if kind == "json":
        return _json_table(path, text, notes), kind
    return _log_table(text, notes), kind


def _non_empty(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.and_(pc.is_valid(column), pc.greater(pc.utf8_length(trimmed), 0))


def _parse_dates(column: pa.ChunkedArray | pa.Array, clf: bool):
    import pandas as pd

    values = pd.Series(column.to_pylist(), dtype="object")
    if clf:  # a log's time, 17/May/2015:10:05:03 +0000
        parsed = pd.to_datetime(values, format=CLF_TIME_FORMAT, utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    return parsed.dt.tz_localize(None)


def _date_column(table: pa.Table, clf_column: str | None):
    """(name, parsed dates) of the column `--since` filters on: the preferred column of those
    whose non-empty cells nearly all parse as dates, else the first; None when there is none."""
    candidates = []
    for name in table.column_names:
        column = table.column(name)
        filled = column.filter(_non_empty(column))
        if len(filled) == 0:
            continue
        clf = name == clf_column
        if not clf:
            like = pc.sum(pc.match_substring_regex(filled, _DATE_LIKE)).as_py() or 0
            if like < DATE_COLUMN_SHARE * len(filled):
                continue
        parsed = _parse_dates(column, clf)
        if parsed.notna().sum() >= DATE_COLUMN_SHARE * len(filled):
            candidates.append((name, parsed))
    if not candidates:
        return None
    rank = {n: i for i, n in enumerate(SINCE_PREFERENCE)}
    return min(
        candidates,
        key=lambda c: (
            rank.get(c[0].strip().casefold(), len(rank)),
            table.column_names.index(c[0]),
        ),
    )
