"""`ccg breach-impact` on a warehouse loaded from the demo sources, on SQLite and PostgreSQL.

Every expected number is computed here from the rows themselves (pandas over plain SELECTs),
not by the module under test: subjects reached, their countries, address prefixes, and what
`--since` leaves in scope. The reports must hold no email, name or username the warehouse has.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from ccg_pipeline.breach import COUNTS_ONLY, TABLES, assess, assess_file, assess_table
from ccg_pipeline.cli import main
from ccg_pipeline.config import Settings
from ccg_pipeline.ingest import ingest_source
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration
START, END = dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    demo_sources: Path,
) -> Iterator[tuple[str, sa.Engine]]:
    """One warehouse per backend, every demo source ingested, shared by this module's tests
    (which only read it)."""
    home = tmp_path_factory.mktemp(f"breach-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'warehouse' / 'main.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"wh_{uuid.uuid4().hex[:12]}")
    engine = create_warehouse_engine(url)
    migrate.upgrade(engine)
    settings = Settings.from_env(
        {"CCG_HOME": str(home), "CCG_WAREHOUSE_URL": url, "CCG_SOURCE_DIR": str(demo_sources)}
    )
    for source in ("portal", "crm", "web_logs", "auth_logs"):
        ingest_source(settings, source, run_id="ingest", window_start=START, window_end=END)
    yield url, engine
    engine.dispose()


def _frame(engine: sa.Engine, table: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(f"SELECT * FROM {table}"), conn)


def _expected_countries(engine: sa.Engine, subject_ids: set[int]) -> dict[str, int]:
    """Per subject: the smallest country of a company they are a portal user of, else of their
    CRM contact record, else unknown."""
    users = _frame(engine, "personal.portal_users")
    companies = _frame(engine, "personal.companies")
    contacts = _frame(engine, "personal.crm_contacts")
    by_company = (
        users.merge(companies, on="company_id").groupby("subject_id")["country"].min().to_dict()
    )
    by_contact = contacts.dropna(subset=["country"]).groupby("subject_id")["country"].min()
    counts: dict[str, int] = {}
    for subject in subject_ids:
        country = by_company.get(subject) or by_contact.get(subject) or "unknown"
        counts[country] = counts.get(country, 0) + 1
    return counts


def _since_between(values: pd.Series) -> dt.date:
    """A day that leaves some, but not all, of the rows in scope."""
    days = sorted(pd.to_datetime(values).dt.date.unique())
    assert len(days) >= 2, "the demo data spans several days"
    return days[len(days) // 2]


def test_every_live_personal_column_is_mapped(loaded: tuple[str, sa.Engine]) -> None:
    _url, engine = loaded
    inspector = sa.inspect(engine)
    live = {
        f"personal.{t}.{c['name']}"
        for t in inspector.get_table_names(schema="personal")
        for c in inspector.get_columns(t, schema="personal")
    }
    mapped = {f"{t}.{c}" for t, spec in TABLES.items() for c in spec.columns}
    assert live - mapped == set()


def test_portal_users(loaded: tuple[str, sa.Engine]) -> None:
    _url, engine = loaded
    users = _frame(engine, "personal.portal_users")
    expected = set(users["subject_id"])

    report = assess_table(engine, "personal.portal_users")

    assert report.rows_total == report.rows_in_scope == len(users)
    assert report.subjects_affected == len(expected) > 0
    assert report.countries == _expected_countries(engine, expected)
    assert sum(report.countries.values()) == len(expected)
    assert {"contact", "identity", "profile", "technical"} <= set(report.categories)
    assert "email" in report.categories["contact"]
    assert report.financial is False


def _companies_of_payments(payments: pd.DataFrame, invoices: pd.DataFrame) -> set:
    """A payment's company: its own key (looked up at ingest) or its invoice's."""
    merged = payments.merge(
        invoices[["invoice_id", "company_id"]],
        on="invoice_id",
        how="left",
        suffixes=("", "_of_invoice"),
    )
    return set(merged["company_id"].dropna()) | set(merged["company_id_of_invoice"].dropna())


def test_payments_are_financial(loaded: tuple[str, sa.Engine]) -> None:
    _url, engine = loaded
    payments = _frame(engine, "personal.payments")
    invoices = _frame(engine, "personal.invoices")
    users = _frame(engine, "personal.portal_users")
    companies = _companies_of_payments(payments, invoices)
    expected = set(users[users["company_id"].isin(companies)]["subject_id"])

    report = assess_table(engine, "personal.payments")

    assert report.rows_in_scope == len(payments)
    assert report.subjects_affected == len(expected) > 0
    assert report.countries == _expected_countries(engine, expected)
    assert report.financial is True
    assert {"card_masked", "bank_account_masked"} <= set(report.financial_evidence)
    assert "Financial:   YES" in report.render()


def test_web_access_subjects_not_identifiable(loaded: tuple[str, sa.Engine]) -> None:
    _url, engine = loaded
    web = _frame(engine, "personal.web_access")
    prefixes = web["ip_prefix"].nunique()

    report = assess_table(engine, "personal.web_access")

    assert report.rows_in_scope == len(web) > 0
    assert report.subjects_identifiable is False and report.subjects_affected is None
    assert report.addresses == prefixes
    assert f"subjects not identifiable; {prefixes:,} distinct address prefixes" in report.render()
    assert report.countries == {}
    assert {"technical", "usage"} <= set(report.categories)


def test_since_reduces_the_count(loaded: tuple[str, sa.Engine]) -> None:
    _url, engine = loaded
    users = _frame(engine, "personal.portal_users")
    since = _since_between(users["updated_at"])
    in_scope = users[pd.to_datetime(users["updated_at"]) >= pd.Timestamp(since)]
    expected = set(in_scope["subject_id"])
    assert 0 < len(expected) < users["subject_id"].nunique()

    report = assess_table(engine, "personal.portal_users", since)

    assert report.since_column == "updated_at"
    assert report.rows_in_scope == len(in_scope)
    assert report.subjects_affected == len(expected)
    assert report.countries == _expected_countries(engine, expected)

    payments = _frame(engine, "personal.payments")
    invoices = _frame(engine, "personal.invoices")
    since = _since_between(payments["updated_at"])
    recent = payments[pd.to_datetime(payments["updated_at"]) >= pd.Timestamp(since)]
    companies = _companies_of_payments(recent, invoices)
    expected = set(users[users["company_id"].isin(companies)]["subject_id"])
    report = assess_table(engine, "personal.payments", since)
    assert report.rows_in_scope == len(recent) < len(payments)
    assert report.subjects_affected == len(expected)

    web = _frame(engine, "personal.web_access")
    since = _since_between(web["requested_at"])
    recent = web[pd.to_datetime(web["requested_at"]) >= pd.Timestamp(since)]
    report = assess_table(engine, "personal.web_access", since)
    assert report.rows_in_scope == len(recent) < len(web)
    assert report.addresses == recent["ip_prefix"].nunique()


def test_a_leaked_crm_export_is_matched_to_the_warehouse(
    loaded: tuple[str, sa.Engine], demo_sources: Path
) -> None:
    _url, engine = loaded
    export = demo_sources / "crm" / "contacts_20261123.csv"
    with export.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    emails = {row["Email"].strip().lower() for row in rows if row["Email"]}
    known = set(_frame(engine, "personal.subjects")["email_norm"])
    assert emails & known and emails - known, "the export has known and unknown addresses"

    report = assess_file(export, engine)

    assert report.identifiers_matched["email"] == len(emails & known)
    assert report.identifiers_unmatched["email"] == len(emails - known)
    subjects = _frame(engine, "personal.subjects")
    by_email = set(subjects[subjects["email_norm"].isin(emails)]["subject_id"])
    # Phone numbers compared on their last nine digits; one shared by several people counts
    # for none of them.
    people = pd.concat(
        _frame(engine, f"personal.{t}")[["phone", "subject_id"]]
        for t in ("portal_users", "crm_contacts")
    ).dropna()
    people["key"] = people["phone"].str.replace(r"\D", "", regex=True).str[-9:]
    owners = people[people["key"].str.len() == 9].groupby("key")["subject_id"].unique()
    leaked_keys = {re.sub(r"\D", "", r["Phone Number"])[-9:] for r in rows if r["Phone Number"]}
    by_phone = {int(ids[0]) for key, ids in owners.items() if key in leaked_keys and len(ids) == 1}
    assert by_email and by_phone
    assert report.subjects_affected == len(by_email | by_phone)
    assert {"contact", "identity", "marketing"} <= set(report.categories)


def _identifiers(engine: sa.Engine) -> set[str]:
    """Every email, username, name, phone number and company name the warehouse holds."""
    values: set[str] = set()
    users = _frame(engine, "personal.portal_users")
    contacts = _frame(engine, "personal.crm_contacts")
    for frame in (users, contacts):
        for column in ("email", "first_name", "last_name", "phone"):
            values |= set(frame[column].dropna())
    values |= set(users["username"].dropna())
    values |= set(_frame(engine, "personal.subjects")["email_norm"])
    values |= set(_frame(engine, "personal.companies")["name"])
    values |= set(_frame(engine, "personal.crm_companies")["name"])
    return {v for v in values if len(v) >= 3}


def test_no_report_holds_an_identifier_from_the_warehouse(
    loaded: tuple[str, sa.Engine],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine = loaded
    identifiers = _identifiers(engine)
    assert len(identifiers) > 200
    outputs = []
    for table in TABLES:
        report = assess(table, engine, dt.date(2026, 1, 1))
        assert report.counts_only == COUNTS_ONLY
        outputs += [report.render(), report.to_json()]
    monkeypatch.setenv("CCG_WAREHOUSE_URL", url)
    for table in ("personal.portal_users", "personal.payments", "personal.web_access"):
        assert main(["breach-impact", "--source", table, "--format", "json"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["source"] == table
        outputs += [captured.out, captured.err]
    # Whole values anywhere (case-folded), and single-word values (names, usernames) as words
    # in their own case: the name "Per" must not appear, the report's word "per" may.
    raw = "\n".join(outputs)
    text = raw.casefold()
    words = set(re.findall(r"[\w.@+'-]+", raw))
    leaked = sorted(v for v in identifiers if v.casefold() in text and " " in v) + sorted(
        v for v in identifiers if v in words
    )
    assert leaked == []
