"""The synthetic sources are deterministic and cover the cases the notice's rules turn on."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import sqlite3
from pathlib import Path

import pytest
from source_digest import folder_digest

from ccg_pipeline.devtools.generate import GenerateOptions, generate
from ccg_pipeline.devtools.scenario import add_years as _add_years
from ccg_pipeline.ingest.common import normalise_email

pytestmark = pytest.mark.unit
AS_OF = dt.date(2026, 11, 23)


def test_same_seed_same_sources_other_seed_other_sources(tmp_path: Path) -> None:
    options = {
        "as_of": AS_OF,
        "companies": 25,
        "prospects": 10,
        "log_days": 1,
        "log_lines_per_day": 100,
    }
    generate(GenerateOptions(out=tmp_path / "a", seed=3, **options))
    generate(GenerateOptions(out=tmp_path / "b", seed=3, **options))
    generate(GenerateOptions(out=tmp_path / "c", seed=4, **options))
    assert folder_digest(tmp_path / "a") == folder_digest(tmp_path / "b")
    assert folder_digest(tmp_path / "a") != folder_digest(tmp_path / "c")


def test_population_covers_the_retention_edges(demo_sources: Path) -> None:
    with sqlite3.connect(demo_sources / "portal.db") as db:
        closed = [
            dt.date.fromisoformat(r[0][:10])
            for r in db.execute("SELECT closed_at FROM companies WHERE closed_at IS NOT NULL")
        ]
        active = db.execute("SELECT count(*) FROM companies WHERE closed_at IS NULL").fetchone()[0]
        portal_emails = {normalise_email(r[0]) for r in db.execute("SELECT email FROM users")}
    db.close()
    six_years_ago = _add_years(AS_OF, -6)
    assert active > 0
    assert any(six_years_ago < d <= six_years_ago + dt.timedelta(days=40) for d in closed), (
        "just under six years"
    )
    assert any(six_years_ago - dt.timedelta(days=40) <= d < six_years_ago for d in closed), (
        "just over six years"
    )
    assert any(d < _add_years(AS_OF, -7) for d in closed), "seven years and more"
    assert any(_add_years(AS_OF, -3) < d for d in closed), "recently ceased"

    contacts = list(
        csv.DictReader((demo_sources / "crm" / "contacts_20261123.csv").open(encoding="utf-8"))
    )
    stages = {c["Lifecycle Stage"] for c in contacts}
    assert {"customer", "lead"} <= stages, "customers and prospects who never bought"
    assert any(c["Marketing Contact Status"] == "Unsubscribed" for c in contacts), (
        "opted-out contacts"
    )
    raw_customer_emails = [c["Email"] for c in contacts if c["Lifecycle Stage"] == "customer"]
    assert any(e != e.strip().lower() for e in raw_customer_emails), (
        "emails differ in case or whitespace"
    )
    matched = {normalise_email(e) for e in raw_customer_emails if "@" in e} & portal_emails
    assert len(matched) >= len(portal_emails) * 0.9, "portal users are also CRM contacts"


def test_logs_are_rotated_daily_and_contain_some_malformed_lines(demo_sources: Path) -> None:
    web = sorted((demo_sources / "logs" / "web").glob("access.log-*.gz"))
    assert [p.name for p in web] == ["access.log-20261122.gz", "access.log-20261123.gz"]
    lines = gzip.decompress(web[-1].read_bytes()).decode().splitlines()
    assert all("23/Nov/2026" in line for line in lines if line.count('"') >= 6)
    assert any(line.count('"') < 6 for line in lines), "a small share of malformed lines"
    auth = (demo_sources / "logs" / "auth" / "auth-20261123.jsonl").read_text().splitlines()
    assert auth and auth[0].startswith("{")
