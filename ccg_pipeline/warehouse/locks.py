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

from collections.abc import Iterator
from contextlib import contextmanager

from ccg_pipeline.warehouse.backend import backend_of


@contextmanager
def stage_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock named `name` on the warehouse at `url` for the body; wait when another
    process holds it (a file lock on SQLite, an advisory lock on PostgreSQL)."""
    with backend_of(url).lock(url, name):
        yield
