"""The backend adapter: everything that differs between the embedded SQLite warehouse and
PostgreSQL lives here, behind one object per backend (`backend_of`). Outside this module (and the
SQL constructs of `warehouse.sql` compiled per dialect), no module tests which backend it runs on;
callers ask a backend for what they need, or for a capability.

| concern | SQLite | PostgreSQL |
|---|---|---|
| upsert statement | `sqlite.insert` | `postgresql.insert` |
| bulk load | compiled `executemany` of tuples | `COPY` into a temp table, one set-based upsert |
| stage locks | `flock` on a file beside the zones | session advisory locks |
| statistics for the planner | none needed | `ANALYZE` |
| reading a table in storage order | rowid ranges | heap-page (TID) ranges |
| expired rows anonymised as deleted | a SELECT, then a DELETE | one `DELETE ... RETURNING` feeding the INSERT |
| reclaiming deleted rows' space | `VACUUM` of the personal file, WAL truncated | `VACUUM (ANALYZE)`, or `FULL` |
| the analyst's copy | a file of the statistics zone (`VACUUM INTO`) | the `ccg_analyst` role's grants |
| cutting a connection (fault tests) | close the driver's connection | `pg_terminate_backend` |
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.warehouse.engine import sqlite_zone_files
from ccg_pipeline.warehouse.roles import ensure_analyst_role
from ccg_pipeline.warehouse.schema import ZONES

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
T = TypeVar("T")

# Rows per executemany round on either backend; below PG_COPY_MIN_ROWS PostgreSQL uses it too.
UPSERT_CHUNK_ROWS = 5_000
# Execution option of a textual statement that reads no personal column (row positions, shapes,
# a compiled upsert of row values): what it states to the purpose guard (ccg_pipeline/purposes.py),
# which cannot parse text.
NO_COLUMNS_READ: dict[str, Any] = {"personal_columns_read": ()}
# Bound parameters per IN list: under SQLite's historical limit of 999 host parameters.
IN_LIST_CHUNK = 900
# Rows a streaming read (`yield_per`, `partitions`) or a parse batch holds at once.
STREAM_CHUNK_ROWS = 20_000
PG_COPY_MIN_ROWS = 1_000
# How SQLAlchemy's SQLite DateTime stores a value (Arrow's %S includes the microseconds).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S"


def in_chunks(values: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in slices small enough for one IN list on every backend."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


# What turns a plain INSERT into the upsert the caller wants (ON CONFLICT ...).
Finish = Callable[[Any], Any]


@dataclass(frozen=True)
class PhysicalRanges:
    """A table's storage order as ranges: positions `low`..`high` in steps of `step`, where a
    position is `position` compared with `bound(value)`. None when the table is empty."""

    position: sa.ColumnElement[Any]
    low: int
    high: int
    step: int
    bound: Callable[[int], sa.ColumnElement[Any]]


class Backend:
    """The interface; `SQLiteBackend` and `PostgresBackend` implement it."""

    name: ClassVar[str]
    # One writer at a time: stages that could run side by side take turns instead.
    single_writer: ClassVar[bool]
    # `DELETE ... RETURNING` can feed an INSERT in the same statement.
    deletes_into_anonymised: ClassVar[bool]
    # Analysts receive a file of the statistics zone (else: a database role).
    analyst_receives_a_file: ClassVar[bool]

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that supports ON CONFLICT."""
        raise NotImplementedError

    def load_rows(
        self,
        conn: Connection,
        table: sa.Table,
        columns: list[str],
        rows: Sequence[dict[str, Any]],
        finish: Finish,
    ) -> None:
        """Write `rows` (dicts with `columns`) through `finish(self.insert(table))`."""
        stmt = finish(self.insert(table))
        for start in range(0, len(rows), UPSERT_CHUNK_ROWS):
            conn.execute(stmt, list(rows[start : start + UPSERT_CHUNK_ROWS]))

    def load_columns(
        self, conn: Connection, table: sa.Table, columns: pa.Table, finish: Finish
    ) -> None:
        """Write an Arrow table's rows (its column names are `table`'s) as `load_rows` would."""
        self.load_rows(conn, table, columns.column_names, columns.to_pylist(), finish)

    def lock(self, url: str, name: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def create_zones(self, conn: Connection, zones: Sequence[str]) -> None:
        """Make each zone exist (SQLite attaches a zone's file when it connects)."""

    def analyze(self, conn: Connection, qualified: str) -> None:
        """Fresh planner statistics for a table that just changed a lot (a no-op where the
        planner needs none)."""

    def physical_ranges(
        self, conn: Connection, qualified: str, chunk_rows: int
    ) -> PhysicalRanges | None:
        raise NotImplementedError

    def reclaim_space(
        self, engine: Engine, zone: str, tables: Sequence[str], *, rewrite: bool
    ) -> list[str]:
        """Make the space of deleted rows unreadable and reusable; returns what was vacuumed."""
        raise NotImplementedError

    def checkpoint(self, engine: Engine) -> None:
        """Fold a write-ahead log into the database files (a no-op where the server owns it)."""

    def export_zone(self, engine: Engine, zone: str, target: Path) -> bool:
        """Copy a zone to a self-contained file at `target`; False where zones are not files."""
        return False

    def set_up_analyst_access(self, conn: Connection) -> bool:
        """The analyst's read-only access to the statistics zone, where it is a database role."""
        return False

    def zone_files(self, url: str) -> dict[str, Path] | None:
        """Zone -> database file, where zones are files."""
        return None

    def url_against(self, url: str, folder: Path) -> str:
        """`url` with a relative database file made absolute against `folder` (a URL written in
        a configuration file means that file's folder); unchanged where the database is no file."""
        return url

    def cut_connection(self, conn: Connection) -> None:
        """End `conn`'s session from outside, as a network failure would (fault tests)."""
        raise NotImplementedError


def _quick_sqlite_bind(impl: Any, process: Callable[[Any], Any] | None) -> Any:
    """`process` (a type's SQLite bind processor), with the plain cases done by C `isoformat`:
    a naive datetime and a date, in SQLAlchemy's default storage formats. Everything else (an
    aware datetime, a datetime given to a DATE column, None) still goes through `process`, so
    the text stored is the same (`tests/unit/test_backend.py` holds them equal). A third of a
    portal row's write cost was this conversion."""
    if process is None:
        return None
    if isinstance(impl, sqlite.DATETIME) and impl._storage_format == _SQLITE_DATETIME_FORMAT:

        def datetime_text(value: Any) -> Any:
            if value.__class__ is dt.datetime and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return process(value)

        return datetime_text
    if isinstance(impl, sqlite.DATE) and impl._storage_format == _SQLITE_DATE_FORMAT:

        def date_text(value: Any) -> Any:
            return value.isoformat() if value.__class__ is dt.date else process(value)

        return date_text
    return process


# SQLAlchemy's default storage formats, which `isoformat` reproduces.
_SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
_SQLITE_DATE_FORMAT = "%(year)04d-%(month)02d-%(day)02d"


class SQLiteBackend(Backend):
    name = "sqlite"
    single_writer = True
    deletes_into_anonymised = False
    analyst_receives_a_file = True

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def load_rows(
        self,
        conn: Connection,
        table: sa.Table,
        columns: list[str],
        rows: Sequence[dict[str, Any]],
        finish: Finish,
    ) -> None:
        """Compile once, convert each value with its column type's own bind processor, and hand
        positional tuples to the driver's executemany. The same SQL and the same stored values
        as `conn.execute(stmt, rows)`, without SQLAlchemy's per-row parameter bookkeeping, which
        cost three times the driver's own work on log ingest."""
        sql, convert = self._positional(conn, table, columns, finish)
        for start in range(0, len(rows), UPSERT_CHUNK_ROWS):
            chunk = rows[start : start + UPSERT_CHUNK_ROWS]
            # A column at a time (a comprehension per column, then one zip): half the time of a
            # generator per row on CRM ingest.
            values = []
            for name, to_db in convert:
                column = [row[name] for row in chunk]
                values.append(column if to_db is None else list(map(to_db, column)))
            params = list(zip(*values, strict=True))
            # A compiled upsert of row values: it writes, and reads no personal column.
            conn.exec_driver_sql(sql, params, execution_options=NO_COLUMNS_READ)

    def load_columns(
        self, conn: Connection, table: sa.Table, columns: pa.Table, finish: Finish
    ) -> None:
        """As `load_rows`, with the values converted a column at a time: timestamps become the
        text SQLAlchemy stores for them (in Arrow), other values go to the driver as they are,
        or through their type's bind processor. No per-row dict is built."""
        import pyarrow as pa
        import pyarrow.compute as pc

        sql, convert = self._positional(conn, table, columns.column_names, finish)
        values = []
        for name, to_db in convert:
            column = columns.column(name)
            if pa.types.is_timestamp(column.type) and isinstance(table.c[name].type, sa.DateTime):
                values.append(pc.strftime(column, format=SQLITE_DATETIME).to_pylist())
            elif to_db is None:
                values.append(column.to_pylist())
            else:
                values.append([to_db(v) for v in column.to_pylist()])
        params = list(zip(*values, strict=True))
        for start in range(0, len(params), UPSERT_CHUNK_ROWS):
            conn.exec_driver_sql(
                sql, params[start : start + UPSERT_CHUNK_ROWS], execution_options=NO_COLUMNS_READ
            )

    def _positional(
        self, conn: Connection, table: sa.Table, columns: list[str], finish: Finish
    ) -> tuple[str, list[tuple[str, Any]]]:
        """The upsert compiled once for positional parameters, and per parameter its column and
        its type's bind processor (None where the driver takes the value as it is)."""
        stmt = finish(self.insert(table))
        compiled = stmt.compile(dialect=conn.dialect, column_keys=columns, for_executemany=True)
        names = compiled.positiontup or []
        unknown = set(names) - set(columns)
        if unknown:  # a bind that is not a row value: never expected from an upsert
            raise ValueError(f"upsert statement binds non-row parameter(s): {sorted(unknown)}")
        dialect = conn.dialect
        converters = []
        for name in names:
            impl = compiled.binds[name].type.dialect_impl(dialect)
            converters.append((name, _quick_sqlite_bind(impl, impl.bind_processor(dialect))))
        return compiled.string, converters

    @contextmanager
    def lock(self, url: str, name: str) -> Iterator[None]:
        folder = sqlite_zone_files(url)["ops"].parent
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f".lock-{name}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another run holds the %s lock; waiting for it to finish", name)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def physical_ranges(
        self, conn: Connection, qualified: str, chunk_rows: int
    ) -> PhysicalRanges | None:
        # Row positions only: no column is read (the purpose guard is told so).
        # Two subqueries: SQLite reads min() or max() of the rowid from the B-tree's end only
        # when it is the query's one aggregate; both in one SELECT scan the table (1.2 s for
        # 10M log rows).
        statement = sa.text(
            f"SELECT (SELECT min(rowid) FROM {qualified}), (SELECT max(rowid) FROM {qualified})"
        )
        low, high = conn.execute(statement.execution_options(**NO_COLUMNS_READ)).one()
        if low is None:
            return None
        return PhysicalRanges(sa.literal_column("rowid"), low, high, chunk_rows, sa.literal)

    def reclaim_space(
        self, engine: Engine, zone: str, tables: Sequence[str], *, rewrite: bool
    ) -> list[str]:
        # secure_delete zeroes what a DELETE frees and the sweep checkpoints the WAL; copies that
        # B-tree rebalancing moved earlier stay in old pages until the file is rebuilt.
        if not rewrite:
            return []
        raw = engine.raw_connection()  # VACUUM cannot run inside a transaction
        try:
            raw.cursor().execute(f"VACUUM {zone}")
        finally:
            raw.close()
        self.checkpoint(engine)
        return [zone]

    def checkpoint(self, engine: Engine) -> None:
        """Fold the WAL into the database files (after deletes, so freed pages leave the WAL
        too)."""
        # Outside any transaction (a checkpoint inside BEGIN reports the table as locked).
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for schema_name in ("main", *ZONES):
                cursor.execute(f"PRAGMA {schema_name}.wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()

    def export_zone(self, engine: Engine, zone: str, target: Path) -> bool:
        raw = engine.raw_connection()
        try:
            raw.cursor().execute(f"VACUUM {zone} INTO ?", (str(target),))
        finally:
            raw.close()
        return True

    def zone_files(self, url: str) -> dict[str, Path] | None:
        return sqlite_zone_files(url)

    def url_against(self, url: str, folder: Path) -> str:
        parsed = sa.make_url(url)
        database = parsed.database
        if not database or database == ":memory:" or Path(database).is_absolute():
            return url
        return parsed.set(database=str(folder / database)).render_as_string(hide_password=False)

    def cut_connection(self, conn: Connection) -> None:
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]


class PostgresBackend(Backend):
    name = "postgresql"
    single_writer = False
    deletes_into_anonymised = True
    analyst_receives_a_file = False

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def load_rows(
        self,
        conn: Connection,
        table: sa.Table,
        columns: list[str],
        rows: Sequence[dict[str, Any]],
        finish: Finish,
    ) -> None:
        if len(rows) < PG_COPY_MIN_ROWS:
            super().load_rows(conn, table, columns, rows, finish)
            return
        staging = _copy_to_temp_table(conn, table, columns, rows)
        stmt = self.insert(table).from_select(columns, sa.select(*(staging.c[c] for c in columns)))
        conn.execute(finish(stmt))

    def load_columns(
        self, conn: Connection, table: sa.Table, columns: pa.Table, finish: Finish
    ) -> None:
        """COPY the Arrow table as CSV written by Arrow (no Python object per value), then one
        set-based upsert."""
        if columns.num_rows < PG_COPY_MIN_ROWS:
            super().load_columns(conn, table, columns, finish)
            return
        from pyarrow import csv as pa_csv

        names = columns.column_names
        buffer = io.BytesIO()
        # Every value quoted, a null as nothing: COPY's CSV form tells NULL from "".
        pa_csv.write_csv(
            columns,
            buffer,
            pa_csv.WriteOptions(include_header=False, quoting_style="all_valid"),
        )
        buffer.seek(0)
        staging = _temp_table_like(conn, table, names)
        cursor = conn.connection.cursor()
        try:
            cursor.copy_expert(
                f'COPY "{staging.name}" ({_quoted(names)}) FROM STDIN WITH (FORMAT csv)', buffer
            )
        finally:
            cursor.close()
        stmt = self.insert(table).from_select(names, sa.select(*(staging.c[c] for c in names)))
        conn.execute(finish(stmt))

    @contextmanager
    def lock(self, url: str, name: str) -> Iterator[None]:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                key = {"k": _advisory_key(name)}
                if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), key).scalar_one():
                    log.info("another run holds the %s lock; waiting for it to finish", name)
                    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), key)
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), key)
        finally:
            engine.dispose()

    def create_zones(self, conn: Connection, zones: Sequence[str]) -> None:
        for zone in zones:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {zone}")

    def analyze(self, conn: Connection, qualified: str) -> None:
        # On a never-analysed table PostgreSQL guesses its size and can pick a plan that rescans
        # it per row.
        conn.exec_driver_sql(f"ANALYZE {qualified}")

    def physical_ranges(
        self, conn: Connection, qualified: str, chunk_rows: int
    ) -> PhysicalRanges | None:
        pages, tuples = conn.execute(
            sa.text(
                "SELECT greatest(relpages, 1), greatest(reltuples, 1) FROM pg_class "
                "WHERE oid = CAST(:t AS regclass)"
            ),
            {"t": qualified},
        ).one()
        high = conn.execute(
            sa.text(
                "SELECT pg_relation_size(CAST(:t AS regclass)) / current_setting('block_size')::int"
            ),
            {"t": qualified},
        ).scalar_one()
        # A table never analysed reports no tuples: assume 50 rows a page rather than 1.
        rows_per_page = tuples / pages if tuples > 1 else 50.0
        step = max(1, int(chunk_rows / max(rows_per_page, 1.0)))
        return PhysicalRanges(sa.literal_column("ctid"), 0, high, step, _first_tuple_of_page)

    def reclaim_space(
        self, engine: Engine, zone: str, tables: Sequence[str], *, rewrite: bool
    ) -> list[str]:
        options = "FULL, ANALYZE" if rewrite else "ANALYZE"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in tables:
                conn.exec_driver_sql(f'VACUUM ({options}) {zone}."{name}"')
            if rewrite:
                conn.exec_driver_sql("VACUUM (FULL) pg_catalog.pg_statistic")
        return list(tables)

    def set_up_analyst_access(self, conn: Connection) -> bool:
        return ensure_analyst_role(conn)

    def cut_connection(self, conn: Connection) -> None:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        other = sa.create_engine(conn.engine.url, poolclass=sa.pool.NullPool)
        try:
            with other.connect() as killer:
                killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            other.dispose()


_BACKENDS: dict[str, Backend] = {"sqlite": SQLiteBackend(), "postgresql": PostgresBackend()}


def backend_of(where: Engine | Connection | str | sa.URL) -> Backend:
    """The backend of an engine, a connection or a warehouse URL."""
    if isinstance(where, Engine | Connection):
        name = where.dialect.name
    else:
        name = sa.make_url(where).get_backend_name()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unsupported warehouse backend {name!r}: sqlite or postgresql") from None


def url_against(url: str, folder: Path) -> str:
    """A warehouse or portal URL from a configuration file in `folder`, its database file (if
    any) made absolute; a URL of another kind of database is left as it is."""
    try:
        backend = backend_of(url)
    except (ValueError, sa.exc.ArgumentError):
        return url
    return backend.url_against(url, folder)


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a stage name."""
    return int.from_bytes(hashlib.sha256(f"ccg:{name}".encode()).digest()[:8], "big", signed=True)


def _first_tuple_of_page(page: int) -> sa.ColumnElement[Any]:
    return sa.literal_column(f"CAST('({int(page)},0)' AS tid)")


def _plain_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _escape_copy(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format (NULL as `\\N`, specials escaped)."""
    return "\\N" if value is None else _escape_copy(_plain_text(value))


def _copy_column(values: list[Any]) -> list[str]:
    """`_copy_text` of each value, a column at a time: the texts are escaped in one pass over
    them joined by NUL (which no stored text holds: ingest refuses it), unless one holds it."""
    texts = [v if isinstance(v, str) else None if v is None else _plain_text(v) for v in values]
    present = [t for t in texts if t is not None]
    joined = "\x00".join(present)
    if joined.count("\x00") > max(len(present) - 1, 0):
        return [_copy_text(v) for v in values]
    escaped = iter(_escape_copy(joined).split("\x00"))
    return ["\\N" if t is None else next(escaped) for t in texts]


def copy_rows_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as PostgreSQL's COPY text format: the same text as `_copy_text` value by value."""
    if not rows:
        return ""
    escaped = [_copy_column([row[c] for row in rows]) for c in columns]
    return "\n".join(map("\t".join, zip(*escaped, strict=True))) + "\n"


def _copy_to_temp_table(
    conn: Connection, table: sa.Table, columns: list[str], rows: Sequence[dict[str, Any]]
) -> sa.TableClause:
    """COPY rows into a transaction-scoped temp table shaped like `table` (one round trip
    instead of one statement per row), ready for a set-based upsert."""
    staging = _temp_table_like(conn, table, columns)
    buffer = io.StringIO(copy_rows_text(rows, columns))
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(f'COPY "{staging.name}" ({_quoted(columns)}) FROM STDIN', buffer)
    finally:
        cursor.close()
    return staging


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _temp_table_like(conn: Connection, table: sa.Table, columns: Sequence[str]) -> sa.TableClause:
    """An empty transaction-scoped temp table with `table`'s `columns`, to COPY into."""
    # One temp table per target and column list, so chunks of one transaction reuse it.
    name = f"_load_{table.name}_{hashlib.md5(','.join(columns).encode()).hexdigest()[:8]}"
    conn.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ON COMMIT DROP AS '
        f'SELECT {_quoted(columns)} FROM "{table.schema}"."{table.name}" WITH NO DATA',
        execution_options=NO_COLUMNS_READ,  # the shape only, no row
    )
    conn.exec_driver_sql(f'TRUNCATE "{name}"')
    return sa.table(name, *(sa.column(c) for c in columns))
