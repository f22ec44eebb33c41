"""The ingest lanes the DAG runs side by side (portal then auth logs, CRM, web logs), as separate
processes writing to one warehouse at the same time, load the same rows per table as one after
another.

On SQLite this was a real failure: a batch's deferred transaction read first, another process
committed, and the upgrade to a write lock failed at once with "database is locked"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import stage_child
from helpers import env_for

from ccg_pipeline.devtools.bulk import BulkScale, generate_bulk
from ccg_pipeline.warehouse import migrate, schema
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration

CHILD = Path(stage_child.__file__)
AS_OF = stage_child.AS_OF
LANES = (("portal", "auth_logs"), ("crm",), ("web_logs",))


def _lane_command(names: tuple[str, ...]) -> str:
    """One shell line running a lane's sources one after another, as the DAG's dependencies do."""
    return " && ".join(f"{sys.executable} {CHILD} ingest:{n} run" for n in names)


def _personal_counts(url: str) -> dict[str, int]:
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in schema.metadata.sorted_tables
                if t.schema == schema.PERSONAL
            }
    finally:
        engine.dispose()


# Enough rows that each batch's transaction lasts long enough for the lanes' to overlap.
SCALE = BulkScale(
    companies=300, persons=3_000, crm_events=30_000, log_lines=60_000, auth_lines=1_000, log_days=6
)


def test_side_by_side_lanes_load_what_one_after_another_loads(
    warehouse_url: str, another_warehouse_url: str, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    generate_bulk(sources, SCALE, as_of=AS_OF)
    for url in (warehouse_url, another_warehouse_url):
        engine = create_warehouse_engine(url)
        migrate.upgrade(engine)
        engine.dispose()

    lanes = [
        subprocess.Popen(
            ["sh", "-c", _lane_command(names)],
            env={**os.environ, **env_for(warehouse_url, sources, tmp_path / "home-parallel")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for names in LANES
    ]
    outputs = [lane.communicate(timeout=300)[0] for lane in lanes]
    for names, lane, output in zip(LANES, lanes, outputs, strict=True):
        assert lane.returncode == 0, f"lane {names} failed:\n{output[-3000:]}"

    for names in LANES:
        subprocess.run(
            ["sh", "-c", _lane_command(names)],
            env={
                **os.environ,
                **env_for(another_warehouse_url, sources, tmp_path / "home-sequential"),
            },
            check=True,
            capture_output=True,
            timeout=300,
        )
    side_by_side = _personal_counts(warehouse_url)
    one_after_another = _personal_counts(another_warehouse_url)
    assert side_by_side["web_access"] > 0 and side_by_side["crm_activities"] > 0
    assert side_by_side == one_after_another
