"""Compliance evidence: each clause check passing, and failing on data built to violate it, on
SQLite and PostgreSQL; "no data" (neither pass nor fail) on a fresh warehouse; the ccg_evidence
DAG end to end."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alert_sinks import start_webhook
from helpers import env_for, query, run_dag, state_of
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ccg_pipeline import evidence
from ccg_pipeline.config import Settings
from ccg_pipeline.evidence import checks
from ccg_pipeline.ingest.common import normalise_email, pseudonym
from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention import special
from ccg_pipeline.warehouse import migrate
from ccg_pipeline.warehouse import schema as s
from ccg_pipeline.warehouse.engine import create_warehouse_engine

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 23)
T0 = dt.datetime(2020, 1, 1)


class World:
    """A migrated, empty warehouse and helpers that add the few rows a scenario needs."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.settings = Settings.from_env({"CCG_HOME": str(home), "CCG_WAREHOUSE_URL": url})
        self.engine = create_warehouse_engine(url)
        migrate.upgrade(self.engine)
        self._next = 1

    def id(self) -> int:
        self._next += 1
        return self._next

    def insert(self, table: sa.Table, **row) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(table).values(**row))

    def subject(self, email: str) -> int:
        subject_id = self.id()
        key = pseudonym(self.settings.pseudonym_key, normalise_email(email))
        self.insert(
            s.subjects,
            subject_id=subject_id,
            email_norm=normalise_email(email),
            subject_key=key,
            first_seen_at=T0,
            updated_at=T0,
        )
        return subject_id

    def key_of(self, subject_id: int) -> str:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(s.subjects.c.subject_key).where(s.subjects.c.subject_id == subject_id)
            ).scalar_one()

    def company(self, *, closed_at: dt.datetime | None = None, invoiced: bool = True) -> int:
        company_id = self.id()
        self.insert(
            s.companies,
            company_id=company_id,
            name=f"Company {company_id}",
            country="GB",
            created_at=dt.datetime(2015, 1, 1),
            closed_at=closed_at,
            updated_at=closed_at or T0,
        )
        if invoiced:
            self.insert(
                s.invoices,
                invoice_id=self.id(),
                company_id=company_id,
                invoice_number=f"INV-{company_id}",
                issued_on=(closed_at or T0).date() - dt.timedelta(days=30),
                due_on=(closed_at or T0).date(),
                amount_minor=100_00,
                vat_minor=20_00,
                status="paid",
                updated_at=closed_at or T0,
            )
        return company_id

    def user(self, company_id: int, subject_id: int, email: str, **extra) -> None:
        self.insert(
            s.portal_users,
            user_id=self.id(),
            company_id=company_id,
            subject_id=subject_id,
            email=email,
            username=f"user{subject_id}",
            created_at=dt.datetime(2015, 2, 1),
            updated_at=T0,
            **extra,
        )

    def contact(self, subject_id: int, email: str, status: str, stage: str = "lead") -> int:
        contact_id = self.id()
        self.insert(
            s.crm_contacts,
            crm_contact_id=contact_id,
            subject_id=subject_id,
            email=email,
            first_name="Test",
            lifecycle_stage=stage,
            marketing_status=status,
            created_at=dt.datetime(2026, 1, 1),
            last_activity_at=dt.datetime(2026, 10, 1),
            export_date=AS_OF,
        )
        return contact_id

    def activity(
        self,
        contact_id: int,
        subject_id: int | None,
        kind: str,
        *,
        body: str | None = None,
        at: dt.datetime = dt.datetime(2026, 6, 1),
        channel: str | None = "email",
    ) -> int:
        activity_id = self.id()
        self.insert(
            s.crm_activities,
            activity_id=activity_id,
            crm_contact_id=contact_id,
            subject_id=subject_id,
            activity_type=kind,
            occurred_at=at,
            channel=channel,
            subject_line="Note",
            body=body,
            export_date=AS_OF,
        )
        return activity_id

    def request(self, **row) -> None:
        base = {
            "request_id": f"r{self.id()}",
            "request_type": "access",
            "subject_key": "k" * 64,
            "status": s.COMPLETED,
            "received_at": dt.datetime(2026, 9, 1),
            "verified_at": dt.datetime(2026, 9, 1),
            "first_due_on": dt.date(2026, 10, 1),
            "due_on": dt.date(2026, 10, 1),
        }
        self.insert(s.subject_requests, **{**base, **row})

    def check(self, check: checks.Check, as_of: dt.date = AS_OF, run_id: str = "t"):
        with self.engine.begin() as conn:
            return check(checks.CheckContext(conn, self.settings, load_notice(), as_of, run_id))

    def sql(self, statement: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement))


@pytest.fixture
def world(warehouse_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(warehouse_url, tmp_path / "home")
    yield w
    w.engine.dispose()


# --- N-RET --------------------------------------------------------------------------------------


def test_ret_fails_on_an_expired_row_passes_when_held_or_deleted(world: World) -> None:
    empty = world.check(checks.check_retention)
    assert not empty.passed, "nothing to judge is not a pass"
    assert empty.status == evidence.NO_DATA and empty.findings == []
    assert empty.figures["no_data"] == {"personal_zone_rows_judged_by_the_oracle": 0}
    company = world.company(closed_at=dt.datetime(2018, 3, 1))
    person = world.subject("former@customer.example")
    world.user(company, person, "former@customer.example")
    result = world.check(checks.check_retention)
    assert not result.passed
    by_target = result.figures["expired_unheld_by_target"]
    assert by_target["customer_basic personal.companies"] == 1
    assert by_target["customer_basic personal.invoices"] == 1
    assert by_target["customer_basic personal.portal_users"] == 1
    assert result.figures["expired_unheld_rows"] == 3
    assert "personal.companies" in result.queries["customer_basic personal.companies"]
    # A legal hold on the person keeps the company's records: nothing unheld is past its date.
    world.insert(
        s.legal_holds,
        subject_key=world.key_of(person),
        reason="litigation",
        origin="legal",
        created_at=T0,
    )
    held = world.check(checks.check_retention)
    assert held.passed, held.findings
    assert held.figures["holds_in_force"] == 1
    # Six years are not yet over the day before the deadline.
    world.sql("DELETE FROM ops.legal_holds")
    assert world.check(checks.check_retention, as_of=dt.date(2024, 2, 28)).passed


# --- N-AGG --------------------------------------------------------------------------------------


def _profiles(world: World, n: int, sector: str = "Retail") -> None:
    for _ in range(n):
        world.insert(
            s.customer_profiles,
            profile_id=world.id(),
            region="UK",
            sector=sector,
            size_band="10-49",
            revenue_band="*",
            customer_since="2019",
            main_service="Declarations",
        )


def test_agg_fails_on_a_small_count_or_a_class_below_k(world: World) -> None:
    nothing = world.check(checks.check_aggregates)
    assert not nothing.passed  # nothing to judge is not a pass...
    assert nothing.status == "no data" and nothing.findings == []  # ...nor a failure
    assert nothing.figures["no_data"] == {"published_rows": 0}
    world.insert(
        s.revenue_by_service_month, month="2026-01", service="Tariffs", invoices=12, revenue_pence=9
    )
    _profiles(world, 10)
    result = world.check(checks.check_aggregates)
    # revenue_pence is a sum, not a count: 9 pence is not a small cell.
    assert result.passed, result.findings
    assert result.figures["smallest_published_count"] == 12
    assert result.figures["smallest_profile_class"] == 10
    assert result.figures["audit_cells_checked"] == 1  # the invoice count (sums by rule)
    assert result.figures["audit_narrowest_interval"] >= 2
    world.insert(
        s.customers_by_quarter,
        quarter="2026-Q1",
        country="GB",
        sector="Retail",
        new_customers=0,
        active_customers=2,
        ceased_customers=None,
    )
    small = world.check(checks.check_aggregates)
    assert not small.passed
    assert small.figures["smallest_published_count"] == 2  # zero and NULL are not cells
    # A 2 cannot come out of the perturbation, so the attacker takes it as exact.
    assert small.figures["audit_cells_below_protection"] == 1
    assert any(
        "customers_by_quarter[2026-Q1|GB|Retail].active_customers" in f for f in small.findings
    )
    world.sql("DELETE FROM statistics.customers_by_quarter")
    world.insert(s.revenue_by_service_month, month="2026-02", service="Tariffs", revenue_pence=99)
    beside = world.check(checks.check_aggregates)
    assert not beside.passed
    assert beside.figures["sums_beside_suppressed_counts"] == {"revenue_by_service_month": 1}
    world.sql("DELETE FROM statistics.revenue_by_service_month WHERE month = '2026-02'")
    _profiles(world, 9, sector="Mining")
    below_k = world.check(checks.check_aggregates)
    assert not below_k.passed
    assert below_k.figures["smallest_profile_class"] == 9


# --- N-RIGHTS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "failing_figure"),
    [
        ({"completed_at": dt.datetime(2026, 10, 1, 23, 0)}, None),  # on the due day
        ({"completed_at": dt.datetime(2026, 10, 2, 0, 1)}, "answered_late"),
        ({"status": s.VERIFIED, "completed_at": None, "due_on": dt.date(2026, 11, 22)}, "overdue"),
        ({"status": s.VERIFIED, "completed_at": None, "due_on": dt.date(2026, 11, 23)}, None),
        (
            {"status": s.AWAITING_CRM, "completed_at": None, "due_on": dt.date(2026, 11, 1)},
            "overdue",
        ),
        (
            {
                "status": s.AWAITING_VERIFICATION,
                "completed_at": None,
                "verified_at": None,
                "due_on": None,
                "first_due_on": None,
            },
            None,
        ),
        (
            {
                "completed_at": dt.datetime(2026, 11, 20),
                "due_on": dt.date(2026, 12, 1),
                "extension_months": 2,
                "extended_on": dt.date(2026, 9, 20),
            },
            None,
        ),
        (
            {
                "completed_at": dt.datetime(2026, 11, 20),
                "due_on": dt.date(2026, 12, 1),
                "extension_months": 2,
                "extended_on": dt.date(2026, 10, 5),
            },
            "extension_not_in_first_month",
        ),
        (
            {
                "completed_at": dt.datetime(2026, 11, 20),
                "due_on": dt.date(2027, 1, 1),
                "extension_months": 3,
                "extended_on": dt.date(2026, 9, 20),
            },
            "extension_too_long",
        ),
        ({"status": s.REJECTED, "completed_at": dt.datetime(2026, 9, 2)}, None),
    ],
)
def test_rights(world: World, row: dict, failing_figure: str | None) -> None:
    world.request(**row)
    result = world.check(checks.check_rights)
    assert result.figures["received"] == 1
    assert result.passed is (failing_figure is None), result.figures
    if failing_figure:
        assert result.figures[failing_figure] == 1
        assert any(failing_figure.replace("_", " ") in f for f in result.findings)


def test_rights_fails_when_an_erased_person_is_still_held(world: World) -> None:
    """An erasure's tombstone (keyed pseudonym) against the personal zone: only a subject row
    restricted for tax may remain."""
    person = world.subject("erased@former.example")
    key = world.key_of(person)
    erased = {"subject_key": key, "request_id": "r-1", "erased_at": dt.datetime(2026, 9, 1)}
    world.insert(s.erasure_tombstones, **erased)
    result = world.check(checks.check_rights)
    assert (result.figures["erasures"], result.figures["erased_subjects_still_held"]) == (1, 1)
    assert not result.passed
    assert "1 row(s): erased subjects still held" in result.findings
    # Restricted for tax by the erasure: the subject row may stay.
    world.insert(
        s.legal_holds,
        subject_key=key,
        reason="tax records",
        origin="erasure_restriction",
        created_at=dt.datetime(2026, 9, 1),
    )
    assert world.check(checks.check_rights).passed
    # A quarantined copy of the person's record may not.
    world.insert(
        s.quarantine,
        source="crm.contacts",
        source_ref="contacts_20260902.csv",
        record_ref="row 2",
        reason="bad_date: Create Date",
        raw_record="{}",
        run_id="ingest",
        quarantined_at=dt.datetime(2026, 9, 2),
        subject_key=key,
    )
    result = world.check(checks.check_rights)
    assert result.figures["erased_subjects_in_quarantine"] == 1 and not result.passed


def test_rights_are_judged_as_of_the_date(world: World) -> None:
    """A request completed late is not yet late, nor even received, on earlier dates."""
    world.request(received_at=dt.datetime(2026, 9, 1), completed_at=dt.datetime(2026, 10, 5))
    assert not world.check(checks.check_rights).passed
    before_due = world.check(checks.check_rights, as_of=dt.date(2026, 9, 30))
    assert before_due.passed and before_due.figures["open_in_time"] == 1
    assert world.check(checks.check_rights, as_of=dt.date(2026, 8, 1)).figures["received"] == 0
    assert not world.check(checks.check_rights, as_of=dt.date(2026, 10, 3)).passed  # overdue


# --- N-MKT --------------------------------------------------------------------------------------


def test_mkt_passes_for_a_consenting_contact_and_the_pipelines_own_list(world: World) -> None:
    from ccg_pipeline.marketing import write_marketing_list

    person = world.subject("keen@prospect.example")
    contact = world.contact(person, "keen@prospect.example", "Marketing contact")
    world.activity(contact, person, "MARKETING_CONSENT_GRANTED")
    customer = world.subject("buyer@customer.example")
    world.user(world.company(), customer, "buyer@customer.example")
    world.contact(customer, "Buyer@Customer.example", "Marketing contact", stage="customer")
    written = write_marketing_list(world.settings, AS_OF)
    assert (written["recipients"], written["consent"], written["purchase"]) == (2, 1, 1)
    assert os.stat(written["file"]).st_mode & 0o077 == 0
    result = world.check(checks.check_marketing)
    assert result.passed, result.findings
    assert result.figures["extract_rows"] == 2 and result.figures["extracts_checked"] == 1


def test_mkt_fails_when_a_suppressed_or_opted_out_person_is_on_a_list(world: World) -> None:
    from ccg_pipeline.marketing import marketing_exports, write_marketing_list

    opted = world.subject("gone@prospect.example")
    contact = world.contact(opted, "gone@prospect.example", "Marketing contact")
    world.activity(contact, opted, "MARKETING_CONSENT_GRANTED", at=dt.datetime(2026, 1, 1))
    world.activity(contact, opted, "MARKETING_OPT_OUT", at=dt.datetime(2026, 5, 1))
    suppressed = world.subject("erased@prospect.example")
    world.insert(
        s.marketing_suppression,
        subject_key=world.key_of(suppressed),
        reason="object",
        suppressed_at=T0,
    )
    # The pipeline's own list leaves both out...
    assert write_marketing_list(world.settings, AS_OF)["recipients"] == 0
    # ...but the CRM still marks the opted-out person, and a hand-made extract has both.
    result = world.check(checks.check_marketing)
    assert not result.passed
    assert result.figures["crm_marketing_contacts_suppressed_or_opted_out"] == 1
    extract = marketing_exports(world.settings) / "campaign-spring.csv"
    extract.write_text(
        "Name,E-mail address\nA,GONE@prospect.example\nB, erased@prospect.example \nC,new@x.example\n"
    )
    result = world.check(checks.check_marketing)
    assert result.figures["extract_rows"] == 3
    assert result.figures["extract_rows_suppressed"] == 2
    # Other columns that mention mail are not addresses; a cell that is not one is counted.
    extract.write_text("Email,Mailing address\nnot-an-address,1 High St\nGONE@prospect.example,x\n")
    result = world.check(checks.check_marketing)
    assert result.figures["extract_rows"] == 2
    assert result.figures["extract_cells_not_an_address"] == 1
    assert result.figures["extract_rows_suppressed"] == 1
    assert not any("@" in f for f in result.findings)


def test_mkt_judges_opt_outs_and_suppressions_as_of_the_date(world: World) -> None:
    from ccg_pipeline.marketing import marketing_exports, write_marketing_list

    person = world.subject("back@prospect.example")
    contact = world.contact(person, "back@prospect.example", "Marketing contact")
    world.activity(contact, person, "MARKETING_CONSENT_GRANTED", at=dt.datetime(2026, 1, 1))
    world.activity(contact, person, "MARKETING_OPT_OUT", at=dt.datetime(2026, 5, 1))
    world.activity(contact, person, "MARKETING_CONSENT_GRANTED", at=dt.datetime(2026, 9, 1))
    # Opted out in June, back on the list in November: a list as of June must not name them.
    assert write_marketing_list(world.settings, dt.date(2026, 6, 1))["recipients"] == 0
    assert (
        world.check(checks.check_marketing, as_of=dt.date(2026, 6, 1)).figures[
            "crm_marketing_contacts_suppressed_or_opted_out"
        ]
        == 1
    )
    assert write_marketing_list(world.settings, AS_OF)["recipients"] == 1
    assert [f.name for f in marketing_exports(world.settings).glob("*.csv")] == [
        "marketing-list-2026-11-23.csv"
    ]  # the June list is replaced, not kept naming people
    world.insert(
        s.marketing_suppression,
        subject_key=world.key_of(person),
        reason="object",
        suppressed_at=dt.datetime(2026, 11, 30),
    )
    assert world.check(checks.check_marketing).passed  # suppressed after the as-of day
    assert not world.check(checks.check_marketing, as_of=dt.date(2026, 12, 1)).passed


def test_mkt_fails_when_the_consent_history_is_incomplete(world: World) -> None:
    no_basis = world.subject("cold@prospect.example")
    world.contact(no_basis, "cold@prospect.example", "Marketing contact")
    result = world.check(checks.check_marketing)
    assert not result.passed
    assert result.figures["marketing_contacts_without_consent_or_purchase"] == 1
    world.sql("DELETE FROM personal.crm_contacts")
    unsubscribed = world.subject("left@prospect.example")
    contact = world.contact(unsubscribed, "left@prospect.example", "Unsubscribed")
    assert world.check(checks.check_marketing).figures["unsubscribed_without_opt_out_record"] == 1
    world.activity(contact, unsubscribed, "MARKETING_CONSENT_GRANTED", channel=None)
    result = world.check(checks.check_marketing)
    assert result.figures["consent_events_without_channel"] == 1
    # A suppression entry (the opt-out event itself was deleted by retention) is a record.
    world.sql("DELETE FROM personal.crm_activities")
    world.insert(
        s.marketing_suppression,
        subject_key=world.key_of(unsubscribed),
        reason="marketing_after_opt_out",
        suppressed_at=T0,
    )
    assert world.check(checks.check_marketing).passed


# --- N-NOSPECIAL and N-CHILD --------------------------------------------------------------------


def test_nospecial_finds_quarantines_and_retires_special_category_notes(world: World) -> None:
    """The check only reads; the sweep before it moves the finds to quarantine, and the clause
    fails for the run whose sweep moved anything."""
    person = world.subject("note@prospect.example")
    contact = world.contact(person, "note@prospect.example", "Non-marketing contact")
    world.activity(contact, person, "NOTE", body="Asked for a quote on the AEO audit.")
    assert world.check(checks.check_special_categories).passed
    sick = world.activity(contact, person, "NOTE", body="Off on sick leave, cancer diagnosis.")
    world.activity(contact, person, "NOTE", body="Är fackligt aktiv.")
    url = world.url
    found = world.check(checks.check_special_categories)
    assert not found.passed
    assert found.figures["live_hits_by_category"] == {"health": 1, "trade_union": 1}
    assert found.figures["moved_to_quarantine_by_this_run"] == 0
    assert len(query(url, "SELECT 1 FROM personal.crm_activities")) == 3  # the check only reads

    swept = special.quarantine_special_categories(world.engine, AS_OF, "t")
    assert swept["moved_to_quarantine"] == 2
    assert swept["by_category"] == {"health": 1, "trade_union": 1}
    assert len(query(url, "SELECT 1 FROM personal.crm_activities")) == 1
    assert query(url, f"SELECT key, rule_id FROM personal.retired_keys WHERE key = '{sick}'") == [
        (str(sick), "special_category")
    ]
    assert query(url, "SELECT row_count FROM ops.audit_ledger WHERE action = 'quarantine'") == [
        (2,)
    ]
    # The run whose sweep moved the notes fails (they were in processing until then), a retry of
    # its sweep moves nothing more and it still fails; the next run passes.
    after_sweep = world.check(checks.check_special_categories)
    assert not after_sweep.passed
    assert after_sweep.figures["live_records_with_special_categories"] == 0
    assert after_sweep.figures["moved_to_quarantine_by_this_run"] == 2
    assert (
        special.quarantine_special_categories(world.engine, AS_OF, "t")["moved_to_quarantine"] == 0
    )
    assert not world.check(checks.check_special_categories).passed
    after = world.check(checks.check_special_categories, run_id="next")
    assert after.passed
    assert after.figures["in_quarantine_by_category"] == {"health": 1, "trade_union": 1}
    assert "cancer" not in json.dumps(after.figures) + " ".join(after.findings)


def test_child_indicators_in_notes_job_titles_and_school_emails(world: World) -> None:
    person = world.subject("adult@prospect.example")
    contact = world.contact(person, "adult@prospect.example", "Non-marketing contact")
    world.activity(contact, person, "CONTACT_US_ENQUIRY", body="We import machinery from Germany.")
    assert world.check(checks.check_children).passed
    world.activity(
        contact, person, "CONTACT_US_ENQUIRY", body="Hej, jag är 14 år och gör ett skolarbete."
    )
    pupil = world.subject("kid@northfield.sch.uk")
    world.contact(pupil, "kid@northfield.sch.uk", "Non-marketing contact")
    result = world.check(checks.check_children)
    assert not result.passed
    assert result.figures["records_indicating_a_child"] == 2
    assert result.figures["subjects"] == 2
    assert result.figures["by_indicator"] == {"school": 1, "school_email": 1, "stated_age": 1}


# --- N-XFER, N-SEC, N-CAT -----------------------------------------------------------------------


def test_xfer_privacy_shield_is_a_finding_after_july_2020_with_its_replacement(
    world: World,
) -> None:
    before = world.check(checks.check_transfers, as_of=dt.date(2019, 1, 1))
    assert before.passed
    after = world.check(checks.check_transfers)
    assert not after.passed
    assert after.figures["lapsed_transfers"] == ["us_service_providers_privacy_shield"]
    finding = after.findings[0]
    assert "Privacy Shield" in finding and "EU-US Data Privacy Framework" in finding
    assert "UK Extension" in finding


def test_sec_compares_who_can_read_each_zone_with_the_policy(world: World) -> None:
    ok = world.check(checks.check_access)
    if world.engine.dialect.name == "postgresql":
        assert ok.passed, ok.findings
        assert ok.figures["readers_by_zone"]["statistics"] == ["ccg_analyst"]
        assert ok.figures["readers_by_zone"]["personal"] == []
        world.sql("GRANT USAGE ON SCHEMA personal TO ccg_analyst")
        world.sql("GRANT SELECT ON personal.subjects TO ccg_analyst")
        world.sql(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ccg_reporting') "
            "THEN CREATE ROLE ccg_reporting; END IF; END $$"
        )
        world.sql("GRANT USAGE ON SCHEMA ops TO ccg_reporting")
        world.sql("GRANT SELECT (run_id) ON ops.audit_ledger TO ccg_reporting")  # one column
        try:
            bad = world.check(checks.check_access)
            assert not bad.passed
            assert set(bad.findings[:2]) == {
                "role ccg_analyst can read the personal zone",
                "role ccg_reporting can read the ops zone",
            }
        finally:
            world.sql(
                "REVOKE ALL ON ALL TABLES IN SCHEMA personal, ops FROM ccg_analyst, ccg_reporting"
            )
            world.sql("REVOKE ALL ON SCHEMA personal, ops FROM ccg_analyst, ccg_reporting")
            world.sql("DROP ROLE ccg_reporting")
        assert world.check(checks.check_access).passed
        # An analyst is a login role that is a member of ccg_analyst: allowed on statistics.
        world.sql(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst_login') "
            "THEN CREATE ROLE analyst_login LOGIN; END IF; END $$"
        )
        world.sql("GRANT ccg_analyst TO analyst_login")
        try:
            member = world.check(checks.check_access)
            assert member.passed, member.findings
            assert "analyst_login" in member.figures["readers_by_zone"]["statistics"]
            world.sql("ALTER ROLE analyst_login SUPERUSER")
            superuser = world.check(checks.check_access)
            assert not superuser.passed
            assert "role analyst_login is a superuser and can read every zone" in superuser.findings
        finally:
            world.sql("DROP ROLE analyst_login")
    else:
        # No analyst file before the first publication: what analysts read is untested.
        assert ok.status == "no data" and not ok.findings
        assert ok.figures["no_data"] == {"analyst_files": 0}
        personal = Path(world.engine.url.database).parent / "personal.db"
        assert ok.figures["zone_file_modes"]["personal"] == "0600"
        personal.chmod(0o644)
        bad = world.check(checks.check_access)
        assert bad.status == "fail" and "personal zone file" in bad.findings[0]  # fail wins
        assert "no_data" not in bad.figures
        personal.chmod(0o600)
        analyst = world.settings.home / "analyst" / "statistics.sqlite"
        analyst.parent.mkdir(parents=True)
        sqlite3.connect(analyst).close()  # an analyst file holding nothing it should not
        assert world.check(checks.check_access).status == "pass"
        with sa.create_engine(f"sqlite:///{analyst}").begin() as conn:
            conn.execute(sa.text("CREATE TABLE subjects (email TEXT)"))
        leaky = world.check(checks.check_access)
        assert not leaky.passed and leaky.figures["analyst_file_extra_tables"] == ["subjects"]


def test_cat_fails_on_a_column_nobody_categorised(world: World) -> None:
    assert world.check(checks.check_categories).passed
    world.sql("ALTER TABLE personal.crm_contacts ADD COLUMN favourite_colour TEXT")
    result = world.check(checks.check_categories)
    assert not result.passed
    assert result.figures["unmapped_columns"] == ["personal.crm_contacts.favourite_colour"]


# --- the report and the DAG ---------------------------------------------------------------------


def test_report_formats_hold_every_clause_and_no_personal_data(world: World) -> None:
    from ccg_pipeline.evidence.render import RENDERERS

    person = world.subject("visible.name@prospect.example")
    contact = world.contact(person, "visible.name@prospect.example", "Marketing contact")
    world.activity(contact, person, "NOTE", body="Han är dömd för smuggling.")
    report = evidence.collect(world.engine, world.settings, AS_OF, "manual__t")
    assert [c.clause for c in report.clauses] == [
        "N-CAT", "N-NOSPECIAL", "N-AGG", "N-MKT", "N-XFER", "N-SEC", "N-RET", "N-RIGHTS", "N-CHILD",
        "N-BASIS",
    ]  # fmt: skip
    assert {"N-NOSPECIAL", "N-MKT", "N-XFER"} <= set(report.failed)
    for fmt, render in RENDERERS.items():
        text = render(report)
        assert "visible.name" not in text and "smuggling" not in text, fmt
        for clause in report.clauses:
            assert clause.clause in text
    as_json = json.loads(RENDERERS["json"](report))
    assert as_json["failed"] == report.failed
    assert as_json["clauses"][1]["status"] == "fail"
    assert "<script" not in RENDERERS["html"](report)


# Clauses that have nothing to judge in a migrated, empty warehouse. N-CAT judges the schema
# (which migration creates) and N-XFER the policy's register (whose Privacy Shield transfer has
# lapsed); on PostgreSQL N-SEC judges the grants migration creates, on SQLite it needs the
# analyst file that the first publication writes.
NO_DATA_WHEN_EMPTY = {"N-NOSPECIAL", "N-AGG", "N-MKT", "N-RET", "N-RIGHTS", "N-CHILD", "N-BASIS"}


def test_a_fresh_warehouse_has_no_data_which_is_neither_pass_nor_fail(world: World) -> None:
    from ccg_pipeline.privacy_view import snapshot
    from ccg_pipeline.privacy_view.page import render

    sqlite = world.engine.dialect.name == "sqlite"
    no_data = NO_DATA_WHEN_EMPTY | ({"N-SEC"} if sqlite else set())
    outcome = evidence.run_evidence(world.settings, AS_OF, "scheduled__fresh")
    # The daily step (what the DAG alerts on) counts only real failures.
    assert outcome["clauses_failed"] == ["N-XFER"]
    assert set(outcome["clauses_no_data"]) == no_data
    stored = query(world.url, "SELECT clause, passed, figures FROM ops.clause_evidence")
    assert len(stored) == 10
    status = {clause: evidence.status_of(ok, figures) for clause, ok, figures in stored}
    assert {c for c, st in status.items() if st == "no data"} == no_data
    assert {c for c, st in status.items() if st == "pass"} == {"N-CAT"} | (
        set() if sqlite else {"N-SEC"}
    )
    for clause, passed, figures in stored:
        if clause in no_data:
            assert not passed, f"{clause}: no data is never stored as a pass"
            missing = json.loads(figures)["no_data"]
            assert missing and set(missing.values()) == {0}, (clause, missing)
    (failed,) = query(world.url, "SELECT clauses_failed FROM ops.evidence_reports")
    assert failed == ("N-XFER",)
    # Every rendered format says "no data" for each such clause, and keeps `passed` false.
    folder = world.settings.home / "evidence"
    as_json = json.loads((folder / "latest.json").read_text())
    assert as_json["failed"] == ["N-XFER"] and set(as_json["no_data"]) == no_data
    for clause in as_json["clauses"]:
        if clause["clause"] in no_data:
            assert (clause["status"], clause["passed"]) == ("no data", False)
            assert clause["figures"]["no_data"]
    markdown = (folder / "latest.md").read_text()
    html = (folder / "latest.html").read_text()
    for clause in no_data:
        assert f"| {clause} |" in markdown
        assert f"## {clause}: " in markdown
    assert markdown.count("| **NO DATA** |") == len(no_data)
    assert "published rows 0" in markdown and "no data: " in markdown
    assert html.count('<td class="nodata">NO DATA</td>') == len(no_data)
    assert '<td class="pass">NO DATA' not in html and '<td class="fail">NO DATA' not in html
    # The Privacy view reads the same three states back from ops.clause_evidence.
    snap = snapshot(world.engine, AS_OF)
    assert dict(snap.evidence_clauses) == status
    page = render(snap, None)
    assert page.count('<span class="badge idle">no data</span>') == len(no_data)
    assert f"{len(status) - len(no_data) - 1} of 10 clauses pass, {len(no_data)} no data" in page


def test_evidence_dag_records_stores_and_quarantines(
    airflow_db, demo_sources: Path, warehouse_url: str, tmp_path: Path, monkeypatch
) -> None:
    env = env_for(warehouse_url, demo_sources, tmp_path)
    alerts: list[dict] = []
    webhook = start_webhook(alerts)
    env["CCG_ALERT_WEBHOOK_URL"] = f"http://127.0.0.1:{webhook.server_port}/alert"
    run = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    assert state_of(run_dag(monkeypatch, "ccg_ingest", run, env)) == "success"
    note = "Called: he has a criminal record, will send fingerprints."
    with migrate.migrated(warehouse_url) as engine, engine.begin() as conn:
        conn.execute(
            sa.update(s.crm_activities)
            .where(
                s.crm_activities.c.activity_id
                == sa.select(sa.func.min(s.crm_activities.c.activity_id)).scalar_subquery()
            )
            .values(body=note)
        )
    first = run_dag(monkeypatch, "ccg_evidence", dt.datetime(2026, 11, 24, 6, tzinfo=dt.UTC), env)
    assert state_of(first) == "success"
    stored = query(warehouse_url, "SELECT clause, passed, figures FROM ops.clause_evidence")
    recorded = {clause: passed for clause, passed, _ in stored}
    statuses = {clause: evidence.status_of(ok, figures) for clause, ok, figures in stored}
    assert len(recorded) == 10
    assert not recorded["N-NOSPECIAL"] and not recorded["N-XFER"]
    # Nothing is published yet (ingest only): N-AGG has no data, which is no pass and no failure.
    assert not recorded["N-AGG"] and statuses["N-AGG"] == "no data"
    (report_row,) = query(
        warehouse_url, "SELECT as_of, clauses_failed, report_file FROM ops.evidence_reports"
    )
    assert str(report_row[0]) == "2026-11-23"  # the day before a time-triggered run
    assert "N-NOSPECIAL" in report_row[1].split(",")
    assert set(report_row[1].split(",")) == {c for c, st in statuses.items() if st == "fail"}
    assert "N-AGG" not in report_row[1].split(",")
    html = Path(report_row[2]).read_text()
    assert "criminal record" not in html and (tmp_path / "evidence" / "latest.html").exists()
    assert query(
        warehouse_url, f"SELECT count(*) FROM personal.crm_activities WHERE body = '{note}'"
    ) == [(0,)]
    webhook.shutdown()
    (posted,) = alerts
    assert posted["alert"] == "compliance evidence: clauses failed"
    assert "N-NOSPECIAL" in posted["clauses"] and posted["as_of"] == "2026-11-23"
    assert "N-AGG" not in posted["clauses"], "no data is not alerted as a failure"
    # The ingest of the same exports does not bring the note back; the next check passes it.
    assert state_of(run_dag(monkeypatch, "ccg_ingest", run, env)) == "success"
    second = run_dag(monkeypatch, "ccg_evidence", dt.datetime(2026, 11, 25, 6, tzinfo=dt.UTC), env)
    assert state_of(second) == "success"
    passed = query(
        warehouse_url,
        "SELECT passed FROM ops.clause_evidence WHERE clause = 'N-NOSPECIAL' ORDER BY as_of DESC",
    )
    assert [bool(p) for (p,) in passed] == [True, False]


# --- Hypothesis: the N-RIGHTS SQL against a plain-Python reading of the rule ------------------

_request = st.fixed_dictionaries(
    {
        # Narrow ranges, so that due dates, completions and the as-of day often coincide.
        "received": st.integers(0, 2),  # days after 1 August 2026
        "verified_after": st.none() | st.integers(0, 1),
        "completed_after": st.none() | st.integers(28, 34),  # days after verification
        "completed_hour": st.sampled_from([0, 12, 23]),
        "extension": st.sampled_from([0, 0, 0, 1, 2, 3]),
        "told_after": st.integers(28, 32),  # days after verification the extension was decided
        "rejected": st.booleans(),
    }
)


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=st.lists(_request, max_size=3), as_of_offset=st.integers(28, 36))
def test_rights_sql_agrees_with_the_rule_as_stated(
    tmp_path_factory: pytest.TempPathFactory, requests: list[dict], as_of_offset: int
) -> None:
    start = dt.date(2026, 8, 1)
    as_of = start + dt.timedelta(days=as_of_offset)
    home = tmp_path_factory.mktemp("rights")
    world = World(f"sqlite:///{home / 'wh' / 'main.db'}", home)
    expected_failures = 0
    try:
        for i, spec in enumerate(requests):
            received = dt.datetime.combine(start + dt.timedelta(days=spec["received"]), dt.time(9))
            row: dict = {"request_id": f"h{i}", "received_at": received, "completed_at": None}
            if spec["verified_after"] is None:
                row.update(status=s.AWAITING_VERIFICATION, verified_at=None)
                row.update(first_due_on=None, due_on=None)
            else:
                verified = received + dt.timedelta(days=spec["verified_after"])
                first_due = verified.date() + dt.timedelta(days=30)
                due = first_due + dt.timedelta(days=30 * spec["extension"])
                told = verified.date() + dt.timedelta(days=spec["told_after"])
                row.update(verified_at=verified, first_due_on=first_due, due_on=due)
                if spec["extension"]:
                    row.update(extension_months=spec["extension"], extended_on=told)
                done_at = (
                    None
                    if spec["completed_after"] is None
                    else dt.datetime.combine(
                        verified.date() + dt.timedelta(days=spec["completed_after"]),
                        dt.time(spec["completed_hour"]),
                    )
                )
                status = s.REJECTED if spec["rejected"] else s.COMPLETED if done_at else s.VERIFIED
                row.update(status=status, completed_at=done_at)
                # The rule: judged on the as-of day, for requests received by then.
                if received.date() <= as_of:
                    done = done_at is not None and done_at.date() <= as_of
                    late = done and done_at.date() > due
                    overdue = not done and status != s.REJECTED and due < as_of
                    bad_extension = bool(spec["extension"]) and (
                        told > first_due or spec["extension"] > 2
                    )
                    expected_failures += late or overdue or bad_extension
            world.request(**row)
        result = world.check(checks.check_rights, as_of=as_of)
        expected = "no data" if not requests else "fail" if expected_failures else "pass"
        assert result.status == expected, (result.figures, requests)
        assert result.passed is (expected == "pass")
    finally:
        world.engine.dispose()
