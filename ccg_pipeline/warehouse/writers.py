"""How many tasks may write to the warehouse side by side: the Airflow pool `ccg_writers` that
ingest's per-file tasks run in, sized by the backend (run by deploy/airflow-init.sh)."""

from __future__ import annotations

import logging

from ccg_pipeline.config import Settings, positive_int_from_env
from ccg_pipeline.warehouse.backend import backend_of

log = logging.getLogger(__name__)

DEFAULT_WRITER_SLOTS = 4


def writer_slots(settings: Settings) -> int:
    """1 on SQLite (one writer at a time); else CCG_WRITER_SLOTS, by default 4."""
    if backend_of(settings.warehouse_url).single_writer:
        return 1
    return positive_int_from_env("CCG_WRITER_SLOTS", DEFAULT_WRITER_SLOTS)


def ensure_writers_pool() -> int:
    """Create or resize the writers pool for the configured warehouse (idempotent); returns its
    slots. Needs Airflow's metadata database (run after `airflow db migrate`)."""
    from airflow.models.pool import Pool

    from ccg_pipeline.dag_support import WRITERS_POOL, task_settings

    slots = writer_slots(task_settings())
    Pool.create_or_update_pool(
        WRITERS_POOL,
        slots,
        "warehouse writers side by side (1 on SQLite)",
        include_deferred=False,
    )
    log.info("pool %s: %d slot(s)", WRITERS_POOL, slots)
    return slots
