"""The special-category sweep (N-NOSPECIAL): free text in processing that holds special-category
or criminal-offence content leaves processing for quarantine.

Ingest already quarantines such CRM notes as it loads them; this sweep catches what is in the
personal zone anyway (a note loaded before the lexicon knew a word, an export that bypassed the
check). It runs as its own task before the evidence, which only reads: the N-NOSPECIAL check
fails for the run whose sweep moved anything, since the content was in processing until then.

A hit is copied to `personal.quarantine` (reason `special_category: <categories>`, source ref
`special-category sweep <run id>`), deleted from `personal.crm_activities`, and its key retired
so a re-ingest of the same export does not load it again; one audit row counts it. Idempotent: a
retry finds nothing left to move. Only counts leave this module.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.purposes import declare_obligation, purpose_of
from ccg_pipeline.retention.deadlines import end_of_day
from ccg_pipeline.scan.special import special_categories
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import STREAM_CHUNK_ROWS, in_chunks
from ccg_pipeline.warehouse.engine import write_transaction
from ccg_pipeline.warehouse.locks import stage_lock
from ccg_pipeline.warehouse.migrate import migrated
from ccg_pipeline.warehouse.sql import audit, insert_for

log = logging.getLogger(__name__)


def sweep_ref(run_id: str) -> str:
    """The quarantine `source_ref` of what a run's sweep moved."""
    return f"special-category sweep {run_id}"


def free_text_query() -> sa.Select:
    a = s.crm_activities
    return sa.select(
        a.c.activity_id,
        a.c.crm_contact_id,
        a.c.subject_id,
        a.c.subject_line,
        a.c.body,
        a.c.occurred_at,
        a.c.export_date,
    ).where(sa.or_(a.c.body.is_not(None), a.c.subject_line.is_not(None)))


@dataclass
class FreeTextScan:
    scanned: int = 0
    # (row, categories found) per record with a hit.
    hits: list[tuple[Any, set[str]]] = field(default_factory=list)
    by_category: Counter[str] = field(default_factory=Counter)


def scan_free_text(conn: Connection) -> FreeTextScan:
    """Every CRM note and enquiry in processing, read through the special-category lexicon."""
    scan = FreeTextScan()
    # A statement option: on the connection it would stay on for later statements.
    query = free_text_query().execution_options(yield_per=STREAM_CHUNK_ROWS)
    for row in conn.execute(query):
        scan.scanned += 1
        found = special_categories(row.subject_line) | special_categories(row.body)
        if found:
            scan.hits.append((row, found))
            scan.by_category.update(found)
    return scan


# N-BASIS: reading free text to find what s.2 says is never collected, and quarantining it, keeps
# the notice's promise (s.2, s.7) under the legal obligation.
SPECIAL_CATEGORY_SWEEP = declare_obligation(
    "retention.special_categories",
    "security_and_accountability",
    "finds special-category text in CRM notes and moves it to quarantine",
)


@purpose_of(SPECIAL_CATEGORY_SWEEP)
def run_special_category_sweep(settings: Settings, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """The task `ccg_evidence` runs before its checks. It deletes from the personal zone, so it
    takes retention's stage lock: it never runs beside a retention sweep."""
    url = settings.warehouse_url
    with (
        stage_lock(url, "retention"),
        migrated(url) as engine,
        purposes.judged(engine, SPECIAL_CATEGORY_SWEEP, run_id, as_of),
    ):
        outcome = quarantine_special_categories(engine, as_of, run_id)
    log.info("special-category sweep as of %s: %s", as_of, outcome)
    return outcome


def quarantine_special_categories(engine: Engine, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """The sweep: move every hit to quarantine in one transaction; returns counts."""
    with write_transaction(engine) as conn:
        scan = scan_free_text(conn)
        moved = _move_to_quarantine(conn, scan.hits, as_of, run_id) if scan.hits else 0
    return {
        "free_text_records_scanned": scan.scanned,
        "moved_to_quarantine": moved,
        "by_category": dict(sorted(scan.by_category.items())),
    }


def _move_to_quarantine(
    conn: Connection, hits: list[tuple[Any, set[str]]], as_of: dt.date, run_id: str
) -> int:
    a, q, rk = s.crm_activities, s.quarantine, s.retired_keys
    now = end_of_day(as_of)
    rows = [
        {
            "source": "crm.activities",
            "source_ref": sweep_ref(run_id),
            "record_ref": str(row.activity_id),
            "reason": "special_category: " + ", ".join(sorted(found)),
            "raw_record": json.dumps(
                {k: None if v is None else str(v) for k, v in row._mapping.items()}
            ),
            "run_id": run_id,
            "quarantined_at": now,
        }
        for row, found in hits
    ]
    conn.execute(
        insert_for(conn, q).on_conflict_do_nothing(
            index_elements=["source", "source_ref", "record_ref"]
        ),
        rows,
    )
    conn.execute(
        insert_for(conn, rk).on_conflict_do_nothing(index_elements=["table_name", "key"]),
        [
            {
                "table_name": a.name,
                "key": str(row.activity_id),
                "rule_id": "special_category",
                # Ingest reloads a row that changed after its retirement day; an event dated
                # after the as-of day must not count as changed.
                "retired_on": max(as_of, row.occurred_at.date()),
            }
            for row, _ in hits
        ],
    )
    ids = [row.activity_id for row, _ in hits]
    deleted = sum(
        conn.execute(sa.delete(a).where(a.c.activity_id.in_(chunk))).rowcount
        for chunk in in_chunks(ids)
    )
    audit(
        conn,
        run_id=run_id,
        action="quarantine",
        table_name=f"{a.schema}.{a.name}",
        row_count=deleted,
        at=now,
        rule_id="special_category",
    )
    return deleted
