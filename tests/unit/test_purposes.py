"""The purpose guard and the declarations (N-BASIS), statement by statement."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ccg_pipeline import purposes
from ccg_pipeline.evidence.basis import declaration_problems, declared_processings
from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import LawfulBasis
from ccg_pipeline.purposes import Kind, Processing, PurposeViolation, Scope
from ccg_pipeline.retention.rules import SweepDates, restricted_subject_ids
from ccg_pipeline.statistics.build import BUILDERS, PROCESSINGS
from ccg_pipeline.warehouse import schema as s

pytestmark = pytest.mark.unit

CATEGORIES = purposes.column_categories()
PERSONAL_COLUMNS = sorted(CATEGORIES)


def _processing(
    categories: tuple[str, ...],
    basis: LawfulBasis = LawfulBasis.LEGAL_OBLIGATION,
    purpose: str = "security_and_accountability",
    evidence: tuple[str, ...] = (),
) -> Processing:
    return Processing(
        "test.processing",
        purpose,
        basis,
        Kind.STAGE,
        frozenset(categories),
        "a test",
        frozenset(evidence),
    )


def _scope(processing: Processing) -> Scope:
    with purposes.scope(processing) as found:
        return found


def _column(name: str) -> sa.Column:
    zone, table, column = name.split(".")
    return s.metadata.tables[f"{zone}.{table}"].c[column]


def test_referenced_sees_aliases_subqueries_and_whole_table_selects() -> None:
    u = s.portal_users
    alias = u.alias("someone")
    columns, _ = purposes.referenced(sa.select(alias.c.email).where(alias.c.company_id == 1))
    assert columns == {"personal.portal_users.email", "personal.portal_users.company_id"}
    inner = sa.select(u.c.subject_id).where(u.c.job_title == "x").subquery()
    columns, _ = purposes.referenced(sa.select(sa.func.count()).select_from(inner))
    assert "personal.portal_users.job_title" in columns
    columns, _ = purposes.referenced(sa.select(u))
    assert {"personal.portal_users.phone", "personal.portal_users.password_hash"} <= columns


@settings(max_examples=200, deadline=None)
@given(
    read=st.lists(st.sampled_from(PERSONAL_COLUMNS), min_size=1, max_size=6, unique=True),
    declared=st.sets(st.sampled_from(purposes.ALL_CATEGORIES)),
)
@example(read=sorted(purposes.RIGHTS_KEYS), declared=set())
def test_a_statement_is_stopped_exactly_when_it_reads_an_undeclared_category(
    read: list[str], declared: set[str]
) -> None:
    scope = _scope(_processing(tuple(declared)))
    statement = sa.select(*(_column(c) for c in read))
    # The rights key (a keyed pseudonym that joins people across systems) carries no category of
    # its own: every processing may match on it, so it can never be what a statement overreads.
    beyond = {CATEGORIES[c] for c in read if c not in purposes.RIGHTS_KEYS} - declared
    if beyond:
        with pytest.raises(PurposeViolation) as stopped:
            scope.inspect(statement, {})
        assert any(f"'{category}'" in str(stopped.value) for category in beyond)
        assert stopped.value.scope is scope
    else:
        scope.inspect(statement, {})
        assert scope.columns == set(read) - purposes.RIGHTS_KEYS


def test_legitimate_interest_over_people_must_leave_out_the_objectors() -> None:
    processing = _processing(("identity",), LawfulBasis.LEGITIMATE_INTEREST, "data_analytics")
    u = s.portal_users
    with pytest.raises(PurposeViolation, match="objected"):
        _scope(processing).inspect(sa.select(sa.func.count(u.c.first_name)), {})
    dates = SweepDates.for_date(load_notice(), dt.date(2026, 11, 23), use_worklist=False)
    leaves_out = sa.select(sa.func.count(u.c.first_name)).where(
        u.c.subject_id.not_in(restricted_subject_ids(dates))
    )
    _scope(processing).inspect(leaves_out, {})
    # Rows that reach nobody (web log roll-ups) need no exclusion.
    _scope(_processing((), LawfulBasis.LEGITIMATE_INTEREST)).inspect(
        sa.select(s.anon_web_traffic), {}
    )


def test_consent_processing_must_check_consent_in_force() -> None:
    processing = _processing(("contact", "marketing"), LawfulBasis.CONSENT)
    c, a, m = s.crm_contacts, s.crm_activities, s.marketing_suppression
    with pytest.raises(PurposeViolation, match="consent in force"):
        _scope(processing).inspect(sa.select(c.c.email), {})
    checked = sa.select(c.c.email).where(
        c.c.subject_id.in_(sa.select(a.c.subject_id).where(a.c.activity_type == "X")),
        c.c.subject_id.not_in(sa.select(m.c.subject_key)),
    )
    _scope(processing).inspect(checked, {})


def test_basis_evidence_is_read_but_not_judged_against_the_purpose() -> None:
    evidence = ("personal.invoices.issued_on",)
    processing = _processing(("contact",), evidence=evidence)
    scope = _scope(processing)
    scope.inspect(sa.select(s.invoices.c.issued_on, s.crm_contacts.c.email), {})
    assert scope.categories == {"contact"}
    assert "personal.invoices.issued_on" in scope.columns


def test_textual_sql_must_state_what_it_reads() -> None:
    scope = _scope(_processing(("usage",)))
    with pytest.raises(PurposeViolation, match="without stating"):
        scope.inspect(sa.text("SELECT amount_minor FROM personal.invoices"), {})
    with pytest.raises(PurposeViolation, match="'transaction'"):
        scope.inspect(
            "SELECT amount_minor FROM personal.invoices",
            {purposes.TEXT_READS: ("personal.invoices.amount_minor",)},
        )
    scope.inspect(sa.text("SELECT 1"), {})  # not the personal zone
    scope.inspect("INSERT INTO personal.x VALUES (?)", {purposes.TEXT_READS: ()})


def test_a_declaration_is_checked_against_its_purpose() -> None:
    notice = load_notice()
    assert purposes.check_declaration(_processing(("usage",), purpose="nowhere"), notice) == [
        "purpose 'nowhere' is not a processing activity of the notice"
    ]
    wrong = _processing(("usage", "financial"), LawfulBasis.CONSENT, "data_analytics")
    problems = purposes.check_declaration(wrong, notice)
    assert any("basis 'consent'" in p for p in problems)
    assert any("'financial'" in p and "not listed" in p for p in problems)
    assert purposes.check_declaration(
        _processing(("usage",), purpose="x", basis=LawfulBasis.CONSENT)
    )


def test_every_declaration_in_the_code_is_allowed_by_the_notice() -> None:
    processings = declared_processings()
    assert len(processings) >= 15
    assert declaration_problems(processings) == {}
    assert set(purposes.ALL_CATEGORIES) == {c.id for c in load_notice().categories}


def test_every_published_table_and_request_type_has_its_processing() -> None:
    from ccg_pipeline.requests.handlers import HANDLERS
    from ccg_pipeline.requests.handlers import PROCESSINGS as REQUESTS

    published = {table.name for _build, table in s.PUBLISHED}
    assert set(BUILDERS) == set(PROCESSINGS) == published
    assert set(HANDLERS) == set(REQUESTS)
    assert all(p.kind is Kind.STATISTICS for p in PROCESSINGS.values())


def test_a_processing_is_declared_once() -> None:
    first = purposes.declare(
        "test.once",
        purpose="data_analytics",
        basis="legitimate_interest",
        kind=Kind.STAGE,
        categories=("usage",),
        description="first",
    )
    try:
        with pytest.raises(ValueError, match="declared twice"):
            purposes.declare(
                "test.once",
                purpose="data_analytics",
                basis="legitimate_interest",
                kind=Kind.STAGE,
                categories=("usage", "technical"),
                description="second",
            )
        assert purposes.registered()["test.once"] == first
    finally:
        purposes.forget("test.once")


def test_policy_check_refuses_a_notice_that_no_longer_allows_a_declared_processing(
    tmp_path, capsys
) -> None:
    import yaml

    from ccg_pipeline.cli import main
    from ccg_pipeline.policy import NOTICE_FILE

    raw = yaml.safe_load(NOTICE_FILE.read_text(encoding="utf-8"))
    analytics = next(a for a in raw["processing_activities"] if a["id"] == "data_analytics")
    analytics["categories"] = ["usage"]  # web analytics may no longer read technical data
    narrowed = tmp_path / "notice.yaml"
    narrowed.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert main(["policy", "check", "--notice", str(narrowed)]) == 1
    out = capsys.readouterr()
    assert "statistics.web_traffic_daily" in out.err and "'technical'" in out.err
    assert "NOT ALLOWED" in out.out
    assert main(["policy", "check"]) == 0


def test_the_evidence_sees_every_declaration_the_source_makes() -> None:
    """N-BASIS compares what ran with what is declared; a module whose declarations the
    evidence run never imports would make its processings look undeclared (the demo found
    one). In a fresh interpreter, every module that calls `declare` is imported."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    package = Path(purposes.__file__).parent
    declaring = {
        ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
        if path.name != "purposes.py"
        and re.search(r"\bdeclare(_obligation)?\(", path.read_text(encoding="utf-8"))
    }
    probe = (
        "import sys; from ccg_pipeline.evidence.basis import declared_processings; "
        "declared_processings(); print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(declaring) >= 8
    assert declaring - set(loaded) == set()
