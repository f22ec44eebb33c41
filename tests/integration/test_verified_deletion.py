"""Verified deletion: after an erasure request and the retention sweep, the erased people's
identifiers are in no live table, in no byte of the SQLite database files after a checkpoint,
and in no byte of the PostgreSQL database's files after the retention DAG's VACUUM step.

Two people are erased: a prospect (deleted at once) and a customer contact whose company is
still within the six-year tax period (identity and contact data restricted by the erasure, then
deleted by the sweep when due). Their identifiers are chosen to be unique in the sources, so a
hit can only be a leftover of theirs.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import query

from ccg_pipeline import requests
from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source, lane_names
from ccg_pipeline.requests.intake import parse_submission, submit
from ccg_pipeline.retention import run_retention
from ccg_pipeline.retention.sweep import vacuum_personal_zone
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.backend import backend_of
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 24, 1)
DUE = dt.date(2045, 1, 1)  # long after every six-year period of the demo population


def _unique_people(url: str) -> list[dict[str, str]]:
    """A prospect and a customer contact whose surname, email and phone nobody else shares."""
    prospects = query(
        url,
        "SELECT email, last_name, phone FROM personal.crm_contacts WHERE subject_id NOT IN "
        "(SELECT subject_id FROM personal.portal_users) ORDER BY crm_contact_id",
    )
    customers = query(
        url,
        "SELECT u.email, u.last_name, u.phone, u.username FROM personal.portal_users u "
        "JOIN personal.crm_contacts c ON c.subject_id = u.subject_id ORDER BY u.user_id",
    )
    names = [r[0] or "" for r in query(url, "SELECT last_name FROM personal.crm_contacts")]
    names += [r[0] or "" for r in query(url, "SELECT last_name FROM personal.portal_users")]
    phones = [r[0] or "" for r in query(url, "SELECT phone FROM personal.crm_contacts")]
    phones += [r[0] or "" for r in query(url, "SELECT phone FROM personal.portal_users")]

    def unique(rows: list[tuple], copies: int) -> dict[str, str]:
        for row in rows:
            email, last_name, phone = row[:3]
            if not last_name or len(last_name) < 5 or not phone:
                continue
            if sum(last_name.lower() in n.lower() for n in names) > copies:
                continue
            if sum(phone in p for p in phones) > copies:
                continue
            person = {"email": email, "last_name": last_name, "phone": phone}
            return person | ({"username": row[3]} if len(row) > 3 else {})
        raise AssertionError("no person with unique identifiers in the demo population")

    # A customer contact is both a portal user and a CRM contact: two copies are theirs.
    return [unique(prospects, 1), unique(customers, 2)]


def _identifiers(person: dict[str, str]) -> list[bytes]:
    return [value.encode() for value in person.values()]


def _live_hits(url: str, needles: list[bytes]) -> list[str]:
    """zone.table.column cells that contain any identifier, in every table of every zone."""
    hits = []
    engine = create_warehouse_engine(url)
    try:
        with engine.connect() as conn:
            for table in s.metadata.sorted_tables:
                for column in table.columns:
                    if not isinstance(column.type, sa.String | sa.Text):
                        continue
                    for needle in needles:
                        found = conn.execute(
                            sa.select(sa.func.count())
                            .select_from(table)
                            .where(sa.func.lower(column).contains(needle.decode().lower()))
                        ).scalar_one()
                        if found:
                            hits.append(f"{table.fullname}.{column.name}")
    finally:
        engine.dispose()
    return hits


def _file_hits(files: list[Path], needles: list[bytes]) -> list[str]:
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [f"{path.name}: {needle.decode()[:3]}..." for needle in needles if needle in data]
    return hits


def _erase_and_sweep(url: str, sources: Path, home: Path) -> tuple[Settings, list[bytes]]:
    settings = Settings.from_env(
        {"CCG_HOME": str(home), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(sources)}
    )
    with migrate.migrated(url):
        pass
    for source in lane_names():
        ingest_source(settings, source, run_id="load", window_start=None, window_end=NOW)
    engine = create_warehouse_engine(url)
    vacuum_personal_zone(engine)  # planner statistics sample the columns, as autovacuum would
    engine.dispose()
    prospect, customer = _unique_people(url)
    needles = _identifiers(prospect) + _identifiers(customer)
    assert len(_live_hits(url, needles)) >= 8, "the identifiers are there before the erasure"
    engine = create_warehouse_engine(url)
    try:
        for person in (prospect, customer):
            submission = parse_submission(
                "erase", person["email"], None, received_at=NOW, source="cli"
            )
            requests.verify(engine, submit(engine, settings.pseudonym_key, submission), NOW)
        report = requests.process_requests(engine, settings, NOW)
        assert report.failed == [] and report.handled == {"erase": 2}
    finally:
        engine.dispose()
    # The customer's identity and contact data are restricted for tax, not yet deleted ...
    held = f"SELECT count(*) FROM personal.portal_users WHERE email = '{customer['email']}'"
    assert query(url, held) == [(1,)]
    # ... until the sweep finds them due.
    run_retention(settings, DUE, "retention-due")
    return settings, needles


def test_sqlite_erased_identifiers_leave_tables_and_file_bytes(
    demo_sources: Path, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    url = f"sqlite:///{tmp_path / 'warehouse' / 'main.db'}"
    _settings, needles = _erase_and_sweep(url, sources, tmp_path / "home")
    assert _live_hits(url, needles) == []
    engine = create_warehouse_engine(url)
    vacuum_personal_zone(engine, rewrite=True)  # the ccg_retention DAG's last task
    backend_of(engine).checkpoint(engine)
    engine.dispose()
    files = sorted((tmp_path / "warehouse").iterdir())
    assert {p.name for p in files} >= {"personal.db", "ops.db", "staging.db", "statistics.db"}
    assert _file_hits(files, needles) == []


@pytest.mark.postgres
def test_postgres_erased_identifiers_leave_tables_and_heap_files_after_vacuum(
    demo_sources: Path, tmp_path: Path, pg_server
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(demo_sources, sources)
    url = pg_server.create_database("verified_deletion")
    _settings, needles = _erase_and_sweep(url, sources, tmp_path / "home")
    assert _live_hits(url, needles) == []
    engine = create_warehouse_engine(url)
    try:
        vacuum_personal_zone(engine, rewrite=True)  # the ccg_retention DAG's last task
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")  # dirty pages written to the files
            oid = conn.exec_driver_sql(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).scalar_one()
    finally:
        engine.dispose()
    folder = pg_server.data_dir / "data" / "base" / str(oid)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files
    assert _file_hits(files, needles) == []
