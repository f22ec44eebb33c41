"""File-batch ingest: which files a run takes, and one transaction per file.

A run takes every file whose name-date is before the end of its data interval (files without a
date are always eligible) and that has not been loaded before with the same content. Late files
are therefore picked up by the next run, reruns skip what is done, and nothing from after the
interval is read, which keeps backfills and time travel honest.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import itertools
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline.ingest.common import (
    BatchRefused,
    BatchResult,
    IngestContext,
    already_loaded,
    record_batch,
)
from ccg_pipeline.warehouse import schema
from ccg_pipeline.warehouse.engine import write_transaction

log = logging.getLogger(__name__)

_NAME_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")

FileLoader = Callable[[Connection, IngestContext, Path, BatchResult], None]


def name_date(path: Path) -> dt.date | None:
    match = _NAME_DATE.search(path.name)
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def eligible_files(folder: Path, patterns: tuple[str, ...], window_end: dt.datetime) -> list[Path]:
    if not folder.is_dir():
        return []
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    keep = [p for p in found if (d := name_date(p)) is None or d < window_end.date()]
    return sorted(keep, key=lambda p: (name_date(p) or dt.date.min, p.name))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_text(path: Path) -> io.TextIOBase:
    """Text lines of a plain or gzipped file. Undecodable bytes become surrogates so the line can
    be quarantined as `bad_encoding` instead of failing the whole file."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape", newline="")
    return path.open("r", encoding="utf-8", errors="surrogateescape", newline="")


def has_bad_encoding(text: str) -> bool:
    """True for undecodable bytes (kept as surrogates) or NUL, which PostgreSQL text refuses."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def line_blocks(path: Path, size: int) -> Iterator[tuple[int, list[str]]]:
    """(1-based number of the block's first line, its lines without newlines), `size` lines at a
    time, blank lines included: the lines `lines` gives, without a Python step per line."""
    with open_text(path) as fh:
        first = 1
        while block := list(itertools.islice(fh, size)):
            yield first, [line.rstrip("\r\n") for line in block]
            first += len(block)


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline)."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line.rstrip("\r\n")


def loaded_contents(engine: Engine, source: str) -> set[tuple[str, str]]:
    """(file name, content checksum) of every file of `source` loaded so far: one query, where a
    folder that keeps years of daily exports would otherwise take one write transaction per
    file on every run just to find it has nothing new."""
    b = schema.ingest_batches
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(b.c.source_ref, b.c.content_sha256).where(
                b.c.source == source, b.c.status == "loaded", b.c.content_sha256.is_not(None)
            )
        )
        return {(ref, sha) for ref, sha in found}


def ingest_files(
    ctx: IngestContext,
    source: str,
    files: list[Path],
    loader: FileLoader,
    loaded: AbstractSet[tuple[str, str]] = frozenset(),
) -> list[BatchResult]:
    """Load each file in its own transaction; a refused file is recorded and the rest go on.
    A file in `loaded` (`loaded_contents`) with the same content is skipped at once, unless
    `ctx.full_refresh`; any other is checked again inside its transaction."""
    results: list[BatchResult] = []
    for path in files:
        result = BatchResult(source=source, source_ref=path.name)
        sha = file_sha256(path)
        if not ctx.full_refresh and (path.name, sha) in loaded:
            result.status = "skipped"
            results.append(result)
            continue
        try:
            with write_transaction(ctx.engine) as conn:
                if not ctx.full_refresh and already_loaded(conn, source, path.name, sha):
                    result.status = "skipped"
                    log.info(
                        "%s %s: already loaded with the same content, skipped", source, path.name
                    )
                else:
                    loader(conn, ctx, path, result)
                    record_batch(conn, ctx, result, sha)
        except BatchRefused as exc:
            result.status, result.error = "refused", str(exc)
            with write_transaction(ctx.engine) as conn:
                record_batch(conn, ctx, result, sha)
            log.error("%s", exc)
        except (OSError, EOFError, zlib.error, csv.Error, UnicodeError) as exc:
            # An unreadable file (truncated gzip, I/O error): nothing of it was committed. Record it
            # by error class only (messages can quote content) and go on with the next file.
            result = BatchResult(source=source, source_ref=path.name, status="refused")
            result.error = f"{source} ({path.name}): unreadable file ({type(exc).__name__})"
            with write_transaction(ctx.engine) as conn:
                record_batch(conn, ctx, result, sha)
            log.error("%s", result.error)
        if result.status == "loaded":
            log.info("%s", result.describe())
        results.append(result)
    return results
