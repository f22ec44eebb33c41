"""Identifier detectors and `ccg scan`: planted leaks, obfuscated variants, clean look-alikes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from identifier_samples import CLEAN, OBFUSCATED, PLANTED

from ccg_pipeline.cli import main
from ccg_pipeline.scan import scan_frame
from ccg_pipeline.scan.detectors import DETECTORS, luhn_ok

pytestmark = pytest.mark.unit


def _findings(texts: list[str]) -> list[tuple[int, str]]:
    return [(f.row, f.detector) for f in scan_frame(pd.DataFrame({"value": texts}))]


@pytest.mark.parametrize("detector", sorted(PLANTED))
def test_every_planted_identifier_is_found_by_its_detector(detector: str) -> None:
    texts = PLANTED[detector] + OBFUSCATED.get(detector, [])
    found = {row for row, name in _findings(texts) if name == detector}
    assert found == set(range(len(texts))), [texts[i] for i in set(range(len(texts))) - found]


def test_every_detector_class_has_planted_cases() -> None:
    assert {d.name for d in DETECTORS} == set(PLANTED)


def test_clean_look_alikes_are_not_flagged() -> None:
    assert [(CLEAN[row], name) for row, name in _findings(CLEAN)] == []


def test_findings_are_masked_and_point_at_the_row_and_column() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "note": ["fine", "mail anna.svensson@example.se", None]})
    (finding,) = scan_frame(frame)
    assert (finding.row, finding.column, finding.detector) == (1, "note", "email")
    assert "svensson" not in finding.masked and "example" not in finding.masked


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_scan_command_exit_codes_and_json(tmp_path: Path, capsys) -> None:
    clean = tmp_path / "clean.csv"
    clean.write_text("order,amount\n00012345,12.50\n", encoding="utf-8")
    leaky = tmp_path / "leaky.csv"
    leaky.write_text("order,note\n1,ok\n2,call +44 20 7946 0958\n", encoding="utf-8")
    assert main(["scan", str(clean)]) == 0
    capsys.readouterr()
    assert main(["scan", str(leaky), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] == [
        {"row": 1, "column": "note", "detector": "phone_uk", "masked": "+4************58"}
    ]
    assert main(["scan", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert main(["scan", str(tmp_path / "notes.txt")]) == 2
    parquet = tmp_path / "leaky.parquet"
    pd.DataFrame({"n": ["4111 1111 1111 1111"]}).to_parquet(parquet)
    assert main(["scan", str(parquet)]) == 1


def test_a_repeated_header_name_is_scanned_as_its_own_column(tmp_path: Path, capsys) -> None:
    """Two `Email` columns: both are read and named apart, neither is lost or a crash."""
    path = tmp_path / "export.csv"
    path.write_text("Email,Email\nnobody,anna@example.com\n", encoding="utf-8")
    assert main(["scan", str(path), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["column"], f["detector"]) for f in findings] == [("Email #2", "email")]


def test_leading_zeros_survive_a_byte_order_mark(tmp_path: Path) -> None:
    from ccg_pipeline.scan import read_file

    path = tmp_path / "ids.csv"
    path.write_bytes("\ufeffid,name\n007,x\n".encode())
    assert read_file(path).column("id").to_pylist() == ["007"]
