"""Helpers for integration tests: run a real DAG, fingerprint warehouse state."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ccg_pipeline.config import Settings
from ccg_pipeline.warehouse import migrate, schema
from ccg_pipeline.warehouse.engine import create_warehouse_engine

PERSONAL_TABLES = [t for t in schema.INGESTED_TABLES if t.schema == schema.PERSONAL]


def run_dag(
    monkeypatch: pytest.MonkeyPatch,
    dag_id: str,
    when: dt.datetime,
    env: dict[str, str],
    conf: dict | None = None,
) -> Any:
    """A real Airflow DAG run via dag.test(), with the CCG_* settings given in `env`."""
    from ccg_pipeline.dagrun import run_dag as _run

    monkeypatch.setenv("CCG_TASK_RETRIES", "0")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return _run(dag_id, when, conf)


def state_of(run: Any) -> str:
    """'success', 'failed', ... for a DagRun or TaskInstance state."""
    return str(run.state).rsplit(".", 1)[-1].lower()


def env_for(warehouse_url: str, sources: Path, home: Path) -> dict[str, str]:
    return {
        "CCG_WAREHOUSE_URL": warehouse_url,
        "CCG_SOURCE_DIR": str(sources),
        "CCG_HOME": str(home),
    }


def fingerprint(warehouse_url: str, tables: list[sa.Table] = PERSONAL_TABLES) -> dict[str, str]:
    """Order-independent digest of every row of each table (run ids excluded)."""
    engine = create_warehouse_engine(warehouse_url)
    out = {}
    try:
        with engine.connect() as conn:
            for table in tables:
                columns = [c for c in table.columns if c.name not in ("run_id", "quarantine_id")]
                rows = sorted(repr(tuple(r)) for r in conn.execute(sa.select(*columns)))
                out[f"{table.schema}.{table.name}"] = (
                    f"{len(rows)}:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
                )
    finally:
        engine.dispose()
    return out


def query(warehouse_url: str, sql: str) -> list[tuple]:
    engine = create_warehouse_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def migrated_settings(url: str, sources: Path, home: Path) -> Settings:
    """Settings for a freshly migrated warehouse at `url` reading `sources`, home `home`."""
    engine = create_warehouse_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return Settings.from_env(
        {"CCG_HOME": str(home), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(sources)}
    )
