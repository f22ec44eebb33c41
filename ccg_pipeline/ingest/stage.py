"""The ingest stage as its DAG and the `ccg` command run it (the package's entry points;
`ccg_pipeline.ingest` re-exports them)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from ccg_pipeline.config import Settings
from ccg_pipeline.ingest.common import BatchResult, IngestContext, IngestFailed
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.locks import stage_lock

log = logging.getLogger(__name__)

SOURCES = ("portal", "crm", "web_logs", "auth_logs")


def _run(source: str, ctx: IngestContext, settings: Settings) -> list[BatchResult]:
    from ccg_pipeline.ingest import crm, files, logs, portal

    if source == "portal":
        portal_engine = sa.create_engine(settings.portal_url, hide_parameters=True)
        try:
            return portal.ingest_portal(ctx, portal_engine)
        finally:
            portal_engine.dispose()
    if source == "crm":
        results = []
        for kind in crm.EXPORTS:  # contacts before activities, so activities find their subject
            found = files.eligible_files(settings.crm_dir, (f"{kind}_*.csv",), ctx.window_end)
            results += files.ingest_files(ctx, crm.EXPORTS[kind][0], found, crm.make_loader(kind))
        return results
    if source == "web_logs":
        found = files.eligible_files(settings.web_log_dir, ("*access*.log*",), ctx.window_end)
        return files.ingest_files(ctx, logs.WEB_SOURCE, found, logs.load_web_log)
    if source == "auth_logs":
        found = files.eligible_files(settings.auth_log_dir, ("auth*.jsonl*",), ctx.window_end)
        return files.ingest_files(ctx, logs.AUTH_SOURCE, found, logs.load_auth_log)
    raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")


def ingest_source(
    settings: Settings,
    source: str,
    *,
    run_id: str,
    window_start: dt.datetime | None,
    window_end: dt.datetime,
    full_refresh: bool = False,
) -> dict[str, Any]:
    """Ingest one source for a data interval; returns counts only (safe for XCom and logs)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
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
            results = _run(source, ctx, settings)
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
