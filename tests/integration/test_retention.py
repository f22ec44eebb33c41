"""The retention sweep on SQLite and PostgreSQL: the six-year line, holds, idempotency,
crash and resume, time travel, and the evidence it leaves."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from helpers import PERSONAL_TABLES, fingerprint
from retention_world import World

from ccg_pipeline.policy import load_notice
from ccg_pipeline.retention import sweep as sweep_module
from ccg_pipeline.retention.sweep import plan, sweep
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.integration
NOTICE = load_notice()
AS_OF = dt.date(2026, 11, 23)
D = dt.date


def _sweep(world: World, as_of: dt.date = AS_OF, run_id: str = "run-1", **kw):
    return {(o.rule_id, o.table): o for o in sweep(world.engine, NOTICE, as_of, run_id, **kw)}


def test_six_year_line_ceased_definition_and_legal_hold(warehouse_url: str) -> None:
    w = World(warehouse_url)
    over, _ = w.customer(D(2020, 11, 23))  # exactly six years ago: due today
    under, _ = w.customer(D(2020, 11, 24))  # one day short
    late_pay, _ = w.customer(D(2020, 6, 1), last_payment=D(2021, 1, 10))  # a later payment keeps it
    active, _ = w.customer(None)
    held, held_email = w.customer(D(2015, 3, 1))
    w.hold(held_email)

    before = plan(w.engine, NOTICE, AS_OF)
    assert w.ids(s.companies) == {over, under, late_pay, active, held}, "plan changes nothing"
    planned = {(o.rule_id, o.table): o for o in before}
    assert (
        planned["customer_basic", "personal.companies"].due,
        planned["customer_basic", "personal.companies"].held,
    ) == (2, 1)

    outcome = _sweep(w)
    assert w.ids(s.companies) == {under, late_pay, active, held}
    for table in (s.contracts, s.invoices, s.payments, s.portal_users, s.crm_contacts):
        assert over not in w.ids(table) and held in w.ids(table), table.name
    companies = outcome["customer_basic", "personal.companies"]
    assert (
        companies.due,
        companies.held,
        companies.deleted,
        companies.expired_unheld_remaining,
    ) == (2, 1, 1, 0)
    # Statistical value kept, anonymised: one retired customer and its invoice, no identifiers.
    assert w.scalar("SELECT sum(customers) FROM staging.anon_customers") == 1
    assert w.scalar("SELECT sum(invoices) FROM staging.anon_invoices") == 1
    # The person behind the retired company is gone from the subject registry too.
    assert w.scalar("SELECT count(*) FROM personal.subjects") == 4
    # One audit row per rule, table and run; every check passed.
    assert w.scalar(
        "SELECT count(*) FROM ops.audit_ledger WHERE action = 'retention' AND rule_id <> 'orphaned_subjects'"
    ) == len(outcome)
    assert w.scalar("SELECT count(*) FROM ops.retention_checks WHERE passed = false") == 0
    assert (
        w.scalar(
            "SELECT row_count FROM ops.audit_ledger WHERE rule_id = 'customer_basic' AND table_name = 'personal.companies'"
        )
        == 1
    )

    # Releasing the hold lets the next day's sweep retire the company.
    hold_id = w.scalar("SELECT max(hold_id) FROM ops.legal_holds")
    w.release(hold_id, at=dt.datetime(2026, 11, 24, 9))
    _sweep(w, AS_OF + dt.timedelta(days=1), "run-2")
    assert held not in w.ids(s.companies)
    assert under not in w.ids(s.companies), "ceased 24 Nov 2020: due on 24 Nov 2026"
    assert w.ids(s.companies) == {late_pay, active}


def test_financial_year_alignment_delays_the_deadline(warehouse_url: str) -> None:
    w = World(warehouse_url)
    cid, _ = w.customer(D(2020, 4, 6))  # year end 5 April 2021 -> due 5 April 2027
    _sweep(w, D(2026, 4, 6), align_to_year_end=True)
    assert cid in w.ids(s.companies)
    _sweep(w, D(2027, 4, 5), "run-2", align_to_year_end=True)
    assert cid not in w.ids(s.companies)


def test_rerun_is_idempotent_and_logs_are_anonymised_before_deletion(warehouse_url: str) -> None:
    w = World(warehouse_url)
    w.customer(D(2018, 1, 1))
    w.customer(None)
    w.web_hits([AS_OF - dt.timedelta(days=n) for n in (0, 89, 90, 91, 400)])
    _sweep(w)
    after = fingerprint(warehouse_url)
    staged = w.scalar("SELECT sum(requests) FROM staging.anon_web_traffic")
    assert staged == 5, "every line is counted once in the roll-up before any is deleted"
    assert w.scalar("SELECT count(*) FROM personal.web_access") == 2, (
        "90+ days old go; 0 and 89 stay"
    )
    _sweep(w)  # same run again (a retry) and a new run for the same day: no change
    _sweep(w, run_id="run-2")
    assert fingerprint(warehouse_url) == after
    assert w.scalar("SELECT sum(requests) FROM staging.anon_web_traffic") == staged


def test_lines_without_a_roll_up_are_rolled_up_before_they_are_deleted(warehouse_url: str) -> None:
    w = World(warehouse_url)
    w.web_hits([AS_OF - dt.timedelta(days=n) for n in (1, 95, 95, 300)], rolled_up=False)
    _sweep(w)
    assert w.scalar("SELECT count(*) FROM personal.web_access") == 1
    assert w.scalar("SELECT sum(requests) FROM staging.anon_web_traffic") == 4, "every line, once"


def test_crash_mid_sweep_then_rerun_ends_like_an_uninterrupted_run(
    warehouse_url: str, another_warehouse_url: str, monkeypatch
) -> None:
    def build(url: str) -> World:
        w = World(url)
        for year in (2012, 2014, 2016, 2018, 2019):
            w.customer(D(year, 5, 1))
        w.customer(None)
        w.web_hits([AS_OF - dt.timedelta(days=100 + n) for n in range(30)])
        return w

    reference = build(another_warehouse_url)
    _sweep(reference, chunk_rows=2)
    crashed = build(warehouse_url)
    calls = {"n": 0}
    real_audit = sweep_module.audit

    def crash_in_the_eighth_audit(*args, **kwargs):
        # The audit row is the last write of each chunk's transaction: raising here rolls back
        # a chunk whose anonymise and delete already ran, as a killed connection would.
        calls["n"] += 1
        if calls["n"] == 8:
            raise ConnectionError("simulated crash mid-sweep")
        return real_audit(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "audit", crash_in_the_eighth_audit)
    with pytest.raises(ConnectionError):
        _sweep(crashed, chunk_rows=2)
    monkeypatch.setattr(sweep_module, "audit", real_audit)
    _sweep(crashed, chunk_rows=2)

    tables = [
        *PERSONAL_TABLES,
        s.anon_web_traffic,
        s.anon_customers,
        s.anon_invoices,
        s.anon_contracts,
    ]
    assert fingerprint(warehouse_url, tables) == fingerprint(
        reference.engine.url.render_as_string(), tables
    )
    deleted = crashed.scalar(
        "SELECT sum(row_count) FROM ops.audit_ledger WHERE action = 'retention' AND rule_id = 'web_logs_raw'"
    )
    assert deleted == 30, "audit counts equal rows affected across the crash"


def test_time_travel_across_as_of_dates(warehouse_url: str) -> None:
    w = World(warehouse_url)
    ceased = {n: D(2019, 1, 1) + dt.timedelta(days=200 * n) for n in range(6)}
    ids = {n: w.customer(day)[0] for n, day in ceased.items()}
    for as_of in (D(2025, 1, 1), D(2025, 6, 1), D(2026, 3, 1), D(2027, 1, 1)):
        _sweep(w, as_of, f"run-{as_of}")
        expected = {ids[n] for n, day in ceased.items() if day.replace(year=day.year + 6) > as_of}
        assert w.ids(s.companies) == expected, as_of


def test_marketing_opt_out_leaves_only_a_suppression_hash(warehouse_url: str) -> None:
    w = World(warehouse_url)
    _, email = w.customer(None)
    with w.engine.begin() as conn:
        subject = conn.execute(sa.select(s.subjects.c.subject_id, s.subjects.c.subject_key)).first()
        conn.execute(
            sa.insert(s.crm_activities),
            [
                {
                    "activity_id": 1,
                    "crm_contact_id": 1,
                    "subject_id": subject.subject_id,
                    "activity_type": "MAILING_LIST_SUBSCRIBE",
                    "occurred_at": dt.datetime(2024, 1, 1),
                    "export_date": AS_OF,
                },
                {
                    "activity_id": 2,
                    "crm_contact_id": 1,
                    "subject_id": subject.subject_id,
                    "activity_type": "MARKETING_OPT_OUT",
                    "occurred_at": dt.datetime(2026, 10, 1),
                    "export_date": AS_OF,
                },
                {
                    "activity_id": 3,
                    "crm_contact_id": 1,
                    "subject_id": subject.subject_id,
                    "activity_type": "NOTE",
                    "occurred_at": dt.datetime(2026, 10, 2),
                    "export_date": AS_OF,
                },
            ],
        )
    _sweep(w)
    assert w.ids(s.crm_activities) == {3}, "marketing history goes, the note stays"
    assert w.ids(s.marketing_suppression) == {subject.subject_key}
    assert email not in str(w.ids(s.marketing_suppression))


def test_rows_without_a_subject_are_swept_even_while_holds_exist(warehouse_url: str) -> None:
    w = World(warehouse_url)
    _, email = w.customer(None)
    w.hold(email)
    with w.engine.begin() as conn:  # a failed login for an unknown user has no subject
        conn.execute(
            sa.insert(s.auth_events).values(
                source_file="auth-20240101.jsonl",
                line_no=1,
                occurred_at=dt.datetime(2024, 1, 1),
                event="login",
                outcome="failure",
                subject_id=None,
            )
        )
    outcome = _sweep(w)
    assert w.scalar("SELECT count(*) FROM personal.auth_events") == 0
    assert outcome["auth_logs_raw", "personal.auth_events"].deleted == 1


def test_a_held_company_that_comes_back_is_not_retired_when_the_hold_ends(
    warehouse_url: str,
) -> None:
    w = World(warehouse_url)
    cid, email = w.customer(D(2018, 1, 1))
    hold_id = w.hold(email)
    _sweep(w)  # listed for retirement, but held
    assert cid in w.ids(s.companies)
    with w.engine.begin() as conn:  # signs a new open-ended contract
        conn.execute(
            sa.insert(s.contracts).values(
                contract_id=999,
                company_id=cid,
                licence_type="full",
                service="training",
                starts_on=D(2026, 11, 1),
                ends_on=None,
                annual_fee_minor=1,
                updated_at=dt.datetime(2026, 11, 1),
            )
        )
    w.release(hold_id, at=dt.datetime(2026, 11, 24, 8))
    _sweep(w, AS_OF + dt.timedelta(days=1), "run-2")
    assert cid in w.ids(s.companies) and 999 in w.ids(s.contracts)


def test_opt_out_is_honoured_even_when_its_own_event_goes_first(warehouse_url: str) -> None:
    w = World(warehouse_url)
    w.customer(None)
    with w.engine.begin() as conn:
        subject = conn.execute(sa.select(s.subjects.c.subject_id)).scalar_one()
        conn.execute(
            sa.insert(s.crm_activities),
            [
                # The opt-out sorts first by id, so a one-row chunk deletes it before the older consent.
                {
                    "activity_id": 1,
                    "crm_contact_id": 1,
                    "subject_id": subject,
                    "activity_type": "MARKETING_OPT_OUT",
                    "occurred_at": dt.datetime(2026, 9, 1),
                    "export_date": AS_OF,
                },
                {
                    "activity_id": 2,
                    "crm_contact_id": 1,
                    "subject_id": subject,
                    "activity_type": "MARKETING_CONSENT_GRANTED",
                    "occurred_at": dt.datetime(2024, 3, 1),
                    "export_date": AS_OF,
                },
            ],
        )
    _sweep(w, chunk_rows=1)
    assert w.ids(s.crm_activities) == set()


def test_holds_are_audited_by_pseudonym_only(warehouse_url: str) -> None:
    w = World(warehouse_url)
    _, email = w.customer(None)
    hold_id = w.hold(email)
    w.release(hold_id, at=dt.datetime(2026, 1, 1))
    query = sa.select(s.audit_ledger.c.action, s.audit_ledger.c.subject_pseudonym).where(
        s.audit_ledger.c.action.like("hold%")
    )
    with w.engine.connect() as conn:
        rows = conn.execute(query).all()
    actions = sorted(row[0] for row in rows)
    pseudonyms = {row[1] for row in rows}
    assert actions == ["hold_add", "hold_release"]
    assert len(pseudonyms) == 1
    (pseudonym,) = pseudonyms
    assert len(pseudonym) == 64
    assert email not in pseudonym
