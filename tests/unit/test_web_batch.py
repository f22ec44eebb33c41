"""The columnar web-log parser (`ccg_pipeline/ingest/web_batch.py`) against the per-line one:
every row it gives is the row `parse_web_line` gives for that line, on real, generated and
hostile lines; and it takes nearly every ordinary line (the fast path is really used)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ccg_pipeline.devtools.generate import _web_lines
from ccg_pipeline.ingest.common import Rejected
from ccg_pipeline.ingest.logs import MAX_LINE_CHARS, MAX_WORD_CHARS, parse_web_line
from ccg_pipeline.ingest.web_batch import ROW_KEYS, parse_web_lines

pytestmark = pytest.mark.unit
FIXTURE = Path(__file__).parent.parent / "fixtures" / "apache_access_excerpt.log"
END = dt.datetime(2026, 11, 24)


def _per_line(line: str, end: dt.datetime, v4_bits: int) -> dict | str:
    try:
        return parse_web_line(line, end, v4_bits, 48)
    except Rejected as exc:
        return exc.code


def _check_same_rows(
    lines: list[str], end: dt.datetime = END, v4_bits: int = 24
) -> tuple[int, int]:
    """Every row the columnar parser gives equals the per-line row; returns (taken, accepted
    by the per-line parser)."""
    chunk = parse_web_lines(
        lines, end, v4_bits, 48, max_chars=MAX_LINE_CHARS, max_word_chars=MAX_WORD_CHARS
    )
    rows = chunk.rows.to_pylist()
    assert len(rows) == len(chunk.positions)
    assert sorted(chunk.positions + chunk.left) == list(range(len(lines)))
    for position, row in zip(chunk.positions, rows, strict=True):
        expected = _per_line(lines[position], end, v4_bits)
        assert isinstance(expected, dict), (position, expected)
        assert row == expected, position
        assert list(row) == list(ROW_KEYS)
    accepted = sum(isinstance(_per_line(line, end, v4_bits), dict) for line in lines)
    return len(rows), accepted


def test_real_apache_lines_give_the_same_rows_and_take_the_fast_path() -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    taken, accepted = _check_same_rows(lines, dt.datetime(2030, 1, 1))
    # The excerpt's ordinary lines all take it; a few carry escaped quotes or non-ASCII text.
    assert accepted == 150 and taken >= 140


def test_generated_lines_give_the_same_rows_and_take_the_fast_path() -> None:
    rng = random.Random(5)
    day = dt.date(2026, 11, 23)
    lines = list(_web_lines(rng, day, 3_000, 0.02, ["someone@example.com"]))
    taken, accepted = _check_same_rows(lines)
    assert taken == accepted > 2_800  # every line the per-line parser accepts, v6 included


def test_a_prefix_length_other_than_24_goes_through_the_per_line_function() -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()[:40]
    taken, _ = _check_same_rows(lines, dt.datetime(2030, 1, 1), v4_bits=16)
    assert taken > 30


def test_an_empty_chunk() -> None:
    chunk = parse_web_lines(
        [], END, 24, 48, max_chars=MAX_LINE_CHARS, max_word_chars=MAX_WORD_CHARS
    )
    assert chunk.rows.num_rows == 0 and chunk.positions == [] and chunk.left == []


GOOD = (
    '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png HTTP/1.1" 200 203023 '
    '"http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"'
)

# Pieces of a line, (ordinary, hostile): where Python's re and RE2 differ (\s, \d beyond
# ASCII), dates Arrow's strptime rolls over, addresses ipaddress refuses, quotes and escapes.
PIECES: list[tuple[list[str], list[str]]] = [
    (
        ["83.149.9.216", "10.0.0.1", "255.255.255.255", "2001:db8::7", "::1"],
        ["256.1.1.1", "01.2.3.4", "1.2.3", "fe80::1%eth0", "x", '8.8.8."8', "1.2.3.4\x0b",
         "١.2.3.4", "-"],
    ),
    (
        ["17/May/2015:10:05:03 +0000", "29/Feb/2016:23:59:59 -0130", "01/Jan/1970:00:30:00 +0100",
         "23/Nov/2026:23:59:59 +0000", "17/May/2015:10:05:03 +0099"],
        ["30/Feb/2015:10:05:03 +0000", "31/Apr/2015:00:00:00 +0000", "17/May/2015:24:00:00 +0000",
         "17/May/2015:10:60:00 +0000", "17/May/2015:10:05:60 +0000", "17/may/2015:10:05:03 +0000",
         "17/May/0000:10:05:03 +0000", "+7/May/2015:10:05:03 +0000", " 7/May/2015:10:05:03 +0000",
         "17/May/2015:10:05:03 *0000", "24/Nov/2026:00:00:00 +0000", "24/Nov/2026:00:59:59 +0100",
         "17/May/2015:10:05:03", '17/May/2015:10:05:03 "0000', "17/Maj/2015:10:05:03 +0000"],
    ),
    (
        ["GET / HTTP/1.1", "GET /portal/login?x=1 HTTP/1.0", "", "GET", "GET /a", "a  b",
         "GET /a b c HTTP/1.1", "POST /x HTTP/1.1 ", "PROPFIND /x HTTP/1.1"],
        [r"GET /\"q\" HTTP/1.1", "GET /å HTTP/1.1", "GET /\tx HTTP/1.1", 'GET /"x HTTP/1.1',
         "GET / HTTP/1.1-WITH-A-LONG-NAME", "A-SEVENTEEN-CHARS / HTTP/1.1"],
    ),
    (["200", "404", "500"], ["20", "2000", "٢٠٠", "abc"]),
    (["0", "203023", "-", "0123", "9" * 18], ["1" * 19, "9" * 25, "", "12a"]),
    (
        ["", ' "-" "Mozilla/5.0"', ' "http://x/" ""', ' "" ""', ' "-" "Bot/1.0 (Windows NT)"'],
        [' "a\\"b" "c"', ' "-"', ' "ref" "agent" extra', ' "ref"  "agent"'],
    ),
    (["", " ", "   "], ["\t", "\x0b", "\x1c", "\xa0", "\x00", "\r"]),
]  # fmt: skip


@st.composite
def combined_lines(draw: st.DrawFn) -> str:
    """An ordinary line with at most one hostile piece, and perhaps one character put in."""
    hostile = draw(st.integers(-1, len(PIECES) - 1))
    ip, time, request, status, size, tail, ending = (
        draw(st.sampled_from(bad if k == hostile else ordinary))
        for k, (ordinary, bad) in enumerate(PIECES)
    )
    line = f'{ip} - - [{time}] "{request}" {status} {size}{tail}{ending}'
    if draw(st.integers(0, 3)):
        return line
    # A character put somewhere: anything, the surrogate of an undecodable byte included.
    at = draw(st.integers(0, len(line)))
    extra = draw(st.characters(min_codepoint=0, max_codepoint=0x2FFF) | st.just("\udcff"))
    return line[:at] + extra + line[at:]


@settings(max_examples=300, deadline=None)
@given(st.lists(combined_lines(), min_size=1, max_size=40))
@example([GOOD, GOOD.replace("+0000", "+0130"), GOOD + "\t", "x" * (MAX_LINE_CHARS + 1)])
@example(['1.2.3.4 - - [24/Nov/2026:00:59:59 +0100] "GET / HTTP/1.1" 200 5'])
def test_hostile_lines_give_the_same_rows_or_are_left_to_the_per_line_parser(
    lines: list[str],
) -> None:
    _check_same_rows(lines)
