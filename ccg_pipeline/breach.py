"""Breach impact (`ccg breach-impact`): who and what a leaked table or file affects, in counts.

A personal-data breach must be reported to the ICO within 72 hours where the law requires it
(N-SEC). The report needs, early: how many data subjects, which categories of personal data
(the notice's category ids, N-CAT), where the people are, and whether financial data is
involved. This module answers those questions for

- a warehouse table (`zone.table`): categories come from `TABLES`, a map of every column of
  every personal-zone table to a notice category (most by reference to the data-map column it is
  loaded from, so the two cannot drift). The affected subjects are the distinct subject ids the
  in-scope rows reach, directly or through companies, invoices, users and CRM contacts, computed
  by set-based SQL that runs on SQLite and PostgreSQL. Free-text columns (CRM notes, quarantined
  raw records, URLs) are also run through the identifier detectors, and the email addresses
  found there are matched to known subjects.
- a leaked file (CSV/TSV, Parquet, JSON lines or a log): headers are matched to the data map,
  every cell goes through the identifier detectors (`ccg_pipeline.scan`), and the email
  addresses, phone numbers and usernames found are matched against the personal zone,
  normalised as the known-identifier index does.

Everything returned, rendered, logged or raised is a count, a category id, a column name from
the warehouse or the data map, a detector name or a country code: never a value from the data.
A file's column whose header is not a data-map column is named by its position only, because a
file without a header row would otherwise have its first record printed as column names.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import io
import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.personal_model import (
    RECORD_SOURCE,
    TABLES,
    WEB_LOG_SOURCE,
    From,
    PersonalTable,
    category_of,
    personal_zone_columns,
    unmapped_columns,
)
from ccg_pipeline.policy import DataMap, load_data_map, load_notice
from ccg_pipeline.scan import ScanInputError, read_file, scan_arrow
from ccg_pipeline.scan.detectors import BY_NAME, find
from ccg_pipeline.validation.known_identifiers import normalise, phone_keys
from ccg_pipeline.warehouse import schema as s

COUNTS_ONLY = (
    "This report holds counts only: no value, name, email or other identifier from the data."
)
UNKNOWN_COUNTRY = "unknown"
FINANCIAL = "financial"
# Bound parameters per IN list, under SQLite's historical limit of 999 variables.
ID_CHUNK = 900
READ_CHUNK_ROWS = 50_000


class BreachInputError(ValueError):
    """The source cannot be assessed: unknown table, missing or unreadable file, bad date. The
    message names the problem and never quotes the data."""


# What each detector's finding says about the category of the data (N-CAT).
DETECTOR_CATEGORIES: dict[str, str] = {
    "email": "contact",
    "phone_uk": "contact",
    "phone_se": "contact",
    "phone_international": "contact",
    "uk_postcode": "contact",
    "ipv4": "technical",
    "ipv6": "technical",
    "iban": FINANCIAL,
    "uk_sort_code": FINANCIAL,
    "uk_account_number": FINANCIAL,
    "payment_card": FINANCIAL,
    "uk_vat": FINANCIAL,  # as the data map tags a VAT number
    "uk_nino": "identity",
    "se_personnummer": "identity",
    "eori": "identity",
    "companies_house": "identity",
    "se_orgnummer": "identity",
    "url_with_identifier": "usage",
}
PHONE_DETECTORS = ("phone_uk", "phone_se", "phone_international")
IP_DETECTORS = ("ipv4", "ipv6")


# --- the report -------------------------------------------------------------------------------


@dataclass
class BreachImpact:
    source: str
    kind: str  # "table" or "file"
    rows_total: int
    rows_in_scope: int
    since: dt.date | None
    since_column: str | None  # what --since filtered on, when it could be applied
    since_note: str
    subjects_identifiable: bool
    # Distinct known data subjects; None when not identifiable, or not matched (no warehouse).
    subjects_affected: int | None
    subjects_via: str
    addresses: int | None = None  # distinct network prefixes (table) or IP addresses (file)
    addresses_label: str = ""
    identifiers_matched: dict[str, int] = field(default_factory=dict)
    identifiers_unmatched: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    financial: bool = False
    financial_evidence: list[str] = field(default_factory=list)
    detector_cells: dict[str, int] = field(default_factory=dict)
    unmapped_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts_only: str = COUNTS_ONLY

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def subjects_line(self) -> str:
        if not self.subjects_identifiable:
            text = "subjects not identifiable"
            if self.addresses is not None:
                text += f"; {self.addresses:,} {self.addresses_label}"
            return text
        unmatched = sum(self.identifiers_unmatched.values())
        kinds = ", ".join(f"{n:,} {k}" for k, n in self.identifiers_unmatched.items() if n)
        if self.subjects_affected is None:
            text = f"identifiable, not matched to known subjects ({self.subjects_via}): "
            text += f"{unmatched:,} distinct identifier(s) ({kinds})"
        else:
            text = f"{self.subjects_affected:,} known data subject(s) ({self.subjects_via})"
            if unmatched:
                text += f"; plus {unmatched:,} identifier(s) that match nobody known ({kinds})"
        if self.addresses is not None:
            text += f"; {self.addresses:,} {self.addresses_label}"
        return text

    def render(self) -> str:
        lines = [
            f"Breach impact: {self.source} ({self.kind})",
            f"  {self.counts_only}",
            "",
            f"Rows:        {self.rows_in_scope:,} in scope of {self.rows_total:,}",
            f"Since:       {self.since_note}",
            f"Subjects:    {self.subjects_line()}",
        ]
        if self.identifiers_matched or self.identifiers_unmatched:
            kinds = sorted(set(self.identifiers_matched) | set(self.identifiers_unmatched))
            if self.subjects_affected is None:
                counts = [f"{k}: {self.identifiers_unmatched[k]:,} found" for k in kinds]
            else:
                counts = [
                    f"{k}: {self.identifiers_matched.get(k, 0):,} matched, "
                    f"{self.identifiers_unmatched.get(k, 0):,} unmatched"
                    for k in kinds
                ]
            lines.append(f"Identifiers: {'; '.join(counts)} (distinct)")
        countries = ", ".join(f"{c} {n:,}" for c, n in self.countries.items()) or "none"
        lines.append(f"Countries:   {countries} (subjects per country)")
        lines.append("Categories:")
        for category, evidence in self.categories.items():
            lines.append(f"  - {category}: {', '.join(evidence)}")
        if not self.categories:
            lines.append("  - none found")
        answer = "YES" if self.financial else "no"
        because = f" ({', '.join(self.financial_evidence)})" if self.financial_evidence else ""
        lines.append(f"Financial:   {answer}{because}")
        if self.detector_cells:
            cells = ", ".join(f"{d} {n:,}" for d, n in self.detector_cells.items())
            lines.append(f"Detectors:   cells with a finding: {cells}")
        if self.unmapped_columns:
            lines.append(
                f"Unmapped:    {len(self.unmapped_columns)} column(s) with no category: "
                f"{', '.join(self.unmapped_columns)} (scanned by the detectors only)"
            )
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


# --- evidence from text -----------------------------------------------------------------------


# A whole address, also written `(at)`/`[dot]`: the email detector's lazy domain part can stop
# early (`a@b.co` of `a@b.co.uk`), enough to flag a cell but not to match the address.
_AT = r"(?:\s?@\s?|\s?[(\[{]at[)\]}]\s?)"
_DOT = r"(?:\.|\s?[(\[{]dot[)\]}]\s?)"
_WHOLE_EMAIL = re.compile(rf"[\w.%+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
_OBFUSCATION = re.compile(r"\s?[(\[{](at|dot)[)\]}]\s?", re.IGNORECASE)


def email_keys(text: str) -> set[str]:
    """Addresses in `text`, normalised as the known-identifier index normalises them."""
    keys = set()
    for match in _WHOLE_EMAIL.findall(text):
        plain = _OBFUSCATION.sub(lambda w: "@" if w[1].lower() == "at" else ".", match)
        keys.add(normalise(plain))
    keys.discard("")
    return keys


@dataclass
class _TextEvidence:
    """What the detectors found in text cells, kept in memory only for matching."""

    cells: Counter[str] = field(default_factory=Counter)
    where: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)

    def add(self, table: pa.Table, label: Callable[[str], str] = str) -> None:
        findings = scan_arrow(table)
        flagged: dict[tuple[str, str], set[int]] = defaultdict(set)
        for finding in findings:
            flagged[finding.column, finding.detector].add(finding.row)
        for (column, detector), rows in flagged.items():
            self.cells[detector] += len(rows)
            self.where[detector].add(label(column))
            if detector == "email" or detector in PHONE_DETECTORS or detector in IP_DETECTORS:
                values = pc.take(table.column(column), pa.array(sorted(rows))).to_pylist()
                for value in values:
                    if detector == "email":
                        self.emails |= email_keys(value)
                        continue
                    for match in find(value, BY_NAME[detector]):
                        if detector in PHONE_DETECTORS:
                            self.phones |= phone_keys(match)
                        else:
                            self.ips.add(match.split("/", 1)[0].strip("[]").lower())

    def categories(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for detector in sorted(self.cells):
            where = ", ".join(sorted(self.where[detector]))
            found[DETECTOR_CATEGORIES.get(detector, "identity")].append(
                f"{detector} in {where} ({self.cells[detector]:,} cell(s))"
            )
        return found


@dataclass
class _Matched:
    ids: set[int]
    matched: dict[str, int]
    unmatched: dict[str, int]
    shared_phones: int  # phone numbers several known people have (counted for none of them)

    def note(self) -> list[str]:
        if not self.shared_phones:
            return []
        return [
            f"{self.shared_phones:,} phone number(s) belong to several known people (a "
            "switchboard, say): they add no subject to the count"
        ]


def _matches(
    conn: Connection, emails: set[str], phones: set[str], usernames: set[str] | None = None
) -> _Matched:
    """Known subject ids for the identifiers, and counts matched/unmatched per kind.

    Warehouse identifiers are streamed and normalised as the known-identifier index does
    (`normalise`, `phone_keys`); only those among the wanted keys are kept. A phone number
    identifies someone only when exactly one known person has it."""
    found: dict[str, dict[str, set[int]]] = {"email": {}, "phone": {}, "username": {}}
    wanted = {"email": emails, "phone": phones, "username": usernames or set()}
    queries: dict[str, list[sa.Select]] = {
        "email": [
            sa.select(s.subjects.c.email_norm, s.subjects.c.subject_id),
            sa.select(s.portal_users.c.email, s.portal_users.c.subject_id),
            sa.select(s.crm_contacts.c.email, s.crm_contacts.c.subject_id),
        ],
        "phone": [
            sa.select(s.portal_users.c.phone, s.portal_users.c.subject_id),
            sa.select(s.crm_contacts.c.phone, s.crm_contacts.c.subject_id),
        ],
        "username": [sa.select(s.portal_users.c.username, s.portal_users.c.subject_id)],
    }
    keys_of: dict[str, Callable[[str], Iterable[str]]] = {
        "email": lambda v: (normalise(v),),
        "phone": phone_keys,
        "username": lambda v: (v.strip().casefold(),),
    }
    for kind, selects in queries.items():
        if not wanted[kind]:
            continue
        for query in selects:
            result = conn.execution_options(stream_results=True).execute(query)
            for value, subject_id in result:
                if value is None:
                    continue
                for key in keys_of[kind](value):
                    if key in wanted[kind]:
                        found[kind].setdefault(key, set()).add(subject_id)
    ids: set[int] = set()
    for kind, per_key in found.items():
        for hits in per_key.values():
            if kind != "phone" or len(hits) == 1:
                ids |= hits
    return _Matched(
        ids=ids,
        matched={k: len(found[k]) for k in wanted if wanted[k]},
        unmatched={k: len(wanted[k]) - len(found[k]) for k in wanted if wanted[k]},
        shared_phones=sum(len(hits) > 1 for hits in found["phone"].values()),
    )


def _chunks(values: list[int], size: int = ID_CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def country_of_subject() -> tuple[sa.ColumnElement[str], sa.Table]:
    """Per subject: the country of a company they are a portal user of, else the country on
    their CRM contact record, else `unknown` (the smallest code when there are several)."""
    subj, pu, co, cc = s.subjects, s.portal_users, s.companies, s.crm_contacts
    company = (
        sa.select(sa.func.min(sa.func.upper(co.c.country)))
        .select_from(pu.join(co, co.c.company_id == pu.c.company_id))
        .where(pu.c.subject_id == subj.c.subject_id)
        .scalar_subquery()
    )
    contact = (
        sa.select(sa.func.min(sa.func.upper(sa.func.trim(cc.c.country))))
        .where(
            cc.c.subject_id == subj.c.subject_id, sa.func.length(sa.func.trim(cc.c.country)) == 2
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(company, contact, UNKNOWN_COUNTRY), subj


def _countries(conn: Connection, ids: set[int]) -> dict[str, int]:
    """Subjects per country code, by grouped SQL over chunks of the (distinct) subject ids."""
    expression, subj = country_of_subject()
    counts: Counter[str] = Counter()
    for chunk in _chunks(sorted(ids)):
        per = sa.select(expression.label("country")).where(subj.c.subject_id.in_(chunk)).subquery()
        query = sa.select(per.c.country, sa.func.count()).group_by(per.c.country)
        counts.update({country: n for country, n in conn.execute(query)})
    located = sum(counts.values())
    if located < len(ids):  # ids no longer in personal.subjects
        counts[UNKNOWN_COUNTRY] += len(ids) - located
    return dict(sorted(counts.items(), key=lambda item: (item[0] == UNKNOWN_COUNTRY, item[0])))


def _merge(into: dict[str, list[str]], more: Mapping[str, Iterable[str]]) -> None:
    for category, evidence in more.items():
        into.setdefault(category, [])
        into[category] += [e for e in evidence if e not in into[category]]


def _ordered(categories: dict[str, list[str]]) -> dict[str, list[str]]:
    order = [c.id for c in load_notice().categories]
    rank = {c: i for i, c in enumerate(order)}
    return {c: categories[c] for c in sorted(categories, key=lambda c: rank.get(c, len(order)))}


def _financial(categories: Mapping[str, list[str]]) -> tuple[bool, list[str]]:
    evidence = list(categories.get(FINANCIAL, []))
    return bool(evidence), evidence


# --- warehouse tables -------------------------------------------------------------------------


def _resolve_table(engine: Engine, qualified: str) -> tuple[str, PersonalTable, sa.Table, set[str]]:
    zone, dot, name = qualified.strip().partition(".")
    if not dot or not zone or not name:
        raise BreachInputError(
            f"{qualified!r} is neither an existing file nor a table named zone.table"
        )
    key = f"{zone}.{name}"
    inspector = sa.inspect(engine)
    try:
        exists = name in inspector.get_table_names(schema=zone)
    except sa.exc.SQLAlchemyError:
        exists = False
    if not exists:
        raise BreachInputError(f"unknown table {key!r}: the warehouse has no such table")
    spec = TABLES.get(key)
    if spec is None:
        if zone == s.PERSONAL:
            raise BreachInputError(
                f"{key} is not in the breach column map (ccg_pipeline/personal_model.py TABLES); "
                "give each of its columns a category before assessing it"
            )
        raise BreachInputError(
            f"{key} is not a personal-zone table: breach impact covers personal.* tables and "
            "leaked files; the staging, statistics and ops zones hold no raw identifiers"
        )
    live = {c["name"] for c in inspector.get_columns(name, schema=zone)}
    return key, spec, s.metadata.tables[key], live


def _since_clause(table: sa.Table, column: str, since: dt.date) -> sa.ColumnElement[bool]:
    col = table.c[column]
    if isinstance(col.type, sa.DateTime):
        return col >= dt.datetime.combine(since, dt.time())
    return col >= since


def assess_table(engine: Engine, qualified: str, since: dt.date | None = None) -> BreachImpact:
    """The breach impact of a warehouse table's rows (those written since `since`, if given)."""
    key, spec, table, live = _resolve_table(engine, qualified)
    data_map = load_data_map()
    notes: list[str] = []
    condition: sa.ColumnElement[bool] = sa.true()
    since_column, since_note = None, "not given: every row is in scope"
    if since is not None:
        if spec.time_column and spec.time_column in live:
            condition = _since_clause(table, spec.time_column, since)
            since_column = spec.time_column
            since_note = f"rows with {spec.time_column} on or after {since.isoformat()}"
        else:
            since_note = f"not applicable: {key} has no time column; every row is in scope"
    mapped = [c for c in spec.columns if c in live]
    unmapped = sorted(live - set(spec.columns))

    with engine.connect() as conn:
        rows_total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        # One pass: rows in scope, and how many of them hold a value in each mapped column.
        counts = conn.execute(
            sa.select(sa.func.count(), *(sa.func.count(table.c[c]) for c in mapped)).where(
                condition
            )
        ).one()
        rows_in_scope, filled = counts[0], dict(zip(mapped, counts[1:], strict=True))

        categories: dict[str, list[str]] = {}
        for column in mapped:
            category = category_of(spec.columns[column], data_map)
            if category and filled[column]:
                _merge(categories, {category: [column]})
        if filled.get("raw_record") and spec.columns.get("raw_record") == RECORD_SOURCE:
            _merge(categories, _record_source_categories(conn, table, condition, data_map, notes))

        ids: set[int] = set()
        if spec.subjects is not None:
            src = sa.select(table).where(condition).subquery("src")
            paths = spec.subjects(src)
            query = paths[0].distinct() if len(paths) == 1 else sa.union(*paths)
            ids = {i for i in conn.execute(query).scalars() if i is not None}

        text = _TextEvidence()
        for column in (c for c in spec.free_text if c in live and filled.get(c)):
            for chunk in _read_column(conn, table.c[column], condition):
                text.add(chunk)
        _merge(categories, text.categories())
        found = _matches(conn, text.emails, text.phones)
        text_ids, matched, unmatched = found.ids, found.matched, found.unmatched
        notes += found.note()
        further = text_ids - ids
        if further:
            notes.append(
                f"{len(further):,} further known subject(s) are named by email address "
                f"or phone number in {', '.join(c for c in spec.free_text if c in live)}"
            )
        ids |= text_ids

        addresses = None
        if spec.address_column and spec.address_column in live:
            addresses = conn.execute(
                sa.select(sa.func.count(sa.distinct(table.c[spec.address_column]))).where(condition)
            ).scalar_one()
        identifiable = spec.subjects is not None or bool(ids) or bool(sum(unmatched.values()))
        countries = _countries(conn, ids) if ids else {}

    if unmapped:
        notes.append(
            f"{len(unmapped)} column(s) of {key} are not in the breach column map: "
            "their category is unknown (map them in ccg_pipeline/breach.py)"
        )
    if spec.subjects is None and ids:
        via = "email addresses and phone numbers in free text"
    else:
        via = spec.reach + ("; and identifiers in free text" if further else "")
    financial, evidence = _financial(categories)
    return BreachImpact(
        source=key,
        kind="table",
        rows_total=rows_total,
        rows_in_scope=rows_in_scope,
        since=since,
        since_column=since_column,
        since_note=since_note,
        subjects_identifiable=identifiable,
        subjects_affected=len(ids) if identifiable else None,
        subjects_via=via,
        addresses=addresses,
        addresses_label="distinct address prefixes" if addresses is not None else "",
        identifiers_matched=matched,
        identifiers_unmatched=unmatched,
        countries=countries,
        categories=_ordered(categories),
        financial=financial,
        financial_evidence=evidence,
        detector_cells=dict(sorted(text.cells.items())),
        unmapped_columns=unmapped,
        notes=notes,
    )


def _record_source_categories(
    conn: Connection,
    table: sa.Table,
    condition: sa.ColumnElement[bool],
    data_map: DataMap,
    notes: list[str],
) -> dict[str, list[str]]:
    """Categories of quarantined raw records: every category of each record's source."""
    query = (
        sa.select(table.c.source)
        .where(condition, table.c.raw_record.is_not(None))
        .distinct()
        .order_by(table.c.source)
    )
    found: dict[str, list[str]] = {}
    unknown = 0
    for (source,) in conn.execute(query):
        spec = data_map.sources.get(source)
        if spec is None:
            unknown += 1
            continue
        for tag in spec.columns.values():
            if tag.category:
                _merge(found, {tag.category: [f"raw_record ({source})"]})
    if unknown:
        notes.append(f"raw records from {unknown} source(s) the data map does not know")
    return found


def _read_column(
    conn: Connection, column: sa.Column, condition: sa.ColumnElement[bool]
) -> Iterator[pa.Table]:
    result = conn.execution_options(stream_results=True).execute(
        sa.select(column).where(condition, column.is_not(None))
    )
    for rows in result.partitions(READ_CHUNK_ROWS):
        values = [None if r[0] is None else str(r[0]) for r in rows]
        yield pa.table({column.name: pa.array(values, type=pa.string())})


# --- leaked files -----------------------------------------------------------------------------

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


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _file_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "json"
    return "log"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


def _check_utf8(path: Path) -> int:
    """Decode the file as a stream; refuse it, naming the offset, if it is not UTF-8. Returns
    its size in characters (0: empty)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = chars = 0
    try:
        with _open_binary(path) as handle:
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
    with _open_binary(path) as handle:
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


def _unique(names: list[str]) -> list[str]:
    """Header names made unique (`Email`, `Email #2`), so every column can be addressed."""
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return unique


def _tolerant_csv(path: Path, notes: list[str]) -> pa.Table:
    """CSV read row by row: short rows are padded, extra fields kept as one text column."""
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
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
    names = [*_unique(header), LINE]
    return pa.table({n: pa.array(v, type=pa.string()) for n, v in zip(names, columns, strict=True)})


def _read_leak(path: Path, notes: list[str]) -> tuple[pa.Table, str]:
    if not path.exists():
        raise BreachInputError(f"{path}: no such file")
    if not path.is_file():
        raise BreachInputError(f"{path}: not a file")
    kind = _file_kind(path)
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
        return table.rename_columns(_unique(table.column_names)), kind
    text = _read_text(path)
    if kind == "json":
        return _json_table(path, text, notes), kind
    return _log_table(text, notes), kind


def _header_tags(
    names: list[str], data_map: DataMap
) -> tuple[dict[str, tuple[str, set[str]]], str | None]:
    """Headers that are data-map columns: header -> (data-map column, categories).

    The data-map source sharing most headers with the file decides ambiguous names (`Record ID`,
    `created_at`); a header only other sources know takes every category they give it."""
    index: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
    for source, spec in data_map.sources.items():
        for column, tag in spec.columns.items():
            index[column.strip().casefold()].append((source, column, tag.category))
    votes = Counter(
        source
        for name in names
        for source, _c, _cat in index.get(_REPEAT_SUFFIX.sub("", name).strip().casefold(), [])
    )
    best = votes.most_common(1)[0][0] if votes else None
    tags = {}
    for name in names:
        candidates = index.get(_REPEAT_SUFFIX.sub("", name).strip().casefold())
        if not candidates:
            continue
        chosen = [c for c in candidates if c[0] == best] or candidates
        tags[name] = (chosen[0][1], {cat for _s, _c, cat in chosen if cat})
    return tags, best


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


def assess_file(
    path: Path, engine: Engine | None = None, since: dt.date | None = None
) -> BreachImpact:
    """The breach impact of a leaked file. Without an engine, nothing is matched to subjects."""
    path = Path(path)
    notes: list[str] = []
    table, kind = _read_leak(path, notes)
    data_map = load_data_map()
    names = table.column_names
    is_log = kind == "log" and "ip" in names
    if is_log:
        web = data_map.sources[WEB_LOG_SOURCE].columns
        tags = {n: (n, {c for c in (web[n].category,) if c is not None}) for n in LOG_COLUMNS}
        best: str | None = WEB_LOG_SOURCE
    else:
        tags, best = _header_tags([n for n in names if n not in INTERNAL_LABELS], data_map)
    # A header that is not a data-map column may be a value (no header row): position only.
    labels = {
        n: INTERNAL_LABELS.get(n) or (n if n in tags else f"column {i + 1}")
        for i, n in enumerate(names)
    }

    rows_total = table.num_rows
    since_column, since_note = None, "not given: every row is in scope"
    if since is not None:
        chosen = _date_column(table, "time" if is_log else None)
        if chosen is None:
            since_note = (
                "not applicable: the file has no parsable date column; every row is in scope"
            )
        else:
            name, parsed = chosen
            keep = (parsed >= dt.datetime.combine(since, dt.time())) | parsed.isna()
            table = table.filter(pa.array(keep.to_numpy(dtype=bool)))
            since_column = labels[name]
            since_note = f"rows with {since_column} on or after {since.isoformat()}"
            undated = int(parsed.isna().sum())
            if undated:
                since_note += f"; {undated:,} row(s) without a parsable date kept in scope"

    categories: dict[str, list[str]] = {}
    usernames: set[str] = set()
    for name, (column_name, cats) in tags.items():
        column = table.column(name)
        if not pc.any(_non_empty(column)).as_py():
            continue  # an empty column discloses nothing
        for category in sorted(cats):
            _merge(categories, {category: [labels[name]]})
        if column_name in ("username", "user"):
            usernames |= {v.strip().casefold() for v in column.drop_null().to_pylist()}
    usernames.discard("")

    text = _TextEvidence()
    for start in range(0, table.num_rows, READ_CHUNK_ROWS):
        text.add(table.slice(start, READ_CHUNK_ROWS), labels.__getitem__)
    if kind == "csv" and names:
        header = pa.table({f"h{i}": pa.array([n], type=pa.string()) for i, n in enumerate(names)})
        before = sum(text.cells.values())
        text.add(header, lambda _name: "header row")
        if sum(text.cells.values()) > before:
            notes.append(
                "the header row holds identifiers: the file may have no header row, so its "
                "first line was scanned as data too"
            )
    _merge(categories, text.categories())

    ids: set[int] | None = None  # None: not matched
    matched: dict[str, int] = {}
    unmatched = _kind_counts(text.emails, text.phones, usernames)
    countries: dict[str, int] = {}
    via = "email addresses, phone numbers and usernames matched to the personal zone"
    if unmatched and engine is None:
        via = "no warehouse given"
    elif unmatched and engine is not None:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table("subjects", schema=s.PERSONAL):
                found = _matches(conn, text.emails, text.phones, usernames)
                ids, matched, unmatched = found.ids, found.matched, found.unmatched
                notes += found.note()
                countries = _countries(conn, ids) if ids else {}
            else:
                via = "the warehouse has no personal zone"
    identifiable = bool(unmatched or matched)
    addresses = _distinct_addresses(table, tags, text.ips)
    if best:
        notes.append(f"headers read as the data map's {best} columns where they match")
    financial, evidence = _financial(categories)
    return BreachImpact(
        source=str(path),
        kind="file",
        rows_total=rows_total,
        rows_in_scope=table.num_rows,
        since=since,
        since_column=since_column,
        since_note=since_note,
        subjects_identifiable=identifiable,
        subjects_affected=None if ids is None else len(ids),
        subjects_via=via,
        addresses=addresses,
        addresses_label="distinct IP addresses" if addresses is not None else "",
        identifiers_matched=matched,
        identifiers_unmatched=unmatched,
        countries=countries,
        categories=_ordered(categories),
        financial=financial,
        financial_evidence=evidence,
        detector_cells=dict(sorted(text.cells.items())),
        unmapped_columns=[labels[n] for n in names if n not in tags and n not in INTERNAL_LABELS],
        notes=notes,
    )


def _distinct_addresses(
    table: pa.Table, tags: Mapping[str, tuple[str, set[str]]], found: set[str]
) -> int | None:
    """Distinct addresses in the file's address column(s) (`ip`), else those the detectors
    found anywhere; None when there are none."""
    columns = [n for n, (column, _c) in tags.items() if column == "ip"]
    if columns:
        values = {v for n in columns for v in table.column(n).drop_null().to_pylist() if v}
        return len(values) or None
    return len(found) or None


def _kind_counts(emails: set[str], phones: set[str], usernames: set[str]) -> dict[str, int]:
    counts = {"email": len(emails), "phone": len(phones), "username": len(usernames)}
    return {k: n for k, n in counts.items() if n}


# --- entry point ------------------------------------------------------------------------------

FILE_SUFFIXES = (
    ".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".log", ".txt", ".gz",
)  # fmt: skip


def looks_like_file(source: str) -> bool:
    path = Path(source)
    return (
        path.exists() or "/" in source or "\\" in source or source.lower().endswith(FILE_SUFFIXES)
    )


def parse_since(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise BreachInputError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None


def assess(source: str, engine: Engine | None, since: dt.date | None = None) -> BreachImpact:
    """A file path (existing, or named like one) or a warehouse table `zone.table`."""
    if looks_like_file(source):
        return assess_file(Path(source), engine, since)
    if engine is None:
        raise BreachInputError(f"{source!r} names a table, but no warehouse was given")
    return assess_table(engine, source, since)


__all__ = [
    "COUNTS_ONLY",
    "DETECTOR_CATEGORIES",
    "TABLES",
    "BreachImpact",
    "BreachInputError",
    "From",
    "assess",
    "assess_file",
    "assess_table",
    "email_keys",
    "parse_since",
    "personal_zone_columns",
    "unmapped_columns",
]
