"""The ingest stage as its DAG and the `ccg` command run it (the package's entry points;
`ccg_pipeline.ingest` re-exports them)."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

import sqlalchemy as sa

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest.common import BatchResult, IngestContext, IngestFailed
from ccg_pipeline.ingest.files import FileLoader
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


def _run(lane: IngestLane, ctx: IngestContext, settings: Settings) -> list[BatchResult]:
    from ccg_pipeline.ingest import files, portal

    if lane.name == DATABASE_LANE:
        portal_engine = sa.create_engine(settings.portal_url, hide_parameters=True)
        try:
            return portal.ingest_portal(ctx, portal_engine)
        finally:
            portal_engine.dispose()
    results = []
    for source, feed in lane.feeds:
        folder = settings.source_folder(feed.folder, feed.folder_variable)
        found = files.eligible_files(folder, tuple(feed.files), ctx.window_end)
        results += files.ingest_files(ctx, source, found, _loader(feed))
    return results


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
) -> dict[str, Any]:
    """Ingest one lane (`ingest_lanes`) for a data interval; returns counts only (safe for XCom
    and logs)."""
    lanes = {lane.name: lane for lane in load_data_map().ingest_lanes()}
    if source not in lanes:
        raise ValueError(f"unknown source {source!r}; expected one of {tuple(lanes)}")
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
        # One run per source at a time. On SQLite all sources take turns: the database has one
        # writer and each batch holds the write lock for its whole file, so lanes the DAG runs
        # side by side would only wait on each other's locks, long enough to time out. The
        # stage lock waits without a limit and dies with its process.
        single = backend_of(settings.warehouse_url).single_writer
        lock = "ingest" if single else f"ingest.{source}"
        with stage_lock(settings.warehouse_url, lock):
            results = _run(lanes[source], ctx, settings)
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
