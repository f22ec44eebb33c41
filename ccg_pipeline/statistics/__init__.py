"""The statistics zone (N-AGG, N-ANON): build in staging, then publish in one swap.

`build_in_staging` writes every table to `staging.build_*` with a manifest naming the run;
`publish` copies the staged tables over the published ones in a single transaction, only when
this run's tables all passed the validation gate, so analysts see the old version or the new
one, never a mix and never an unvalidated one. The stage as the DAG runs it (build, the gate,
publish, under the stage lock) is `ccg_pipeline.publication`, above this package and the gate.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ccg_pipeline import faults, purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import create_warehouse_engine, write_transaction
from ccg_pipeline.warehouse.sql import audit, upsert_row

log = logging.getLogger(__name__)


class PublicationRefused(RuntimeError):
    """Publication was asked for a build that is not this run's, or that did not pass validation."""


@dataclass(frozen=True)
class Publication:
    run_id: str
    as_of: dt.date
    tables: dict[str, int]
    analyst_file: Path | None


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as plain Python values (NA -> None), which every DB driver accepts."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _report_row(run_id: str, as_of: dt.date, built: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "table_name": built.build.name.removeprefix("build_"),
        "as_of": as_of,
        "rows_published": len(built.frame),
        "cells": built.cells,
        "cells_suppressed_primary": built.primary,
        "cells_suppressed_secondary": built.secondary,
        "records_in": built.records_in,
        "records_suppressed": built.records_suppressed,
        "generalisation": json.dumps(built.generalisation, sort_keys=True),
        "precision_loss": built.precision_loss,
        "min_group_size": built.min_group_size,
        "min_l_diversity": built.min_l_diversity,
        "failures": "not validated yet",
        "passed": False,
    }


def build_in_staging(
    engine: Engine, as_of: dt.date, run_id: str, *, cell_key_secret: str | None = None
) -> dict[str, int]:
    """Rebuild every staging table for `as_of` in one transaction (rerunnable). Returns rows.
    `cell_key_secret` keys the perturbation's record keys (default: the pseudonymisation key)."""
    from ccg_pipeline.statistics import freeze
    from ccg_pipeline.statistics.build import BUILDERS, PROCESSINGS, StatisticsContext

    notice = load_notice()
    secret = cell_key_secret or Settings.from_env().pseudonym_key
    rows: dict[str, int] = {}
    with purposes.violations_recorded(engine, run_id, as_of), write_transaction(engine) as conn:
        ctx = StatisticsContext.create(conn, notice, as_of, secret)
        for name, builder in BUILDERS.items():
            # Each table is built within its declared purpose (N-BASIS), statement by statement.
            with purposes.scope(PROCESSINGS[name]) as read:
                table = builder(ctx)
            purposes.record(conn, read, run_id=run_id, as_of=as_of)
            built = freeze.release(conn, table, as_of)
            faults.reach(f"statistics.build.{name}", conn, backend_of(conn).cut_connection)
            conn.execute(sa.delete(built.build))
            if len(built.frame):
                conn.execute(sa.insert(built.build), _records(built.frame))
            upsert_row(
                conn,
                s.build_manifest,
                {
                    "table_name": name,
                    "run_id": run_id,
                    "as_of": as_of,
                    "rows_built": len(built.frame),
                },
            )
            upsert_row(conn, s.statistics_reports, _report_row(run_id, as_of, built))
            rows[name] = len(built.frame)
            log.info(
                "built staging.%s: %d rows (%d of final periods, unchanged), %d cells perturbed, "
                "%d cells suppressed (%d primary, %d secondary), %d records dropped by local "
                "suppression",
                built.build.name,
                len(built.frame),
                built.frozen_rows,
                built.perturbed,
                built.primary + built.secondary,
                built.primary,
                built.secondary,
                built.records_suppressed,
            )
    return rows


def _assert_publishable(conn: Connection, run_id: str) -> dt.date:
    expected = {published.name for _build, published in s.PUBLISHED}
    manifest = conn.execute(sa.select(s.build_manifest)).all()
    if {m.table_name for m in manifest if m.run_id == run_id} != expected:
        raise PublicationRefused(f"the staging build is not complete for run {run_id}")
    r = s.statistics_reports
    passed = conn.execute(
        sa.select(r.c.table_name).where(r.c.run_id == run_id, r.c.passed.is_(True))
    ).all()
    if {row.table_name for row in passed} != expected:
        raise PublicationRefused(f"run {run_id} has tables that did not pass validation")
    return next(m.as_of for m in manifest if m.run_id == run_id)


def publish(engine: Engine, run_id: str, *, export_to: Path | None = None) -> Publication:
    """Swap the validated staging tables in, all in one transaction."""
    from ccg_pipeline.statistics import freeze

    notice = load_notice()
    tables: dict[str, int] = {}
    with write_transaction(engine) as conn:
        as_of = _assert_publishable(conn, run_id)
        for build, published in s.PUBLISHED:
            conn.execute(sa.delete(published))
            columns = [c.name for c in published.columns]
            conn.execute(
                sa.insert(published).from_select(columns, sa.select(*(build.c[c] for c in columns)))
            )
            tables[published.name] = conn.execute(
                sa.select(sa.func.count()).select_from(published)
            ).scalar_one()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        upsert_row(
            conn,
            s.publications,
            {
                "run_id": run_id,
                "as_of": as_of,
                "published_at": now,
                "k": notice.settings.k_anonymity,
                "min_cell": notice.settings.min_cell_count,
                "tables": json.dumps(tables, sort_keys=True),
            },
        )
        frozen_now = freeze.record(conn, as_of, run_id)
        audit(
            conn,
            run_id=run_id,
            action="publish_statistics",
            table_name="statistics.*",
            row_count=sum(tables.values()),
            at=dt.datetime.combine(as_of, dt.time()),
        )
        backend_of(conn).set_up_analyst_access(conn)
    analyst_file = None
    if backend_of(engine).analyst_receives_a_file:
        backend_of(engine).checkpoint(engine)
        analyst_file = export_statistics_file(engine, export_to) if export_to else None
    log.info(
        "published statistics as of %s for run %s: %s; %d period(s) final from now on",
        as_of,
        run_id,
        tables,
        frozen_now,
    )
    return Publication(run_id, as_of, tables, analyst_file)


def analyst_file(settings: Settings) -> Path:
    """Where the SQLite statistics file analysts receive is written."""
    return settings.home / "analyst" / "statistics.sqlite"


def export_statistics_file(engine: Engine, target: Path) -> Path:
    """Where zones are files (SQLite): a self-contained copy of the statistics zone for analysts,
    then an atomic rename, so they never receive another zone or a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    if not backend_of(engine).export_zone(engine, s.STATISTICS, partial):
        raise ValueError(f"the {backend_of(engine).name} warehouse keeps no zone in a file")
    faults.reach("statistics.export")
    os.replace(partial, target)
    return target


def run_example(settings: Settings, table: str | None = None) -> tuple[str, list[str], list[tuple]]:
    """Run a data-dictionary example as an analyst would: on SQLite against the exported file
    alone (read-only), on PostgreSQL with only the statistics schema on the search path."""
    import sqlite3

    from ccg_pipeline.statistics.dictionary import DEMO_EXAMPLE, EXAMPLES

    name = table or DEMO_EXAMPLE
    if name not in EXAMPLES:
        raise ValueError(f"no example for table {name!r}; known: {sorted(EXAMPLES)}")
    title, query = EXAMPLES[name]
    if backend_of(settings.warehouse_url).analyst_receives_a_file:
        path = analyst_file(settings)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist yet: publish statistics first")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            cursor = db.execute(query)
            return title + "\n" + query, [d[0] for d in cursor.description], cursor.fetchall()
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SET search_path TO {s.STATISTICS}"))
            result = conn.execute(sa.text(query))
            return title + "\n" + query, list(result.keys()), [tuple(r) for r in result]
    finally:
        engine.dispose()


def render_example(settings: Settings, table: str | None = None) -> str:
    heading, columns, rows = run_example(settings, table)
    cells = [columns, *[["NULL" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return f"{heading}\n\n" + "\n".join(lines) + f"\n({len(rows)} rows)"
