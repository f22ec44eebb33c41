"""The personal-data model covers every personal table and column, agrees with the policy, and is
what retention, access, erasure, rectification, breach and the identifier scan read."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from ccg_pipeline import breach, personal_model
from ccg_pipeline.personal_model import TABLES, Erasure, PersonalTable, uncovered
from ccg_pipeline.policy import load_data_map, load_notice
from ccg_pipeline.requests import handlers
from ccg_pipeline.retention import rules
from ccg_pipeline.validation import known_identifiers
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.unit
NOTICE = load_notice()
NOTICE_DAY = dt.date(2026, 11, 23)


def _metadata_with(*extra: sa.Column, table: str = "loyalty_cards") -> sa.MetaData:
    copy = sa.MetaData()
    for t in s.metadata.sorted_tables:
        t.to_metadata(copy)
    if extra:
        sa.Table(table, copy, *extra, schema=s.PERSONAL)
    return copy


def test_the_model_covers_every_personal_table_and_column_and_agrees_with_the_policy() -> None:
    assert uncovered(NOTICE.retention_rules) == []
    rules.check_against_policy(NOTICE)


def test_a_personal_table_the_model_does_not_declare_is_reported() -> None:
    metadata = _metadata_with(
        sa.Column("card_id", sa.Integer, primary_key=True), sa.Column("holder_name", sa.Text)
    )
    problems = uncovered(NOTICE.retention_rules, metadata)
    assert problems == [
        "personal.loyalty_cards.card_id",
        "personal.loyalty_cards.holder_name",
    ]


def test_a_new_column_without_a_category_is_reported() -> None:
    metadata = _metadata_with()
    metadata.tables["personal.crm_contacts"].append_column(sa.Column("linkedin_url", sa.Text))
    assert uncovered(NOTICE.retention_rules, metadata) == ["personal.crm_contacts.linkedin_url"]


def _with(name: str, **changes: object) -> dict[str, PersonalTable]:
    return {**TABLES, name: dataclasses.replace(TABLES[name], **changes)}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"retention": (), "kept_because": None},
            "personal.crm_companies: no retention rule and no reason it needs none",
        ),
        (
            {"retention": ("customer_basic", "prospect_inactive", "crm_forever")},
            "personal.crm_companies: retention rule 'crm_forever' is not in the policy",
        ),
        (
            {"retention": ("prospect_inactive",)},
            "customer_basic on crm_companies: in the policy only",
        ),
    ],
)
def test_the_model_and_the_policy_must_agree(
    monkeypatch: pytest.MonkeyPatch, changes: dict, expected: str
) -> None:
    monkeypatch.setattr(personal_model, "TABLES", _with("personal.crm_companies", **changes))
    assert expected in uncovered(NOTICE.retention_rules)
    with pytest.raises(ValueError, match="model and the policy disagree"):
        rules.check_against_policy(NOTICE)


def test_every_rule_and_table_of_the_model_has_a_sweep_target_in_policy_order() -> None:
    modelled = {
        (rule, name.split(".", 1)[1])
        for name, spec in TABLES.items()
        for rule in spec.retention
        if rule != "orphaned_subjects"
    }
    found = [(t.rule_id, t.table.name) for t in rules.targets(NOTICE)]
    assert set(found) == modelled and len(found) == len(modelled)
    basic = [table for rule, table in found if rule == "customer_basic"]
    # Children before the rows their predicates join through.
    assert basic.index("payments") < basic.index("invoices") < basic.index("companies")
    assert basic.index("crm_companies") < basic.index("companies")
    assert basic.index("crm_contacts") < basic.index("portal_users")


def test_a_table_with_a_company_key_is_retired_by_it_without_code_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adding a company-keyed table is one model entry plus the rule naming it in the policy."""
    metadata = _metadata_with(
        sa.Column("card_id", sa.Integer, primary_key=True),
        sa.Column("company_id", sa.Integer),
        sa.Column("holder_name", sa.Text),
    )
    cards = metadata.tables["personal.loyalty_cards"]
    model = {
        **TABLES,
        "personal.loyalty_cards": PersonalTable(
            columns={"card_id": None, "company_id": None, "holder_name": "identity"},
            time_column=None,
            reach="company -> its portal users",
            retention=("customer_basic",),
            erasure=Erasure.TAX_RECORD,
            company_column="company_id",
        ),
    }
    monkeypatch.setattr(personal_model, "TABLES", model)
    monkeypatch.setattr(
        personal_model,
        "personal_tables",
        lambda: {name: metadata.tables[name] for name in model},
    )
    notice = NOTICE.model_copy(deep=True)
    basic = next(r for r in notice.retention_rules if r.id == "customer_basic")
    basic.tables.insert(0, "loyalty_cards")
    assert uncovered(notice.retention_rules, metadata) == []
    target = rules.targets(notice)[0]
    assert (target.rule_id, target.table) == ("customer_basic", cards)
    dates = rules.SweepDates.for_date(notice, NOTICE_DAY, use_worklist=True)
    sql = str(target.expired(dates).compile(compile_kwargs={"literal_binds": True}))
    assert "personal.loyalty_cards.company_id IN" in sql and "retention_worklist" in sql


def test_rights_and_scans_read_the_model() -> None:
    # Access and erasure: every table linked to a person, by the model's own filters.
    linked = {name for name, spec in TABLES.items() if spec.rows_of is not None}
    assert {"personal.quarantine", "personal.crm_activities", "personal.auth_events"} <= linked
    deleted = {name for name in linked if TABLES[name].erasure is Erasure.DELETE}
    assert deleted == {
        "personal.crm_contacts",
        "personal.crm_activities",
        "personal.auth_events",
        "personal.quarantine",
    }
    # Rectification, breach assessment and the known-identifier scan.
    assert {t.name: c for t, c in handlers.WAREHOUSE_RECTIFIABLE.items()} == {
        "portal_users": ("first_name", "last_name", "phone", "job_title"),
        "crm_contacts": ("first_name", "last_name", "phone", "job_title", "company_name"),
    }
    assert breach.TABLES is personal_model.TABLES
    declared = sum(len(spec.identifiers) for spec in TABLES.values())
    assert len(known_identifiers.identifier_queries()) == declared == 10
    assert len(known_identifiers.phone_queries()) == 2


def test_every_table_with_subject_or_company_keys_is_restricted_by_a_hold() -> None:
    for name, spec in TABLES.items():
        table = personal_model.personal_tables()[name]
        has_key = "subject_id" in table.c or spec.company_column is not None
        if has_key and name not in {"personal.retention_worklist"}:
            assert spec.restriction == "held", name


def test_quarantine_links_read_the_subject_and_company_of_a_raw_record() -> None:
    link = personal_model.QUARANTINE_LINKS["portal.users"]
    assert link.read({"email": "A@B.example", "company_id": "42"}) == ("A@B.example", 42)
    assert link.read({"email": "", "company_id": "not a number"}) == (None, None)
    assert link.read("not a mapping") == (None, None)
    assert set(personal_model.QUARANTINE_LINKS) <= set(load_data_map().sources)
