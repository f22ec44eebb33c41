"""The bulk upsert behind every ingest, on both backends, including PostgreSQL's COPY path."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ccg_pipeline.ingest.common import upsert
from ccg_pipeline.warehouse import migrate, schema
from ccg_pipeline.warehouse.backend import PG_COPY_MIN_ROWS
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
AWKWARD = [
    "tab\there",
    "new\nline",
    "back\\slash",
    'quote"s',
    "\\N",
    "",
    "Åsa Öberg-Ünal",
    None,
    "car\rriage",
    "\\t not a tab",
]


def _contacts(n: int, export_date: dt.date, stage: str) -> list[dict]:
    return [
        {
            "crm_contact_id": i,
            "subject_id": i,
            "email": f"person{i}@example.com",
            "first_name": AWKWARD[i % len(AWKWARD)],
            "last_name": None,
            "phone": None,
            "job_title": None,
            "company_name": None,
            "country": "GB",
            "lifecycle_stage": stage,
            "marketing_status": "Marketing contact",
            "created_at": dt.datetime(2020, 1, 1, 12, 30, 15),
            "last_activity_at": None,
            "export_date": export_date,
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [10, PG_COPY_MIN_ROWS * 3])
def test_upsert_round_trips_values_and_never_rolls_back(warehouse_url: str, n: int) -> None:
    engine = create_warehouse_engine(warehouse_url)
    migrate.upgrade(engine)
    table = schema.crm_contacts
    newer = _contacts(n, dt.date(2026, 11, 23), "customer")
    with engine.begin() as conn:
        assert upsert(conn, table, newer, newer_than="export_date") == n
    with engine.begin() as conn:  # an older snapshot replayed: ignored
        upsert(conn, table, _contacts(n, dt.date(2026, 11, 22), "lead"), newer_than="export_date")
    with engine.connect() as conn:
        stored = {r.crm_contact_id: r for r in conn.execute(sa.select(table))}
    assert len(stored) == n
    assert {r.lifecycle_stage for r in stored.values()} == {"customer"}
    for i in range(len(AWKWARD)):
        assert stored[i].first_name == AWKWARD[i], repr(AWKWARD[i])
    assert stored[1].created_at == dt.datetime(2020, 1, 1, 12, 30, 15)
    with engine.begin() as conn:  # a newer snapshot wins
        upsert(conn, table, _contacts(n, dt.date(2026, 11, 24), "former"), newer_than="export_date")
    with engine.connect() as conn:
        stages = {s for (s,) in conn.execute(sa.select(table.c.lifecycle_stage))}
    assert stages == {"former"}
    engine.dispose()


def test_sqlite_fast_path_stores_exactly_what_sqlalchemy_would(tmp_path) -> None:
    """The SQLite upsert bypasses SQLAlchemy's per-row parameter handling; the stored text of
    every column (dates, datetimes with microseconds, NULLs) must not change because of it."""
    rows = _contacts(20, dt.date(2026, 11, 23), "customer")
    for i, row in enumerate(rows):
        row["last_activity_at"] = dt.datetime(2026, 1, 2, 3, 4, 5, i * 37_003) if i % 3 else None
    table = schema.crm_contacts
    stored = []
    for name, write in (
        ("fast", lambda conn: upsert(conn, table, [dict(r) for r in rows])),
        ("plain", lambda conn: conn.execute(sa.insert(table), [dict(r) for r in rows])),
    ):
        engine = create_warehouse_engine(f"sqlite:///{tmp_path / name}/main.db")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            write(conn)
        with engine.connect() as conn:
            columns = ", ".join(f"quote({c.name})" for c in table.columns)
            stored.append(
                conn.exec_driver_sql(
                    f"SELECT {columns} FROM personal.crm_contacts ORDER BY crm_contact_id"
                ).all()
            )
        engine.dispose()
    assert len(stored[0]) == 20
    assert stored[0] == stored[1]
