"""The record of processing activities is complete, judges safeguards by date, and refuses
policy references that do not resolve."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ccg_pipeline import ropa
from ccg_pipeline.cli import main
from ccg_pipeline.policy import NOTICE_FILE, PolicyError, load_data_map, load_notice
from ccg_pipeline.policy.models import CLAUSE_IDS, Notice

pytestmark = pytest.mark.unit

AFTER_SCHREMS = dt.date(2026, 11, 24)
BEFORE_SCHREMS = dt.date(2019, 1, 1)
EXPECTED_COLUMNS = [
    "activity_id",
    "purpose",
    "processings",
    "lawful_bases",
    "legitimate_interests",
    "data_subjects",
    "personal_data_categories",
    "recipients",
    "transfers",
    "transfer_findings",
    "retention",
    "security_measures",
]
PACKAGE = Path(ropa.__file__).parent


def _record(as_of: dt.date) -> ropa.Ropa:
    return ropa.build_ropa(load_notice(), load_data_map(), as_of)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _raw_notice() -> dict[str, Any]:
    return yaml.safe_load(NOTICE_FILE.read_text(encoding="utf-8"))


def test_every_activity_appears_in_markdown_and_csv() -> None:
    notice = load_notice()
    record = _record(AFTER_SCHREMS)
    markdown, rows = ropa.render_markdown(record), _rows(ropa.render_csv(record))
    # Part 2's seven rows, and the legal-obligation processing of s.7, s.8 and s.9.
    assert len(notice.processing_activities) == 10
    for number, activity in enumerate(notice.processing_activities, start=1):
        assert f"### {number}. {activity.id}\n" in markdown
        assert activity.purpose in markdown
    assert [r["activity_id"] for r in rows] == [a.id for a in notice.processing_activities]
    assert [r["purpose"] for r in rows] == [a.purpose for a in notice.processing_activities]
    assert "Customs Connect Group Limited (company number 09917825)" in markdown
    assert "**As of:** 2026-11-24" in markdown


def test_csv_has_the_expected_columns_and_lists_split_back_on_the_separator() -> None:
    record = _record(AFTER_SCHREMS)
    text = ropa.render_csv(record)
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    assert reader.fieldnames == EXPECTED_COLUMNS
    assert len(rows) == len(record.activities)
    by_id = {r["activity_id"]: r for r in rows}
    analytics = by_id["data_analytics"]
    assert analytics["personal_data_categories"].split("; ") == ["Technical Data", "Usage Data"]
    assert analytics["data_subjects"].split("; ") == [
        "Customer contacts (portal users)",
        "Website visitors",
    ]
    assert by_id["account_access_and_payments"]["legitimate_interests"] == "li11 Invoicing"
    assert by_id["register_new_customer"]["legitimate_interests"] == ""
    # No list item may contain the separator, or a reader splitting on it would get wrong counts.
    for row, entry in zip(rows, record.activities, strict=True):
        assert len(row["recipients"].split("; ")) == len(entry.recipients) == 5
        assert len(row["transfers"].split("; ")) == len(entry.transfers)
        assert len(row["retention"].split("; ")) == len(entry.retention)
        assert len(row["security_measures"].split("; ")) == len(entry.security_measures)


def test_privacy_shield_is_a_finding_after_july_2020_naming_its_replacement() -> None:
    record = _record(AFTER_SCHREMS)
    shield = [
        t
        for a in record.activities
        for t in a.transfers
        if t.transfer_id == "us_service_providers_privacy_shield"
    ]
    assert len(shield) == len(record.activities)  # its categories overlap every activity's
    assert not any(t.in_force for t in shield)
    (finding,) = record.findings
    assert "EU-US Privacy Shield" in finding and "not in force on 2026-11-24" in finding
    assert "Replaced by EU-US Data Privacy Framework" in finding
    assert "in force on 2026-11-24" in finding.split("Replaced by")[1]
    markdown = ropa.render_markdown(record)
    findings_section = markdown.split("## Findings")[1].split("## Processing activities")[0]
    assert finding in findings_section
    assert "**Service providers, US: EU-US Privacy Shield (NOT IN FORCE)**" in markdown
    assert {r["transfer_findings"] for r in _rows(ropa.render_csv(record))} == {finding}


def test_privacy_shield_is_in_force_in_2019_and_nothing_is_flagged() -> None:
    record = _record(BEFORE_SCHREMS)
    shield = [t for a in record.activities for t in a.transfers if "Privacy Shield" in t.safeguard]
    assert shield and all(t.in_force for t in shield)
    assert record.findings == ()
    markdown = ropa.render_markdown(record)
    assert "## Findings\n\nNone.\n" in markdown
    assert "NOT IN FORCE" not in markdown
    assert {r["transfer_findings"] for r in _rows(ropa.render_csv(record))} == {""}


@pytest.mark.parametrize(
    ("as_of", "in_force"),
    [
        (dt.date(2016, 7, 31), False),
        (dt.date(2016, 8, 1), True),
        (dt.date(2020, 7, 15), True),
        (dt.date(2020, 7, 16), False),
    ],
)
def test_safeguard_validity_bounds(as_of: dt.date, in_force: bool) -> None:
    shield = next(s for s in load_notice().safeguards if s.id == "privacy_shield")
    assert ropa.safeguard_in_force(shield, as_of) is in_force


def test_a_replacement_not_yet_in_force_is_said_so() -> None:
    (finding,) = _record(dt.date(2021, 1, 1)).findings
    assert "not yet in force on 2021-01-01" in finding


def test_retention_comes_from_rules_sharing_a_category_with_who_decided() -> None:
    activities = {a.activity_id: a for a in _record(AFTER_SCHREMS).activities}
    analytics = {r.rule_id: r for r in activities["data_analytics"].retention}
    assert set(analytics) == {"web_logs_raw", "auth_logs_raw", "quarantine_raw"}
    assert analytics["web_logs_raw"].decided_by == "CCG decision"
    assert analytics["web_logs_raw"].text.startswith("90 days after the event")
    register = {r.rule_id: r for r in activities["register_new_customer"].retention}
    assert register["customer_basic"].decided_by == "decided by the notice"
    assert register["customer_basic"].text.startswith("6 years after")
    assert "web_logs_raw" not in register


def test_data_subject_references_resolve_and_cover_every_activity() -> None:
    notice, data_map = load_notice(), load_data_map()
    notice.check_data_subject_sources(data_map)  # raises on an unknown source
    activity_ids = {a.id for a in notice.processing_activities}
    assert {s.id for s in notice.data_subjects} >= {
        "customer_contacts",
        "prospects",
        "website_visitors",
        "requesters",
    }
    for subject in notice.data_subjects:
        assert set(subject.sources) <= set(data_map.sources)
        assert set(subject.activities) <= activity_ids
    covered = {a for s in notice.data_subjects for a in s.activities}
    assert covered == activity_ids  # every activity concerns someone
    entries = _record(AFTER_SCHREMS).activities
    assert all(e.data_subjects for e in entries)


def test_an_unknown_activity_in_a_data_subject_is_rejected_by_name(tmp_path: Path) -> None:
    raw = copy.deepcopy(_raw_notice())
    raw["data_subjects"][1]["activities"].append("fortune_telling")
    with pytest.raises(ValidationError, match="data subject 'prospects': unknown processing"):
        Notice.model_validate(raw)
    path = tmp_path / "notice.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown processing activity 'fortune_telling'"):
        load_notice(path)


def test_an_unknown_source_in_a_data_subject_is_rejected_by_name() -> None:
    raw = copy.deepcopy(_raw_notice())
    raw["data_subjects"][2]["sources"] = ["logs.web_access", "logs.fax"]
    notice = Notice.model_validate(raw)  # the notice alone cannot know the data map's sources
    expected = "'website_visitors': unknown data-map source 'logs.fax'"
    with pytest.raises(ValueError, match=re.escape(expected)):
        ropa.build_ropa(notice, load_data_map(), AFTER_SCHREMS)


def test_an_unknown_replacement_safeguard_is_rejected() -> None:
    raw = copy.deepcopy(_raw_notice())
    next(s for s in raw["safeguards"] if s["id"] == "privacy_shield")["replaced_by"] = "hope"
    with pytest.raises(ValidationError, match="unknown replaced_by 'hope'"):
        Notice.model_validate(raw)


def test_security_measures_are_cited_and_name_code_that_exists() -> None:
    notice = load_notice()
    assert len(notice.security_measures) >= 10
    assert all(m.clause in CLAUSE_IDS for m in notice.security_measures)
    for measure in notice.security_measures:
        for ref in re.findall(r"[\w/]+\.py", measure.description):
            assert any(str(p).endswith(ref) for p in PACKAGE.rglob(Path(ref).name)), (
                f"{measure.id} cites {ref}, which is not in the package"
            )
    names = tuple(m.name for m in notice.security_measures)
    assert all(a.security_measures == names for a in _record(AFTER_SCHREMS).activities)


def test_cli_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records"
    assert main(["ropa", "--as-of", "2026-11-24", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    markdown, table = out / "ropa.md", out / "ropa.csv"
    assert str(markdown) in printed and str(table) in printed
    assert "EU-US Privacy Shield, which is not in force on 2026-11-24" in markdown.read_text(
        encoding="utf-8"
    )
    rows = _rows(table.read_text(encoding="utf-8"))
    assert len(rows) == len(load_notice().processing_activities)


def test_cli_prints_markdown_without_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ropa", "--as-of", "2019-01-01"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Record of processing activities (GDPR art. 30)")
    assert "**As of:** 2019-01-01" in printed
    assert "## Findings\n\nNone." in printed


def test_the_record_lists_what_the_code_declares_and_changes_with_a_declaration() -> None:
    from ccg_pipeline.evidence.basis import declared_processings
    from ccg_pipeline.policy.models import LawfulBasis
    from ccg_pipeline.purposes import Kind, declare, forget

    def record_text() -> str:
        return ropa.render_markdown(
            ropa.build_ropa(load_notice(), load_data_map(), AFTER_SCHREMS, declared_processings())
        )

    before = record_text()
    assert "statistics.web_traffic_daily (published statistics table, legitimate interest)" in (
        before
    )
    assert "marketing.list" in before and "to establish the basis" in before
    declare(
        "statistics.planted_revenue_view",
        purpose="data_analytics",
        basis=LawfulBasis.LEGITIMATE_INTEREST,
        kind=Kind.STATISTICS,
        categories=("usage", "financial"),
        description="planted",
    )
    try:
        after = record_text()
    finally:
        forget("statistics.planted_revenue_view")
    assert after != before
    assert "statistics.planted_revenue_view (published statistics table" in after
    # A declaration the notice does not allow is a finding of the record, named.
    findings = after.split("## Findings")[1].split("## Processing activities")[0]
    assert "statistics.planted_revenue_view" in findings and "'financial'" in findings
    assert record_text() == before
