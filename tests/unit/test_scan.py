"""Identifier detectors and `ccg scan`: planted leaks, obfuscated variants, clean look-alikes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from identifier_samples import CLEAN, OBFUSCATED, PLANTED

from ccg_pipeline.cli import main
from ccg_pipeline.scan import scan_arrow, scan_frame
from ccg_pipeline.scan.detectors import DETECTORS, find, luhn_ok, mask

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


# --- the joined-row pass finds what a cell-by-cell scan finds ------------------------------------


def _cell_by_cell(table: pa.Table) -> list[tuple[int, str, str, str]]:
    """The definition of a finding, with no prefilter: every detector's confirmed matches in
    every cell, by column, then row."""
    findings = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        for row, value in enumerate(column.cast(pa.string()).to_pylist()):
            for detector in DETECTORS:
                findings += [
                    (row, name, detector.name, mask(m)) for m in find(value or "", detector)
                ]
    return findings


# Cells that start or end with an identifier, look-alikes, separators and control characters:
# the joined pass puts cells side by side, where a `\b` or a digit run could change at the edge.
SAMPLES = [text for texts in PLANTED.values() for text in texts] + CLEAN
CELL = st.one_of(
    st.none(),
    st.sampled_from(SAMPLES),
    st.sampled_from(SAMPLES).map(lambda text: text.split(" ")[-1]),
    st.sampled_from(SAMPLES).map(lambda text: text.split(" ")[0]),
    st.text(alphabet="0123456789 -+@.\x1f\t\nabzABZ:/?=#", max_size=24),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=12)
    ),
    st.integers(min_value=1, max_value=5),
)
def test_the_joined_row_scan_finds_exactly_what_a_cell_by_cell_scan_finds(
    rows: list[list[str | None]], slice_rows: int
) -> None:
    import ccg_pipeline.scan as scan

    width = len(rows[0]) if rows else 2
    table = pa.table({f"c{i}": pa.array([r[i] for r in rows], pa.string()) for i in range(width)})
    original = scan.SLICE_ROWS
    scan.SLICE_ROWS = slice_rows  # several batches, and rows numbered across them
    try:
        found = [(f.row, f.column, f.detector, f.masked) for f in scan.scan_arrow(table)]
    finally:
        scan.SLICE_ROWS = original
    assert found == _cell_by_cell(table)


def test_numbers_dates_and_utf8_bytes_are_scanned_as_text_and_nested_columns_are_skipped() -> None:
    import datetime as dt

    table = pa.table(
        {
            "card": pa.array([4111111111111111, 12], pa.int64()),
            "day": pa.array([dt.date(2024, 1, 2), None]),
            "blob": pa.array([None, b"anna@example.com"], pa.binary()),
            "nested": pa.array([["4111111111111111"], None], pa.list_(pa.string())),
            "note": pa.array(["x", "SW1A 1AA"]),
        }
    )
    found = [(f.row, f.column, f.detector) for f in scan_arrow(table)]
    assert found == [(0, "card", "payment_card"), (1, "blob", "email"), (1, "note", "uk_postcode")]


def test_scanning_a_file_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas takes about a second to import, most of `ccg scan`'s time on a 100 MB file."""
    import subprocess
    import sys

    path = tmp_path / "export.csv"
    path.write_text("id,note\n1,call +44 20 7946 0958\n2,\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from ccg_pipeline.cli import main\n"
        f"code = main(['scan', {str(path)!r}])\n"
        "print(code, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.splitlines()[-1] == "1 False"
