"""The fast benchmark generator: deterministic, exact counts, and files the real ingest reads."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import sqlite3
from pathlib import Path

import pytest
from source_digest import folder_digest

from ccg_pipeline.config import Settings
from ccg_pipeline.devtools.bulk import SCALES, BulkScale, generate_bulk
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.ingest.common import normalise_email
from ccg_pipeline.policy import load_data_map
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.unit
AS_OF = dt.date(2026, 11, 23)
TINY = BulkScale(
    companies=150, persons=1_500, crm_events=7_000, log_lines=6_000, auth_lines=300, log_days=3
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bulk")
    generate_bulk(out, TINY, seed=5, as_of=AS_OF)
    return out


def test_same_seed_same_files_other_seed_other_files(tiny: Path, tmp_path: Path) -> None:
    generate_bulk(tmp_path / "again", TINY, seed=5, as_of=AS_OF)
    generate_bulk(tmp_path / "other", TINY, seed=6, as_of=AS_OF)
    assert folder_digest(tmp_path / "again") == folder_digest(tiny)
    assert folder_digest(tmp_path / "other") != folder_digest(tiny)


def test_counts_are_exactly_the_scale(tiny: Path, tmp_path: Path) -> None:
    def csv_rows(name: str) -> int:
        with (tiny / "crm" / f"{name}_20261123.csv").open(newline="", encoding="utf-8") as fh:
            return sum(1 for _ in csv.reader(fh)) - 1

    assert csv_rows("contacts") == TINY.persons
    assert csv_rows("activities") == TINY.crm_events
    assert csv_rows("companies") == TINY.companies
    with sqlite3.connect(tiny / "portal.db") as db:
        assert db.execute("SELECT count(*) FROM companies").fetchone()[0] == TINY.companies
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] == TINY.users
    db.close()
    web = sorted((tiny / "logs" / "web").glob("access.log-*.gz"))
    assert [p.name for p in web] == [f"access.log-2026112{d}.gz" for d in (1, 2, 3)]
    assert sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in web) == TINY.log_lines
    auth = (tiny / "logs" / "auth").glob("auth-*.jsonl")
    assert sum(len(p.read_text().splitlines()) for p in auth) == TINY.auth_lines
    # The benchmark scales: S is a tenth of M on every source.
    s, m = SCALES["S"], SCALES["M"]
    for field in ("companies", "persons", "crm_events", "log_lines", "auth_lines"):
        assert getattr(m, field) == 10 * getattr(s, field)
    report = generate_bulk(tmp_path / "counts", TINY, seed=5, as_of=AS_OF)
    assert report.counts["crm_activities"] == TINY.crm_events


def test_population_has_the_cases_retention_turns_on(tiny: Path) -> None:
    with sqlite3.connect(tiny / "portal.db") as db:
        closed = [
            dt.date.fromisoformat(r[0][:10])
            for r in db.execute("SELECT closed_at FROM companies WHERE closed_at IS NOT NULL")
        ]
        emails = {normalise_email(r[0]) for r in db.execute("SELECT email FROM users")}
    db.close()
    ages = [(AS_OF - day).days / 365.25 for day in closed]
    assert any(a > 7 for a in ages) and any(a < 3 for a in ages)
    assert any(5.9 < a < 6 for a in ages) and any(6 < a < 6.1 for a in ages)
    with (tiny / "crm" / "contacts_20261123.csv").open(newline="", encoding="utf-8") as fh:
        contacts = list(csv.DictReader(fh))
    stages = {c["Lifecycle Stage"] for c in contacts}
    assert {"customer", "lead"} <= stages
    # Customers are in both systems, some with their email typed differently.
    crm = [c["Email"] for c in contacts if c["Lifecycle Stage"] == "customer"]
    assert {normalise_email(e) for e in crm} == emails
    assert any(e != e.strip().lower() for e in crm)
    assert any(c["Marketing Contact Status"] == "Unsubscribed" for c in contacts)


def test_the_real_ingest_reads_every_file(tiny: Path, tmp_path: Path) -> None:
    data_map = load_data_map()
    for name, source in (("contacts", "crm.contacts"), ("activities", "crm.activities")):
        with (tiny / "crm" / f"{name}_20261123.csv").open(encoding="utf-8") as fh:
            assert data_map.check_columns(source, next(csv.reader(fh))) == []
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = create_warehouse_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = Settings.from_env(
        {"CCG_HOME": str(tmp_path), "CCG_SOURCE_DIR": str(tiny), "CCG_WAREHOUSE_URL": url}
    )
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        summary = ingest_source(settings, source, run_id="t", window_start=None, window_end=end)
        assert summary["refused"] == []
        assert summary["rows_read"] > 0
        # A small share is malformed on purpose; everything else loads.
        assert summary["rows_quarantined"] <= 0.02 * summary["rows_read"] + 5
        assert summary["rows_loaded"] + summary["rows_quarantined"] >= 0.9 * summary["rows_read"]
