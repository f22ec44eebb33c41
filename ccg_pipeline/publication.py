"""The statistics stage as `ccg_statistics` runs it: build in staging, the validation gate,
publish, one step at a time under the stage lock.

`build_statistics` writes every table to `staging.build_*` with a manifest naming the run
(`ccg_pipeline.statistics`); `validate_statistics` runs the validation gate
(`ccg_pipeline.validation`: a GX suite per table, for columns, types, ranges, identifiers, k and
small cells, and the release audit) and records the outcome in `ops.statistics_reports` and
`ops.validation_results`; `publish_statistics` swaps the staged tables in, only when this run's
tables all passed. This module sits above both packages: the gate reads what statistics
defines, and statistics never imports the gate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ccg_pipeline import purposes
from ccg_pipeline.config import Settings
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.purposes import Kind, NotAProcessing, declare, purpose_of
from ccg_pipeline.statistics import analyst_file, build_in_staging, publish
from ccg_pipeline.statistics.build import PROCESSINGS
from ccg_pipeline.validation.gate import validate_staging
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine
from ccg_pipeline.warehouse.locks import stage_lock


@contextmanager
def _statistics_run(settings: Settings) -> Iterator[Engine]:
    """The warehouse, for one statistics step at a time: staging holds one build."""
    url = settings.warehouse_url
    with stage_lock(url, "statistics"), migrate.migrated(url) as engine:
        yield engine


@purpose_of(NotAProcessing("reads the release ledger (dates), no personal row"))
def current_release_day(settings: Settings) -> dt.date | None:
    """The as-of day of the newest publication (None before the first): what a rebuild for a
    changed population (an erasure, a restriction, an objection) is for. Rebuilding as of the
    request run's own day would date the release, and the evidence after it, ahead of the
    daily cycle: before 03:00 UTC that day's retention sweep has not run yet."""
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            day = conn.execute(sa.select(sa.func.max(s.publications.c.as_of))).scalar()
    finally:
        engine.dispose()
    return None if day is None else dt.date.fromisoformat(str(day)[:10])


@purpose_of(tuple(PROCESSINGS.values()))  # each table within its own declared purpose
def build_statistics(settings: Settings, as_of: dt.date, run_id: str) -> dict[str, int]:
    with _statistics_run(settings) as engine:
        return build_in_staging(engine, as_of, run_id, cell_key_secret=settings.pseudonym_key)


# N-BASIS: the gate reads the personal zone's names, addresses and numbers to prove that none is
# published (N-ANON), under the legal obligation of s.7.
KNOWN_IDENTIFIER_SCAN = declare(
    "validation.known_identifiers",
    purpose="security_and_accountability",
    basis=LawfulBasis.LEGAL_OBLIGATION,
    kind=Kind.STAGE,
    categories=("identity", "contact"),
    description="the validation gate's index of identifiers the personal zone holds",
)


@purpose_of(KNOWN_IDENTIFIER_SCAN)
def validate_statistics(settings: Settings, run_id: str) -> dict[str, Any]:
    """The validation gate on this run's staging build; raises `ValidationGateFailed`."""
    with _statistics_run(settings) as engine:
        as_of = _build_day(engine, run_id)
        with purposes.judged(engine, KNOWN_IDENTIFIER_SCAN, run_id, as_of):
            return validate_staging(engine, run_id, settings.home).summary()


def _build_day(engine: Engine, run_id: str) -> dt.date:
    """The as-of day of a staging build (today's for a run that built nothing)."""
    m = s.build_manifest
    with engine.connect() as conn:
        day = conn.execute(sa.select(sa.func.max(m.c.as_of)).where(m.c.run_id == run_id)).scalar()
    return day or dt.datetime.now(dt.UTC).date()


@purpose_of(NotAProcessing("swaps the validated anonymised tables in; reads no personal row"))
def publish_statistics(settings: Settings, run_id: str) -> dict[str, Any]:
    with _statistics_run(settings) as engine:
        publication = publish(engine, run_id, export_to=analyst_file(settings))
    return {
        "as_of": publication.as_of.isoformat(),
        "tables": publication.tables,
        "analyst_file": str(publication.analyst_file) if publication.analyst_file else None,
    }
