"""The notice and the data map load as validated data, and bad policy files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ccg_pipeline.policy import NOTICE_FILE, PolicyError, load_data_map, load_notice
from ccg_pipeline.policy.models import CLAUSE_IDS, Decision, Notice, Role

pytestmark = pytest.mark.unit


def test_notice_encodes_every_required_part() -> None:
    notice = load_notice()
    assert {c.id for c in notice.categories} == {
        "contact",
        "financial",
        "identity",
        "marketing",
        "profile",
        "technical",
        "transaction",
        "usage",
    }
    assert len(notice.legitimate_interests) == 17
    assert notice.processing_activities and notice.recipients and notice.transfers
    every_item = [
        *notice.categories,
        *notice.processing_activities,
        *notice.legitimate_interests,
        *notice.retention_rules,
        *notice.recipients,
        *notice.safeguards,
        *notice.transfers,
    ]
    assert all(item.clause in CLAUSE_IDS for item in every_item)


def test_six_year_rule_is_the_notices_and_open_periods_are_ccg_decisions() -> None:
    notice = load_notice()
    basic = notice.rule("customer_basic")
    assert (basic.period.years, basic.decided_by, basic.clause) == (6, Decision.NOTICE, "N-RET")
    assert set(basic.categories) == {"contact", "identity", "financial", "transaction"}
    assert basic.financial_year_end == "04-05"
    for open_period in (
        "web_logs_raw",
        "auth_logs_raw",
        "prospect_inactive",
        "profile_after_closure",
    ):
        assert notice.rule(open_period).decided_by is Decision.CCG


def _broken_notice(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(NOTICE_FILE.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "notice.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["categories"][0].update(clause="N-NOPE"), "unknown clause id 'N-NOPE'"),
        (
            lambda r: r["retention_rules"][0].update(period={"years": -1}),
            "retention period must be positive",
        ),
        (lambda r: r["retention_rules"][0].update(colour="red"), "retention_rules.0.colour"),
        (
            lambda r: r["retention_rules"][0].update(categories=["astrology"]),
            "unknown category 'astrology'",
        ),
        (
            lambda r: r["retention_rules"][0].update(
                align_to_financial_year_end=True, financial_year_end=None
            ),
            "needs financial_year_end",
        ),
        (lambda r: r["retention_rules"][0].update(financial_year_end="02-30"), "not a valid MM-DD"),
        (
            lambda r: r["transfers"][0].update(safeguard="handshake"),
            "unknown safeguard 'handshake'",
        ),
        (
            lambda r: r["legitimate_interests"].append(dict(r["legitimate_interests"][0])),
            "duplicate id 'li01'",
        ),
    ],
)
def test_bad_notice_is_rejected_naming_the_problem(tmp_path: Path, mutate, expected: str) -> None:
    path = _broken_notice(tmp_path, mutate)
    with pytest.raises(PolicyError, match=r"notice\.yaml") as err:
        load_notice(path)
    assert expected in str(err.value)


def test_unreadable_and_non_yaml_policy_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_notice(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_notice(bad)


def test_data_map_tags_every_source_column_with_a_known_category() -> None:
    notice: Notice = load_notice()
    data_map = load_data_map()
    categories = {c.id for c in notice.categories}
    assert set(data_map.sources) >= {
        "portal.companies",
        "portal.users",
        "portal.payments",
        "crm.contacts",
        "crm.activities",
        "logs.web_access",
        "logs.auth",
    }
    for spec in data_map.sources.values():
        for tag in spec.columns.values():
            assert tag.role is Role.NOT_PERSONAL or tag.category in categories
    assert data_map.check_columns("crm.contacts", ["Email", "Fax"]) == ["Fax"]
    assert "Email" in data_map.columns_with_role("crm.contacts", Role.DIRECT_IDENTIFIER)
