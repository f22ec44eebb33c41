"""The ingest stage as its DAG and the `ccg` command run it (the package's entry points;
`ccg_pipeline.ingest` re-exports them)."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest.common import BatchResult, IngestContext, IngestFailed
from ccg_pipeline.ingest.files import FileLoader, loaded_contents
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.policy.models import DATABASE_LANE, FileFeed, IngestLane
from ccg_pipeline.purposes import NotAProcessing, purpose_of
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.locks import stage_lock

log = logging.getLogger(__name__)


def lane_names() -> tuple[str, ...]:
    """The ingest lanes by name; `ingest_<name>` is each one's DAG task."""
    return tuple(lane.name for lane in load_data_map().ingest_lanes())


def _loader(feed: FileFeed) -> FileLoader:
    module, _, function = feed.loader.partition(":")
    loader: FileLoader = getattr(importlib.import_module(module), function)
    return loader


# A lane's file: (source, its feed, the path).
Found = tuple[str, FileFeed, Path]


def _found(lane: IngestLane, settings: Settings, window_end: dt.datetime) -> list[Found]:
    """The lane's files for a window, by feed in data-map order, each feed's oldest first."""
    from ccg_pipeline.ingest import files

    found = []
    for source, feed in lane.feeds:
        folder = settings.source_folder(feed.folder, feed.folder_variable)
        found += [
            (source, feed, path)
            for path in files.eligible_files(folder, tuple(feed.files), window_end)
        ]
    return found


def file_ref(source: str, path: Path) -> str:
    """How a file is named to a mapped task: its source and file name (no folder, no content)."""
    return f"{source}:{path.name}"


@purpose_of(
    NotAProcessing(
        "collection (N-SRC): names the files of a log lane that ingest loads next (file names "
        "and checksums only, no content)"
    )
)
def lane_files(
    settings: Settings, lane_name: str, window_end: dt.datetime, *, full_refresh: bool = False
) -> list[str]:
    """The file references (`file_ref`) a per-file lane has to load for a window: the DAG maps
    one task over each. A file already loaded with the same content is left out (unless
    `full_refresh`): a folder of rotated logs keeps its history, and a run maps tasks only for
    what is new or changed. (Each task checks again, in its own transaction.)"""
    from ccg_pipeline.ingest.files import file_sha256

    found = _found(_lane(lane_name), settings, window_end)
    if full_refresh or not found:
        return [file_ref(source, path) for source, _, path in found]
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        loaded = _loaded(engine, found)
    finally:
        engine.dispose()
    return [
        file_ref(source, path)
        for source, _, path in found
        if (path.name, file_sha256(path)) not in loaded[source]
    ]


def _loaded(engine: Engine, found: list[Found]) -> dict[str, set[tuple[str, str]]]:
    """Per source of `found`: the (file name, checksum) pairs loaded so far, one query each."""
    return {source: loaded_contents(engine, source) for source in {s for s, _, _ in found}}


def _lane(name: str) -> IngestLane:
    lanes = {lane.name: lane for lane in load_data_map().ingest_lanes()}
    if name not in lanes:
        raise ValueError(f"unknown source {name!r}; expected one of {tuple(lanes)}")
    return lanes[name]


def _run(
    lane: IngestLane, ctx: IngestContext, settings: Settings, only: Sequence[str] | None
) -> list[BatchResult]:
    from ccg_pipeline.ingest import files, portal

    if lane.name == DATABASE_LANE:
        portal_engine = sa.create_engine(settings.portal_url, hide_parameters=True)
        try:
            return portal.ingest_portal(ctx, portal_engine)
        finally:
            portal_engine.dispose()
    found = _found(lane, settings, ctx.window_end)
    if only is not None:
        wanted = set(only)
        unknown = sorted(wanted - {file_ref(source, path) for source, _, path in found})
        if unknown:
            raise ValueError(f"{lane.name}: no such file to load in this window: {unknown}")
        found = [item for item in found if file_ref(item[0], item[2]) in wanted]
    loaded = _loaded(ctx.engine, found)
    results = []
    for source, feed, path in found:
        # A per-file lane locks each file, so that mapped tasks of one lane load side by side;
        # SQLite's single writer takes them in turn.
        with _file_lock(settings, lane, file_ref(source, path)):
            results += files.ingest_files(ctx, source, [path], _loader(feed), loaded[source])
    skipped = sum(r.status == "skipped" for r in results)
    if skipped:
        log.info("%s: %d file(s) already loaded with the same content, skipped", lane.name, skipped)
    return results


def _stage_lock_name(settings: Settings, lane: IngestLane, ref: str | None = None) -> str:
    """One run per source at a time, per file for a per-file lane. On SQLite all sources take
    turns: the database has one writer and each batch holds the write lock for its whole file,
    so lanes the DAG runs side by side would only wait on each other's locks, long enough to
    time out. The stage lock waits without a limit and dies with its process."""
    if backend_of(settings.warehouse_url).single_writer:
        return "ingest"
    return f"ingest.{lane.name}" if ref is None else f"ingest.{lane.name}.{ref}"


def _locks_per_file(settings: Settings, lane: IngestLane) -> bool:
    return lane.per_file and not backend_of(settings.warehouse_url).single_writer


@contextlib.contextmanager
def _file_lock(settings: Settings, lane: IngestLane, ref: str) -> Iterator[None]:
    """Each file's lock in a per-file lane; else none here, as ingest_source holds the lane's
    (or, on SQLite, the one ingest lock)."""
    if not _locks_per_file(settings, lane):
        yield
        return
    with stage_lock(settings.warehouse_url, _stage_lock_name(settings, lane, ref)):
        yield


@purpose_of(
    NotAProcessing(
        "collection (N-SRC): loads what the sources hold into the personal zone; the purposes "
        "are those of the processings that read it"
    )
)
def ingest_source(
    settings: Settings,
    source: str,
    *,
    run_id: str,
    window_start: dt.datetime | None,
    window_end: dt.datetime,
    full_refresh: bool = False,
    files: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Ingest one lane (`ingest_lanes`) for a data interval, or only the given files of a
    per-file lane (`lane_files`); returns counts only (safe for XCom and logs)."""
    lane = _lane(source)
    if files is not None and not lane.per_file:
        raise ValueError(f"{source} loads its files in order, as one task; it takes no file list")
    settings.check_production()
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        ctx = IngestContext(
            engine=engine,
            notice=load_notice(),
            data_map=load_data_map(),
            pseudonym_key=settings.pseudonym_key,
            run_id=run_id,
            window_start=window_start,
            window_end=window_end,
            full_refresh=full_refresh,
        )
        if _locks_per_file(settings, lane):
            results = _run(lane, ctx, settings, files)
        else:
            with stage_lock(settings.warehouse_url, _stage_lock_name(settings, lane)):
                results = _run(lane, ctx, settings, files)
    finally:
        engine.dispose()
    summary = {
        "source": source,
        "batches": len(results),
        "batches_skipped": sum(r.status == "skipped" for r in results),
        "rows_read": sum(r.rows_read for r in results),
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "rows_retired": sum(r.rows_retired for r in results),
        "rows_erased": sum(r.rows_erased for r in results),
        "refused": [r.source_ref for r in results if r.status == "refused"],
    }
    log.info("ingest %s done: %s", source, summary)
    refused = [r for r in results if r.status == "refused"]
    if refused:
        raise IngestFailed(
            f"{len(refused)} batch(es) of {source} refused; the other batches were loaded. "
            + " | ".join(r.error or r.source_ref for r in refused)
        )
    return summary
