"""The breach impact of a leaked file (CSV/TSV, Parquet, JSON lines or a log).

Headers are matched to the data map, every cell goes through the identifier detectors
(`ccg_pipeline.scan`), and the email addresses, phone numbers and usernames found are matched
against the personal zone, normalised as the known-identifier index does.

A file's column whose header is not a data-map column is named by its position only, because a
file without a header row would otherwise have its first record printed as column names.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.breach.matching import _countries, _matches, _TextEvidence
from ccg_pipeline.breach.readers import (
    _REPEAT_SUFFIX,
    INTERNAL_LABELS,
    LOG_COLUMNS,
    _date_column,
    _non_empty,
    _read_leak,
)
from ccg_pipeline.breach.report import (
    READ_CHUNK_ROWS,
    BreachImpact,
    _merge,
)
from ccg_pipeline.personal_model import WEB_LOG_SOURCE
from ccg_pipeline.policy import DataMap, load_data_map
from ccg_pipeline.warehouse import schema as s


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
    table, since_column, since_note = _in_scope(table, since, is_log, labels)
    categories, usernames = _mapped_columns(table, tags, labels)
    text = _scan_cells(table, labels, kind == "csv", notes)
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
    return BreachImpact.from_findings(
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
        categories=categories,
        detector_cells=text.cells,
        unmapped_columns=[labels[n] for n in names if n not in tags and n not in INTERNAL_LABELS],
        notes=notes,
    )


def _in_scope(
    table: pa.Table, since: dt.date | None, is_log: bool, labels: Mapping[str, str]
) -> tuple[pa.Table, str | None, str]:
    """The rows on or after `since` by the file's date column, that column's label and a note
    for the report. Rows without a parsable date stay in scope, counted in the note."""
    if since is None:
        return table, None, "not given: every row is in scope"
    chosen = _date_column(table, "time" if is_log else None)
    if chosen is None:
        return (
            table,
            None,
            "not applicable: the file has no parsable date column; every row is in scope",
        )
    name, parsed = chosen
    keep = (parsed >= dt.datetime.combine(since, dt.time())) | parsed.isna()
    table = table.filter(pa.array(keep.to_numpy(dtype=bool)))
    since_column = labels[name]
    since_note = f"rows with {since_column} on or after {since.isoformat()}"
    undated = int(parsed.isna().sum())
    if undated:
        since_note += f"; {undated:,} row(s) without a parsable date kept in scope"
    return table, since_column, since_note


def _mapped_columns(
    table: pa.Table, tags: Mapping[str, tuple[str, set[str]]], labels: Mapping[str, str]
) -> tuple[dict[str, list[str]], set[str]]:
    """Categories of the data-map columns that hold a value (by column label), and the
    usernames in them, normalised for matching."""
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
    return categories, usernames


def _scan_cells(
    table: pa.Table, labels: Mapping[str, str], is_csv: bool, notes: list[str]
) -> _TextEvidence:
    """Every cell through the identifier detectors, and a CSV file's header row too: a file
    without a header row has its first record there."""
    text = _TextEvidence()
    for start in range(0, table.num_rows, READ_CHUNK_ROWS):
        text.add(table.slice(start, READ_CHUNK_ROWS), labels.__getitem__)
    names = table.column_names
    if is_csv and names:
        header = pa.table({f"h{i}": pa.array([n], type=pa.string()) for i, n in enumerate(names)})
        before = sum(text.cells.values())
        text.add(header, lambda _name: "header row")
        if sum(text.cells.values()) > before:
            notes.append(
                "the header row holds identifiers: the file may have no header row, so its "
                "first line was scanned as data too"
            )
    return text


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
