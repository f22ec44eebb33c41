"""Checkpoints of a long soak, so that a soak stopped part-way (a machine restarted, a session
ended) goes on from its last checkpoint instead of from day one.

A soak started with a work folder (`--work DIR`) keeps everything there:

- `DIR/home`: the soak's home (the world's source files, the request inbox and CRM outbox, the
  Airflow metadata database and task logs, and on SQLite the warehouse's zone files);
- `DIR/checkpoint`: the last checkpoint, written after a day the DAGs ran, at most every few
  minutes: a copy of the home, on PostgreSQL a copy of the stopped server's data directory, and
  the pickled `Soak` (the world with its random state, and the oracles' memory).

Resuming restores the home from the checkpoint (so the files, the Airflow database and the
warehouse are those of the same instant as the pickled state), starts a PostgreSQL server on a
copy of the saved data, and runs on from the day after the checkpoint. The days after it run
again from the same world state, so a resumed soak checks the same promises as an unbroken one.
A checkpoint replaces the one before only once it is complete.
"""

from __future__ import annotations

import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccg_pipeline.devtools.postgres import PgServer
    from ccg_pipeline.devtools.soak import Soak

STATE_FILE = "soak.pickle"


@dataclass
class Saved:
    """What a checkpoint holds besides the files: the soak and how it was started."""

    soak: Soak
    backend: str
    argv: list[str]


def home_of(work: Path) -> Path:
    return work / "home"


def latest(work: Path) -> Path | None:
    """The newest complete checkpoint in `work`, if any."""
    for name in ("checkpoint", "checkpoint.old"):
        if (work / name / STATE_FILE).is_file():
            return work / name
    return None


class Checkpoints:
    """Called after each day the DAGs ran; writes a checkpoint when `every_seconds` have passed
    since the last one."""

    def __init__(
        self, work: Path, every_seconds: float, backend: str, argv: list[str], server: Any = None
    ) -> None:
        self.work = work
        self.every_seconds = every_seconds
        self.backend = backend
        self.argv = argv
        self.server: PgServer | None = server
        self.written = 0
        self._last = time.monotonic()

    def __call__(self, soak: Soak) -> None:
        if time.monotonic() - self._last >= self.every_seconds:
            self.write(soak)

    def write(self, soak: Soak) -> Path:
        building, current, previous = (
            self.work / "checkpoint.tmp",
            self.work / "checkpoint",
            self.work / "checkpoint.old",
        )
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        # No open connection while the files are copied: SQLite's files are then whole, and a
        # PostgreSQL server stopped cleanly leaves a data directory that starts without recovery.
        soak.dispose()
        if self.server is not None:
            self.server.pause()
        try:
            shutil.copytree(home_of(self.work), building / "home", symlinks=True)
            if self.server is not None:
                shutil.copytree(self.server.data_dir / "data", building / "pg", symlinks=True)
        finally:
            if self.server is not None:
                self.server.resume()
        (building / STATE_FILE).write_bytes(
            pickle.dumps(Saved(soak, self.backend, self.argv), protocol=pickle.HIGHEST_PROTOCOL)
        )
        shutil.rmtree(previous, ignore_errors=True)
        if current.exists():
            current.rename(previous)
        building.rename(current)
        shutil.rmtree(previous, ignore_errors=True)
        self.written += 1
        self._last = time.monotonic()
        return current


def restore(work: Path) -> tuple[Saved, Path | None]:
    """Put the newest checkpoint's home back in place; returns the saved soak and, for
    PostgreSQL, the saved data directory to start a server on (a copy of it)."""
    checkpoint = latest(work)
    if checkpoint is None:
        raise FileNotFoundError(f"no soak checkpoint in {work}")
    saved: Saved = pickle.loads((checkpoint / STATE_FILE).read_bytes())
    home = home_of(work)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(checkpoint / "home", home, symlinks=True)
    pg_data = checkpoint / "pg"
    return saved, pg_data if pg_data.is_dir() else None
