"""An auditor's check of the six-year rule, with the truth read from the generated sources alone
(the portal database and the CRM export, by plain sqlite3 and csv), not from any pipeline code:
after ingest and the retention sweep, no row of a due company, and no record of its people
beyond what the policy keeps for people still in contact, is left in the personal zone or its
quarantine."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from helpers import migrated_settings, query

from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.retention import run_retention

pytestmark = pytest.mark.integration
START, END = dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)
AS_OF = dt.date(2026, 11, 23)
SIX_YEARS_BEFORE = dt.date(2020, 11, 23)  # ceased on or before this day: due on AS_OF
TWO_YEARS_BEFORE = dt.date(2024, 11, 23)


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None  # a value the generator damaged on purpose


def _due_companies(portal: Path) -> tuple[set[int], set[int]]:
    """(due, not due) company ids, from the portal's own tables."""
    db = sqlite3.connect(portal)
    try:
        last: dict[int, dt.date] = {}
        open_contract: set[int] = set()
        customers: set[int] = set()

        def saw(company: int, day: dt.date | None) -> None:
            if day is not None and (company not in last or day > last[company]):
                last[company] = day

        for company, end in db.execute("SELECT company_id, end_date FROM contracts"):
            customers.add(company)
            if end is None:
                open_contract.add(company)
            saw(company, _day(end))
        for company, closed in db.execute("SELECT id, closed_at FROM companies"):
            if closed:
                customers.add(company)
            saw(company, _day(closed))
        for company, issued in db.execute("SELECT company_id, issued_on FROM invoices"):
            saw(company, _day(issued))
        for company, paid in db.execute(
            "SELECT i.company_id, p.paid_at FROM payments p JOIN invoices i ON i.id = p.invoice_id"
        ):
            saw(company, _day(paid))
        every = {row[0] for row in db.execute("SELECT id FROM companies")}
    finally:
        db.close()
    due = {c for c in customers - open_contract if c in last and last[c] <= SIX_YEARS_BEFORE}
    return due, every - due


def _names(portal: Path) -> dict[tuple[str, str], set[int]]:
    db = sqlite3.connect(portal)
    try:
        rows = db.execute("SELECT id, name, country_code FROM companies").fetchall()
    finally:
        db.close()
    names: dict[tuple[str, str], set[int]] = {}
    for company, name, country in rows:
        names.setdefault((name.strip().lower(), country), set()).add(company)
    return names


def _people(portal: Path, companies: set[int]) -> set[str]:
    db = sqlite3.connect(portal)
    try:
        rows = db.execute("SELECT company_id, email FROM users").fetchall()
    finally:
        db.close()
    by_email: dict[str, set[int]] = {}
    for company, email in rows:
        by_email.setdefault(email.strip().lower(), set()).add(company)
    return {email for email, of in by_email.items() if of <= companies}


def _still_in_contact(crm: Path) -> set[str]:
    """Emails whose CRM record shows activity in the last two years (the policy keeps them as
    prospects from their company's deadline)."""
    newest = sorted(crm.glob("contacts_*.csv"))[-1]
    kept = set()
    with newest.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            last = _day(row.get("Last Activity Date")) or _day(row.get("Create Date"))
            if last is not None and last > TWO_YEARS_BEFORE:
                kept.add((row.get("Email") or "").strip().lower())
    return kept


def test_no_row_of_a_due_company_or_its_people_survives_the_sweep(
    demo_sources: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'wh' / 'main.db'}"
    settings = migrated_settings(url, demo_sources, tmp_path)
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        ingest_source(settings, source, run_id="ingest", window_start=START, window_end=END)
    due, kept = _due_companies(demo_sources / "portal.db")
    assert due and kept, "the generated world has both due and current customers"
    contracts = "SELECT DISTINCT company_id FROM personal.contracts"
    before = {c for (c,) in query(url, contracts)}
    run_retention(settings, AS_OF, "retention")

    ids = ",".join(str(c) for c in sorted(due))
    for table in ("companies", "portal_users", "contracts", "orders", "invoices", "payments"):
        left = query(url, f"SELECT count(*) FROM personal.{table} WHERE company_id IN ({ids})")
        assert left == [(0,)], table
    assert query(url, f"SELECT count(*) FROM personal.quarantine WHERE company_id IN ({ids})") == [
        (0,)
    ]
    # Nothing early: only due companies lost their contracts.
    after = {c for (c,) in query(url, contracts)}
    assert before - after <= due and before - after

    # The CRM record of a due company goes too, unless a company that is not due has the same
    # name and country (the export carries no key to tell the two records apart).
    names = _names(demo_sources / "portal.db")
    unambiguous = {key for key, ids in names.items() if ids <= due}
    crm = {
        (name.strip().lower(), country)
        for name, country in query(url, "SELECT name, country FROM personal.crm_companies")
    }
    assert not (crm & unambiguous)

    people = _people(demo_sources / "portal.db", due)
    gone = people - _still_in_contact(demo_sources / "crm")
    assert gone
    emails = {e for (e,) in query(url, "SELECT lower(trim(email)) FROM personal.crm_contacts")}
    emails |= {e for (e,) in query(url, "SELECT email_norm FROM personal.subjects")}
    emails |= {e for (e,) in query(url, "SELECT lower(trim(email)) FROM personal.portal_users")}
    assert not (gone & emails), f"{len(gone & emails)} people of due companies still held"
    # No raw quarantined record names a due company's person either.
    raw = " ".join(r for (r,) in query(url, "SELECT raw_record FROM personal.quarantine") if r)
    assert not [e for e in gone if e in raw.lower()]
