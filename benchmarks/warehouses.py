"""The warehouses a benchmark runs on: SQLite always, and PostgreSQL from a throw-away server
when the machine has one (started as the unprivileged `postgres` user), stopped afterwards."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ccg_pipeline.devtools.postgres import PostgresUnavailable, start_server


@contextmanager
def warehouse_urls(root: Path, *, postgres: bool) -> Iterator[dict[str, Callable[[str], str]]]:
    """`{backend: make_url(name)}`: each call gives a fresh, empty warehouse named `name`."""
    makers: dict[str, Callable[[str], str]] = {
        "sqlite": lambda name: f"sqlite:///{root / name / 'warehouse' / 'main.db'}"
    }
    server = None
    if postgres:
        try:
            server = start_server()
            makers["postgres"] = server.create_database
        except PostgresUnavailable as exc:
            print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
    try:
        yield makers
    finally:
        if server is not None:
            server.stop()
