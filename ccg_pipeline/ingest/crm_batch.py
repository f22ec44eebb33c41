"""CRM export rows a chunk at a time, a column at a time.

The rows the CSV reader gave whole (as many fields as the header) are converted column by column
with small converters that accept only the plain form of a value: digits for an id, `YYYY-MM-DD
HH:MM:SS` for a time, two letters for a country. A value in any other form returns `SLOW`, and
its row goes to the export's own row parser (`crm._contact`, `crm._company`, `crm._activity`),
which gives the same row or the reason it is rejected. So the rows loaded and the rows
quarantined, with their reasons, are the row parser's; only the clean majority skips its
per-row overhead (`tests/unit/test_crm_batch.py` holds the two ways equal).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ccg_pipeline import identity
from ccg_pipeline.ingest.common import SLOW, Rejected, country_code, parse_timestamp
from ccg_pipeline.ingest.files import has_bad_encoding
from ccg_pipeline.scan.special import special_categories

_DIGITS = re.compile(r"[0-9]{1,18}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

Converter = Callable[[str], Any]


def _int(value: str) -> Any:
    return int(value) if _DIGITS.fullmatch(value) else SLOW


def _optional_int(value: str) -> Any:
    return None if not value.strip() else _int(value)


def _text(value: str) -> str | None:
    return value.strip() or None


def _required_text(value: str) -> Any:
    return value.strip() or SLOW


def _text_or_unknown(value: str) -> str:
    return value.strip() or "unknown"


def _stripped(value: str) -> str:
    return value.strip()


def _country(value: str) -> Any:
    try:
        return country_code(value, "")
    except Rejected:
        return SLOW


def _email_key(value: str) -> Any:
    try:
        return identity.normalise_email(value)
    except identity.NotAnAddress:
        return SLOW


def _timestamps(not_after: dt.datetime) -> tuple[Converter, Converter]:
    """(required, optional) converters of naive `YYYY-MM-DD HH:MM:SS` times before `not_after`."""

    def required(value: str) -> Any:
        # The row parser's own rule (a real day and time, before the window's end), on the one
        # form it is given; a rejection leaves the row to it, to name the reason.
        if not _TIMESTAMP.fullmatch(value):
            return SLOW
        try:
            return parse_timestamp(value, "", not_after=not_after)
        except Rejected:
            return SLOW

    def optional(value: str) -> Any:
        return None if not value.strip() else required(value)

    return required, optional


@dataclass(frozen=True)
class Field:
    """One output column: the CSV column it comes from, and how (`"time"` and `"optional
    time"` stand for the window's converters)."""

    name: str
    column: str
    convert: Converter | str


# In the row parsers' own key order (the rows must be the same dicts).
FIELDS: dict[str, tuple[Field, ...]] = {
    "contacts": (
        Field("crm_contact_id", "Record ID", _int),
        Field("email", "Email", _stripped),
        Field("_email_norm", "Email", _email_key),
        Field("first_name", "First Name", _text),
        Field("last_name", "Last Name", _text),
        Field("phone", "Phone Number", _text),
        Field("job_title", "Job Title", _text),
        Field("company_name", "Company Name", _text),
        Field("country", "Country/Region", _country),
        Field("lifecycle_stage", "Lifecycle Stage", _text_or_unknown),
        Field("marketing_status", "Marketing Contact Status", _text_or_unknown),
        Field("created_at", "Create Date", "time"),
        Field("last_activity_at", "Last Activity Date", "optional time"),
    ),
    "companies": (
        Field("crm_company_id", "Record ID", _int),
        Field("name", "Company Name", _required_text),
        Field("domain", "Company Domain Name", _text),
        Field("country", "Country/Region", _text),
        Field("industry", "Industry", _text),
        Field("employees", "Number of Employees", _optional_int),
        Field("annual_revenue_gbp", "Annual Revenue", _optional_int),
        Field("created_at", "Create Date", "time"),
    ),
    "activities": (
        Field("activity_id", "Activity ID", _int),
        Field("crm_contact_id", "Contact ID", _int),
        Field("activity_type", "Activity Type", _required_text),
        Field("occurred_at", "Activity Date", "time"),
        Field("channel", "Channel", _text),
        Field("subject_line", "Subject", _text),
        Field("body", "Body", _text),
    ),
}
# Free-text columns whose every text must be cleared of special categories (activities).
SCREENED_COLUMNS = {"activities": ("Subject", "Body")}


def fast_path_possible(kind: str, header: Sequence[str]) -> bool:
    """Positions stand for names only with a header of distinct names that has every column
    the export's fields read (else `row.get` in the row parser sees what positions cannot)."""
    return len(set(header)) == len(header) and {f.column for f in FIELDS[kind]} <= set(header)


def clean_fields(fields: Iterable[str], max_chars: int) -> bool:
    """No field longer than `max_chars` and no undecodable byte or NUL in any (what
    `crm._check_row_shape` refuses, there field by field to name the bad one)."""
    fields = list(fields)
    return max(map(len, fields), default=0) <= max_chars and not has_bad_encoding("".join(fields))


def _clean_shape(rows: list[list[str]], max_chars: int) -> list[bool]:
    """`clean_fields` per row, judged for the whole chunk at once when it is clean."""
    if clean_fields(chain.from_iterable(rows), max_chars):
        return [True] * len(rows)
    return [clean_fields(row, max_chars) for row in rows]


def parse_chunk(
    kind: str,
    header: Sequence[str],
    rows: Sequence[Any],
    *,
    not_after: dt.datetime,
    export_date: dt.date,
    max_chars: int,
    screened_clean: Callable[[list[str | None]], AbstractSet[str]],
) -> tuple[list[dict[str, Any] | None], AbstractSet[str]]:
    """The parsed row for each row of `rows` this path vouches for, else None (parse it row by
    row: a short or long row, a `_BrokenCsv`, a value in an unusual form, a text that mentions a
    special category); and the texts found to mention none, for the row parser of the rest."""
    width = len(header)
    whole = [i for i, row in enumerate(rows) if isinstance(row, list) and len(row) == width]
    candidates = [rows[i] for i in whole]
    shaped = _clean_shape(candidates, max_chars)
    whole = [i for i, ok in zip(whole, shaped, strict=True) if ok]
    candidates = [rows[i] for i in whole]
    parsed: list[dict[str, Any] | None] = [None] * len(rows)
    if not candidates:
        return parsed, frozenset()
    columns = dict(zip(header, zip(*candidates, strict=True), strict=True))
    required_time, optional_time = _timestamps(not_after)
    converters: dict[str, Converter] = {"time": required_time, "optional time": optional_time}
    slow: set[int] = set()
    values: list[list[Any]] = []
    for field in FIELDS[kind]:
        convert = converters[field.convert] if isinstance(field.convert, str) else field.convert
        converted = list(map(convert, columns[field.column]))
        slow.update(n for n, value in enumerate(converted) if value is SLOW)
        values.append(converted)
    screened: AbstractSet[str] = frozenset()
    texts = SCREENED_COLUMNS.get(kind, ())
    if texts:
        # Never collected (N-NOSPECIAL): only texts the screen cleared (or empty) pass here.
        found = [t for column in texts for t in columns[column]]
        screened = screened_clean(found)
        # What the ASCII-only screen could not clear (non-English notes), each distinct text once
        # through the row parser's own scan.
        screened = set(screened) | {
            t for t in set(found) - set(screened) if t and not special_categories(t)
        }
        for column in texts:
            slow.update(n for n, t in enumerate(columns[column]) if t and t not in screened)
    names = [field.name for field in FIELDS[kind]] + ["export_date"]
    for n, row_values in enumerate(zip(*values, strict=True)):
        if n not in slow:
            parsed[whole[n]] = dict(zip(names, (*row_values, export_date), strict=True))
    return parsed, screened


def as_dict(header: Sequence[str], row: list[str]) -> dict[str | None, Any]:
    """The row as `csv.DictReader` gives it (extra fields under None, missing ones None)."""
    record: dict[str | None, Any] = dict(zip(header, row, strict=False))
    if len(row) > len(header):
        record[None] = row[len(header) :]
    else:
        for name in header[len(row) :]:
            record[name] = None
    return record
