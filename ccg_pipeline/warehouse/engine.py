"""Engines for the warehouse: embedded SQLite (default) or PostgreSQL.

On SQLite, the URL names a catalogue file (`.../main.db`); each zone is its own file beside it
(`personal.db`, `staging.db`, `statistics.db`, `ops.db`), attached under the zone name, so the
same `schema.table` SQL runs on both backends and an analyst can be handed `statistics.db` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.warehouse.schema import ZONES

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000

# Execution option of a connection that will write. On SQLite its transaction takes the write
# lock at BEGIN (IMMEDIATE): a deferred transaction that has read first cannot take the lock once
# another process has committed since ("database is locked" at once, busy_timeout unused).
WRITER = "ccg_writer"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else sa.make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def sqlite_zone_files(url: str) -> dict[str, Path]:
    """Zone name -> database file for a SQLite warehouse URL."""
    database = sa.make_url(url).database
    if not database or database == ":memory:":
        raise ValueError(
            "the SQLite warehouse needs a file path, e.g. sqlite:///var/warehouse/main.db"
        )
    folder = Path(database).resolve().parent
    return {zone: folder / f"{zone}.db" for zone in ZONES}


def _install_sqlite_hooks(engine: Engine, zone_files: dict[str, Path]) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN/COMMIT are ours: this makes
        # DDL transactional and stops pysqlite from committing behind SQLAlchemy's back.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # Checkpoint every ~40 MB of WAL rather than every 4 MB: bulk loads and retention sweeps
        # commit often, and each checkpoint copies pages back into the database file.
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        for zone, path in zone_files.items():
            cursor.execute("ATTACH DATABASE ? AS " + zone, (str(path),))
        for schema_name in ("main", *zone_files):
            cursor.execute(f"PRAGMA {schema_name}.journal_mode = WAL")
            cursor.execute(f"PRAGMA {schema_name}.synchronous = NORMAL")
            # Deleted personal data is overwritten with zeros, not left in free pages (N-RET).
            cursor.execute(f"PRAGMA {schema_name}.secure_delete = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(
            "BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITER) else "BEGIN"
        )


def write_transaction(engine: Engine) -> Any:
    """`engine.begin()` for a transaction that writes: on SQLite it waits (busy_timeout) for the
    one writer's lock up front instead of failing half-way; on PostgreSQL it is `begin()`."""
    return engine.execution_options(**{WRITER: True}).begin()


def create_warehouse_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine whose connections see every zone as a schema.

    Bound parameters are hidden from SQLAlchemy's error messages: they would otherwise copy rows
    of personal data into task logs whenever a statement fails."""
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        files = sqlite_zone_files(url)
        folder = next(iter(files.values())).parent
        folder.mkdir(parents=True, exist_ok=True)
        # Owner-only from the start (N-SEC): SQLite gives its WAL and journal files the same
        # permissions. The analyst receives a separate copy of the statistics zone.
        for path in (folder / Path(sa.make_url(url).database or "").name, *files.values()):
            path.touch(mode=0o600, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, files)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("executemany_mode", "values_plus_batch")
    kwargs.setdefault("insertmanyvalues_page_size", 5000)
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine, "connect", _without_jit)
    return engine


def _without_jit(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL's JIT compiles a query whose estimated cost is high. The retention and
    evidence queries nest many small correlated subqueries, which the planner costs in the
    millions although they run in milliseconds: compiling them took 2.7 s of a 2.7 s count
    on a 60-company warehouse (EXPLAIN ANALYZE, JIT: 599 functions)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET jit = off")
    finally:
        cursor.close()
    dbapi_connection.commit()
