"""The soak's evolving world and its oracle's date arithmetic (no DAG runs)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sqlite3
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccg_pipeline.devtools.soak import customer_deadline, period_end
from ccg_pipeline.devtools.world import World, WorldOptions
from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention import deadlines

START = dt.date(2026, 3, 1)


def _world(tmp: Path, **options: object) -> World:
    return World(
        WorldOptions(start=START, companies=12, prospects=6, history_log_days=3, **options),  # type: ignore[arg-type]
        tmp / "sources",
        request_inbox=tmp / "inbox",
        outbox=tmp / "outbox",
    )


def _portal(tmp: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp / "sources" / "portal.db") as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def test_the_same_seed_gives_the_same_world(tmp_path: Path) -> None:
    worlds = [_world(tmp_path / name, requests_per_day=0.5) for name in ("a", "b")]
    for n in range(5):
        for world in worlds:
            world.advance(START + dt.timedelta(days=n))
    dumps = [_portal(tmp_path / name, "SELECT * FROM invoices ORDER BY id") for name in ("a", "b")]
    assert dumps[0] and dumps[0] == dumps[1]
    assert [r.file_name for r in worlds[0].requests] == [r.file_name for r in worlds[1].requests]


def test_days_advance_one_at_a_time(tmp_path: Path) -> None:
    world = _world(tmp_path)
    with pytest.raises(ValueError, match="one day at a time"):
        world.advance(START + dt.timedelta(days=1))


def test_the_portal_changes_in_place_and_updated_at_moves(tmp_path: Path) -> None:
    world = _world(tmp_path, joins_per_day=1.0)
    before = _portal(tmp_path, "SELECT count(*), max(updated_at) FROM companies")[0]
    world.advance(START)
    after = _portal(tmp_path, "SELECT count(*), max(updated_at) FROM companies")[0]
    assert after[0] == before[0] + 1
    assert after[1].startswith(START.isoformat())
    # The joining company is open: no last business day, so no deadline.
    newest = max(world.rows["companies"])
    assert world.last_business_days()[newest] is None


def test_a_ceased_customers_last_business_day_counts_payments_after_the_contract(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path)
    for company_id, last in world.last_business_days().items():
        if last is None:
            continue
        ends = [
            dt.date.fromisoformat(k["end_date"])
            for k in world.rows["contracts"].values()
            if k["company_id"] == company_id and k["end_date"]
        ]
        assert last >= max(ends)


def test_bad_data_days_and_their_repair(tmp_path: Path) -> None:
    faults = {
        START: "unknown_column",
        START + dt.timedelta(days=1): "truncated_gzip",
        START + dt.timedelta(days=2): "late_file",
        START + dt.timedelta(days=3): "duplicate_export",
    }
    world = _world(tmp_path, faults=faults)
    crm, web = tmp_path / "sources" / "crm", tmp_path / "sources" / "logs" / "web"
    world.advance(START)
    assert "Favourite Colour" in (crm / "contacts_20260301.csv").read_text().splitlines()[0]
    world.advance(START + dt.timedelta(days=1))
    # The refused export is sent again without the column; the cut gzip cannot be read.
    assert "Favourite Colour" not in (crm / "contacts_20260301.csv").read_text()
    with pytest.raises((EOFError, zlib.error)), gzip.open(web / "access.log-20260302.gz") as fh:
        fh.read()
    assert world.incomplete_log_days() == {START + dt.timedelta(days=1)}
    world.advance(START + dt.timedelta(days=2))
    assert gzip.decompress((web / "access.log-20260302.gz").read_bytes())  # sent again whole
    assert not (web / "access.log-20260303.gz").exists()  # two days late
    world.advance(START + dt.timedelta(days=3))
    assert (crm / "activities_20260304_resent.csv").read_bytes() == (
        crm / "activities_20260304.csv"
    ).read_bytes()
    world.advance(START + dt.timedelta(days=4))
    assert (web / "access.log-20260303.gz").exists()
    assert world.incomplete_log_days() == set()


def test_requests_are_valid_drop_folder_files_and_erasures_reach_the_crm(tmp_path: Path) -> None:
    world = _world(tmp_path, requests_per_day=1.0)
    world.advance(START)
    (request,) = world.requests
    body = json.loads((tmp_path / "inbox" / request.file_name).read_text())
    assert body["type"] == request.request_type and body["email"] == request.email
    assert body["received_at"].startswith(START.isoformat())
    # The pipeline's CRM erasure instruction (record ids): the next export leaves them out.
    contact_id = next(iter(world.contacts))
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "r1.json").write_text(
        json.dumps({"instruction": "erase", "crm_record_ids": [contact_id]})
    )
    report = world.advance(START + dt.timedelta(days=1))
    assert report.crm_erasures == 1
    export = (tmp_path / "sources" / "crm" / "contacts_20260302.csv").read_text()
    assert f"\n{contact_id}," not in export


RULE = next(r for r in load_notice().retention_rules if r.id == "customer_basic")


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31)), st.booleans())
def test_the_oracles_deadline_agrees_with_the_pipelines_own_arithmetic(
    last: dt.date, align: bool
) -> None:
    """Two formulations of the six-year rule, written apart: they agree on every day."""
    assert customer_deadline(last, align_to_year_end=align) == deadlines.deadline(
        last, RULE, align_to_year_end=align
    )


def test_the_oracles_deadline_at_its_edges() -> None:
    assert customer_deadline(dt.date(2020, 2, 29), align_to_year_end=False) == dt.date(2026, 2, 28)
    assert customer_deadline(dt.date(2020, 4, 5), align_to_year_end=True) == dt.date(2026, 4, 5)
    assert customer_deadline(dt.date(2020, 4, 6), align_to_year_end=True) == dt.date(2027, 4, 5)


@pytest.mark.parametrize(
    ("label", "end"),
    [
        ("2026-03-04", dt.date(2026, 3, 4)),
        ("2026-02", dt.date(2026, 2, 28)),
        ("2025-Q4", dt.date(2025, 12, 31)),
    ],
)
def test_period_labels_end_where_a_reader_expects(label: str, end: dt.date) -> None:
    assert period_end(label) == end


def test_the_scheduler_soak_expects_each_missed_interval_once() -> None:
    from ccg_pipeline.devtools.scheduled_soak import expected_intervals

    first = dt.date(2026, 11, 29)
    before_sweep = expected_intervals(first, dt.datetime(2026, 12, 7, 1, 30))
    # Ingest's intervals end at each midnight up to today's; retention's at 03:00 from the day
    # after the start up to the last 03:00 passed (yesterday's, at 01:30).
    assert before_sweep["ccg_ingest"] == [first + dt.timedelta(days=k) for k in range(8)]
    assert before_sweep["ccg_retention"] == [first + dt.timedelta(days=k) for k in range(1, 8)]
    after_sweep = expected_intervals(first, dt.datetime(2026, 12, 7, 3, 0))
    assert after_sweep["ccg_retention"][-1] == dt.date(2026, 12, 7)
    assert after_sweep["ccg_ingest"] == before_sweep["ccg_ingest"]
