"""The breach impact of a warehouse table (`zone.table`).

Categories come from `TABLES`, a map of every column of every personal-zone table to a notice
category (most by reference to the data-map column it is loaded from, so the two cannot drift).
The affected subjects are the distinct subject ids the in-scope rows reach, directly or through
companies, invoices, users and CRM contacts, computed by set-based SQL that runs on SQLite and
PostgreSQL. Free-text columns (CRM notes, quarantined raw records, URLs) are also run through the
identifier detectors, and the email addresses found there are matched to known subjects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.breach.matching import _countries, _matches, _TextEvidence
from ccg_pipeline.breach.report import (
    READ_CHUNK_ROWS,
    BreachImpact,
    BreachInputError,
    _merge,
)
from ccg_pipeline.personal_model import (
    RECORD_SOURCE,
    TABLES,
    PersonalTable,
    category_of,
)
from ccg_pipeline.policy import DataMap, load_data_map
from ccg_pipeline.warehouse import schema as s


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


def _scope(
    key: str, spec: PersonalTable, table: sa.Table, live: set[str], since: dt.date | None
) -> tuple[sa.ColumnElement[bool], str | None, str]:
    """The rows in scope: (condition, the column `since` filters on, a note for the report).
    A table without a time column is in scope as a whole."""
    if since is None:
        return sa.true(), None, "not given: every row is in scope"
    if spec.time_column and spec.time_column in live:
        return (
            _since_clause(table, spec.time_column, since),
            spec.time_column,
            f"rows with {spec.time_column} on or after {since.isoformat()}",
        )
    return sa.true(), None, f"not applicable: {key} has no time column; every row is in scope"


def _linked_subjects(
    conn: Connection, spec: PersonalTable, table: sa.Table, condition: sa.ColumnElement[bool]
) -> set[int]:
    """Subject ids the in-scope rows reach through the table's declared paths (none if the
    table declares none)."""
    if spec.subjects is None:
        return set()
    src = sa.select(table).where(condition).subquery("src")
    paths = spec.subjects(src)
    query = paths[0].distinct() if len(paths) == 1 else sa.union(*paths)
    return {i for i in conn.execute(query).scalars() if i is not None}


def assess_table(engine: Engine, qualified: str, since: dt.date | None = None) -> BreachImpact:
    """The breach impact of a warehouse table's rows (those written since `since`, if given)."""
    key, spec, table, live = _resolve_table(engine, qualified)
    data_map = load_data_map()
    notes: list[str] = []
    condition, since_column, since_note = _scope(key, spec, table, live, since)
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

        ids = _linked_subjects(conn, spec, table, condition)

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
            "their category is unknown (map them in ccg_pipeline/personal_model.py)"
        )
    if spec.subjects is None and ids:
        via = "email addresses and phone numbers in free text"
    else:
        via = spec.reach + ("; and identifiers in free text" if further else "")
    return BreachImpact.from_findings(
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
        categories=categories,
        detector_cells=text.cells,
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
