"""CRM exports: contacts and companies (daily snapshots) and activities (daily deltas), as CSV.

The header of every file is checked against the data map first; a column the map does not know
refuses the whole file, naming the column. Row problems quarantine the row only.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import crm_batch
from ccg_pipeline.ingest.common import (
    BatchRefused,
    BatchResult,
    IngestContext,
    QuarantinedRecord,
    Rejected,
    UnknownColumnsError,
    chunked,
    country_code,
    erased_crm_contact_ids,
    load_chunk,
    normalise_email,
    parse_int,
    parse_records,
    parse_timestamp,
    raw_json,
)
from ccg_pipeline.ingest.files import eligible_files, has_bad_encoding, name_date, open_text
from ccg_pipeline.policy import load_data_map
from ccg_pipeline.scan.special import screen_clean, special_categories
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.backend import STREAM_CHUNK_ROWS, in_chunks

MAX_FIELD_CHARS = 10_000
csv.field_size_limit(1 << 24)  # read oversized fields so they can be quarantined by name

RowParser = Callable[[dict[str, str], IngestContext, dt.date], dict[str, Any]]


def _text(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return value or None


def _contact(row: dict[str, str], ctx: IngestContext, export_date: dt.date) -> dict[str, Any]:
    email = row.get("Email") or ""
    return {
        "crm_contact_id": parse_int(row.get("Record ID"), "Record ID"),
        "email": email.strip(),
        "_email_norm": normalise_email(email),
        "first_name": _text(row, "First Name"),
        "last_name": _text(row, "Last Name"),
        "phone": _text(row, "Phone Number"),
        "job_title": _text(row, "Job Title"),
        "company_name": _text(row, "Company Name"),
        "country": country_code(row.get("Country/Region"), "Country/Region"),
        "lifecycle_stage": _text(row, "Lifecycle Stage") or "unknown",
        "marketing_status": _text(row, "Marketing Contact Status") or "unknown",
        "created_at": parse_timestamp(
            row.get("Create Date"), "Create Date", not_after=ctx.window_end
        ),
        "last_activity_at": (
            parse_timestamp(
                row["Last Activity Date"], "Last Activity Date", not_after=ctx.window_end
            )
            if _text(row, "Last Activity Date")
            else None
        ),
        "export_date": export_date,
    }


def _company(row: dict[str, str], ctx: IngestContext, export_date: dt.date) -> dict[str, Any]:
    name = _text(row, "Company Name")
    if name is None:
        raise Rejected("missing_field", "Company Name is empty")
    return {
        "crm_company_id": parse_int(row.get("Record ID"), "Record ID"),
        "name": name,
        "domain": _text(row, "Company Domain Name"),
        "country": _text(row, "Country/Region"),
        "industry": _text(row, "Industry"),
        "employees": parse_int(
            row.get("Number of Employees"), "Number of Employees", required=False
        ),
        "annual_revenue_gbp": parse_int(
            row.get("Annual Revenue"), "Annual Revenue", required=False
        ),
        "created_at": parse_timestamp(
            row.get("Create Date"), "Create Date", not_after=ctx.window_end
        ),
        "export_date": export_date,
    }


def _activity(
    row: dict[str, str],
    ctx: IngestContext,
    export_date: dt.date,
    screened_clean: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    kind = _text(row, "Activity Type")
    if kind is None:
        raise Rejected("missing_field", "Activity Type is empty")
    # Never collected (N-NOSPECIAL): such a note is quarantined, not loaded; the evidence step
    # reports the count by category. `screened_clean`: the chunk's texts one RE2 pass cleared.
    found = special_categories(
        row.get("Subject"), screened_clean=screened_clean
    ) | special_categories(row.get("Body"), screened_clean=screened_clean)
    if found:
        raise Rejected("special_category", ", ".join(sorted(found)))
    return {
        "activity_id": parse_int(row.get("Activity ID"), "Activity ID"),
        "crm_contact_id": parse_int(row.get("Contact ID"), "Contact ID"),
        "activity_type": kind,
        "occurred_at": parse_timestamp(
            row.get("Activity Date"), "Activity Date", not_after=ctx.window_end
        ),
        "channel": _text(row, "Channel"),
        "subject_line": _text(row, "Subject"),
        "body": _text(row, "Body"),
        "export_date": export_date,
    }


EXPORTS: dict[str, tuple[str, sa.Table, RowParser]] = {
    "contacts": ("crm.contacts", schema.crm_contacts, _contact),
    "companies": ("crm.companies", schema.crm_companies, _company),
    "activities": ("crm.activities", schema.crm_activities, _activity),
}


def _check_row_shape(row: dict[str | None, Any]) -> None:
    if None in row:
        raise Rejected("wrong_column_count", "row has more fields than the header")
    values = list(row.values())
    if None in values:
        raise Rejected("wrong_column_count", "row has fewer fields than the header")
    # The whole row at once (the common, clean case), then field by field only to name the bad
    # one: a per-field check cost as much as parsing the row.
    if crm_batch.clean_fields(values, MAX_FIELD_CHARS):
        return
    for column, value in row.items():
        if len(value) > MAX_FIELD_CHARS:
            raise Rejected(
                "oversized_record", f"{column} is longer than {MAX_FIELD_CHARS} characters"
            )
        if has_bad_encoding(value):
            raise Rejected("bad_encoding", f"{column} is not valid UTF-8")


# Row by row is the default. In an A/B on 8 December 2026 (bulk-generated S sources: 610,000
# rows, SQLite, each load a fresh process and warehouse, three alternating pairs), the whole CRM
# lane took a median of 24.6 s column at a time and 18.3 s row by row; parsing alone, 8.4 s and
# 7.1 s for the activities export. The converters are Python functions called once per value,
# as the row parsers are, and transposing the chunk and assembling the rows cost more than
# they save. `crm_batch`, with its equivalence test, stays as the frame for converters that do
# the work in Arrow compute; it becomes the default only when it measures faster.
COLUMNAR = False


class _BrokenCsv:
    """Stands in for the rest of a file after a structural CSV error (e.g. an open quote)."""


def _records(reader: csv.DictReader) -> Iterator[tuple[str, Any]]:
    number = 1
    try:
        for number, raw in enumerate(reader, start=2):
            yield f"row {number}", raw
    except csv.Error:
        yield f"row {number + 1}+", _BrokenCsv()


def _rows(reader: Iterator[list[str]]) -> Iterator[tuple[str, Any]]:
    """As `_records`, with each row as the CSV reader's list of fields (blank lines skipped and
    uncounted, as `csv.DictReader` does)."""
    number = 1
    try:
        for row in reader:
            if row:
                number += 1
                yield f"row {number}", row
    except csv.Error:
        yield f"row {number + 1}+", _BrokenCsv()


def _link_activities(conn: Connection, ctx: IngestContext, result: BatchResult) -> None:
    """Give activities that arrived before their contact the contact's subject; delete those
    still unmatched whose record turned out to be an erased person's (noted by a contacts export
    read after they were loaded)."""
    a, c = schema.crm_activities, schema.crm_contacts
    contact_subject = sa.select(c.c.subject_id).where(c.c.crm_contact_id == a.c.crm_contact_id)
    conn.execute(
        sa.update(a)
        .where(a.c.subject_id.is_(None))
        .values(subject_id=contact_subject.scalar_subquery())
    )
    unmatched = conn.execute(
        sa.select(a.c.crm_contact_id).where(a.c.subject_id.is_(None)).distinct()
    ).scalars()
    erased = erased_crm_contact_ids(conn, ctx.pseudonym_key, unmatched)
    for ids in in_chunks(sorted(erased)):
        result.rows_erased += conn.execute(sa.delete(a).where(a.c.crm_contact_id.in_(ids))).rowcount


def _screened(chunk: list[tuple[str, Any]]) -> set[str]:
    rows = [raw for _, raw in chunk if isinstance(raw, dict)]
    return screen_clean([row.get(column) for row in rows for column in ("Subject", "Body")])


# (records, the rows a vectorised parser made of them or None, texts the special-category
# screen cleared) of one chunk.
ParsedChunk = tuple[list[tuple[str, Any]], list[dict[str, Any] | None] | None, AbstractSet[str]]


def _checked_header(
    reader: csv.DictReader, ctx: IngestContext, source: str, path: Path
) -> list[str]:
    """The header's column names, or the file refused by what is wrong with it."""
    header = [h.strip().lstrip("\ufeff") for h in (reader.fieldnames or [])]
    if not header:
        raise BatchRefused(f"{source} ({path.name}): file has no header row")
    if any(has_bad_encoding(h) for h in header):
        # UTF-16, Latin-1 or a binary file: its "column names" would be garbage (or data), so
        # the file is refused by what is wrong with it, quoting nothing.
        raise BatchRefused(
            f"{source} ({path.name}): the header row is not UTF-8 text "
            "(another encoding, or not a CSV file)"
        )
    unknown = ctx.data_map.check_columns(source, header)
    if unknown:
        raise UnknownColumnsError(source, path.name, unknown)
    reader.fieldnames = header
    return header


def _row_chunks(reader: csv.DictReader) -> Iterator[ParsedChunk]:
    """Every row as `csv.DictReader` gives it, for the row parser."""
    for chunk in chunked(_records(reader), STREAM_CHUNK_ROWS):
        yield chunk, None, _screened(chunk)


def _column_chunks(
    kind: str, reader: csv.DictReader, header: list[str], ctx: IngestContext, export_date: dt.date
) -> Iterator[ParsedChunk]:
    """The clean rows converted a column at a time (`crm_batch`); the rest as `csv.DictReader`
    gives them, for the row parser."""
    for chunk in chunked(_rows(reader.reader), STREAM_CHUNK_ROWS):
        prepared, screened = crm_batch.parse_chunk(
            kind,
            header,
            [raw for _, raw in chunk],
            not_after=ctx.window_end,
            export_date=export_date,
            max_chars=MAX_FIELD_CHARS,
            screened_clean=screen_clean,
        )
        records = [
            (
                ref,
                None if ready else crm_batch.as_dict(header, raw) if isinstance(raw, list) else raw,
            )
            for (ref, raw), ready in zip(chunk, prepared, strict=True)
        ]
        yield records, prepared, screened


def parsed_chunks(
    kind: str,
    fh: Iterable[str],
    ctx: IngestContext,
    path: Path,
    result: BatchResult,
    *,
    columnar: bool = COLUMNAR,
) -> Iterator[tuple[list[dict[str, Any]], list[QuarantinedRecord]]]:
    """The export's rows, a chunk at a time: (parsed rows, quarantined records), counted in
    `result`. `columnar`: the clean rows of each chunk are converted a column at a time
    (`crm_batch`), the rest row by row; False (the default, see `COLUMNAR`) parses every row by
    itself."""
    source, _, row_parser = EXPORTS[kind]
    export_date = name_date(path) or ctx.window_end.date()

    def raw_text(raw: Any) -> str:
        return "" if isinstance(raw, _BrokenCsv) else raw_json(raw)[:MAX_FIELD_CHARS]

    reader = csv.DictReader(fh, strict=False)
    header = _checked_header(reader, ctx, source, path)
    chunks = (
        _column_chunks(kind, reader, header, ctx, export_date)
        if columnar and crm_batch.fast_path_possible(kind, header)
        else _row_chunks(reader)
    )
    for records, prepared, screened in chunks:
        # Free text screened a chunk at a time; only candidates meet the Python scan.
        parse = partial(_activity, screened_clean=screened) if kind == "activities" else row_parser

        def parse_row(raw: Any, parse: RowParser = parse) -> dict[str, Any]:
            if isinstance(raw, _BrokenCsv):
                raise Rejected("malformed_csv", "the rest of the file is not valid CSV")
            _check_row_shape(raw)
            return parse(raw, ctx, export_date)

        yield parse_records(result, records, parse_row, raw_text, prepared)


def make_loader(
    kind: str, *, columnar: bool = COLUMNAR
) -> Callable[[Connection, IngestContext, Path, BatchResult], None]:
    """The export's loader (`columnar`: see `parsed_chunks`)."""
    table = EXPORTS[kind][1]

    def load(conn: Connection, ctx: IngestContext, path: Path, result: BatchResult) -> None:
        with open_text(path) as fh:
            for parsed in parsed_chunks(kind, fh, ctx, path, result, columnar=columnar):
                load_chunk(conn, ctx, result, table, parsed, newer_than="export_date")
        if kind == "activities":
            _link_activities(conn, ctx, result)

    return load


# The loaders the data map names for the three exports (`ingest.loader`).
load_contacts = make_loader("contacts")
load_companies = make_loader("companies")
load_activities = make_loader("activities")


def records_in_latest_contacts_export(settings: Settings, email_norm: str) -> set[int]:
    """The CRM record ids the newest contacts export holds for an address: an erasure instructs
    the CRM about these too, since the warehouse may no longer hold the record (retired by
    retention) while the CRM still does. Rows that do not parse are skipped."""
    feed = load_data_map().sources["crm.contacts"].ingest
    assert feed is not None  # the data map's contacts source is a file feed
    folder = settings.source_folder(feed.folder, feed.folder_variable)
    exports = eligible_files(folder, tuple(feed.files), dt.datetime.max.replace(tzinfo=dt.UTC))
    if not exports:
        return set()
    found: set[int] = set()
    with open_text(exports[-1]) as fh:
        try:
            for row in csv.DictReader(fh, strict=False):
                try:
                    if normalise_email(row.get("Email")) == email_norm:
                        found.add(int(str(row.get("Record ID")).strip()))
                except ValueError:
                    continue
        except csv.Error:
            pass  # the rest of a broken file: what was read so far still counts
    return found
