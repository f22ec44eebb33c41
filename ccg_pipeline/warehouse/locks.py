"""One run of a stage at a time per warehouse, whatever starts it.

Airflow runs one DAG run at a time (`max_active_runs=1`), but a task cleared while a lost worker
still runs it, a manual `ccg` command beside the scheduler, or two schedulers would run the same
stage twice at once: two sweeps anonymising the same rows, two request handlers deleting the
same person. Each stage therefore holds a lock for its whole run; the second run waits, then
finds the work done (every stage is idempotent) and changes nothing.

The lock dies with its holder, so a killed run never blocks the next one: PostgreSQL drops a
session's advisory locks when its connection goes, and the kernel drops a `flock` when the
process exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from ccg_pipeline.warehouse.engine import is_sqlite, sqlite_zone_files

log = logging.getLogger(__name__)


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a stage name."""
    return int.from_bytes(hashlib.sha256(f"ccg:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def stage_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock named `name` on the warehouse at `url` for the body; wait when another
    process holds it."""
    if is_sqlite(url):
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
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            key = {"k": _key(name)}
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), key).scalar_one():
                log.info("another run holds the %s lock; waiting for it to finish", name)
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), key)
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), key)
    finally:
        engine.dispose()
