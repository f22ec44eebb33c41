"""Combined-log parsing on real Apache lines and on hostile ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.ingest.common import Rejected
from ccg_pipeline.ingest.logs import (
    _COMBINED,
    _COMBINED_PLAIN,
    parse_auth_line,
    parse_web_line,
)

pytestmark = pytest.mark.unit
FIXTURE = Path(__file__).parent.parent / "fixtures" / "apache_access_excerpt.log"
END = dt.datetime(2030, 1, 1)
GOOD = (
    '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png HTTP/1.1" 200 203023 '
    '"http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"'
)


def test_real_apache_excerpt_parses_except_the_truncated_line() -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    codes = []
    for line in lines:
        try:
            parse_web_line(line, END, 24, 48)
            codes.append("ok")
        except Rejected as exc:
            codes.append(exc.code)
    assert codes.count("ok") == 150 and codes[-1] == "malformed_line"


def test_a_line_is_minimised_and_typed() -> None:
    row = parse_web_line(GOOD, END, 24, 48)
    assert row["ip_prefix"] == "83.149.9.0/24"
    assert row["requested_at"] == dt.datetime(2015, 5, 17, 10, 5, 3)
    assert (row["method"], row["status"], row["bytes_sent"]) == ("GET", 200, 203023)
    assert "83.149.9.216" not in str(row)


def test_common_log_format_without_referrer_and_escaped_quotes() -> None:
    assert (
        parse_web_line(
            '10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.0" 304 -', END, 24, 48
        )["bytes_sent"]
        is None
    )
    ua = parse_web_line(GOOD.replace("Mozilla/5.0 (Macintosh)", 'Bot \\"quoted\\"'), END, 24, 48)[
        "user_agent"
    ]
    assert "quoted" in ua


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("", "malformed_line"),
        ("GET / HTTP/1.1", "malformed_line"),
        (GOOD.replace("83.149.9.216", "not-an-ip"), "bad_ip"),
        (GOOD.replace("17/May/2015", "32/May/2015"), "bad_date"),
        (GOOD.replace("2015", "2031"), "future_date"),
        (GOOD.replace("Mozilla/5.0 (Macintosh)", "x" * 20_000), "oversized_record"),
        (GOOD.replace("Macintosh", "Mac\udcffintosh"), "bad_encoding"),
        ("\x00\x01binary", "bad_encoding"),
    ],
)
def test_hostile_lines_are_rejected_with_a_named_reason(line: str, code: str) -> None:
    with pytest.raises(Rejected) as err:
        parse_web_line(line, END, 24, 48)
    assert err.value.code == code


KNOWN = frozenset({"ts", "event", "outcome", "username", "user_id", "ip", "user_agent"})


def test_auth_lines() -> None:
    row = parse_auth_line(
        '{"ts": "2026-11-23T08:00:00Z", "event": "login", "outcome": "success", "ip": "2001:db8:1:2::3", "user_id": 5}',
        KNOWN,
        END,
        24,
        48,
    )
    assert row["ip_prefix"] == "2001:db8:1::/48" and row["user_id"] == 5
    for line, code in [
        ("{not json", "malformed_line"),
        ("[1, 2]", "malformed_line"),
        ('{"ts": "2026-11-23T08:00:00Z", "event": "login"}', "missing_field"),
        ('{"ts": "2026-13-45T99:00:00Z", "event": "login", "outcome": "x"}', "bad_date"),
        (
            '{"ts": "2026-11-23T08:00:00Z", "event": "login", "outcome": "x", "password": "p"}',
            "unknown_column",
        ),
        (
            '{"ts": "2026-11-23T08:00:00Z", "event": "login", "outcome": "x", "user_id": "5; DROP TABLE"}',
            "bad_number",
        ),
    ]:
        with pytest.raises(Rejected) as err:
            parse_auth_line(line, KNOWN, END, 24, 48)
        assert err.value.code == code, line


_FIELD = st.text(alphabet=st.sampled_from('ab /"\\-.:[]'), max_size=12)


@settings(max_examples=400, deadline=None)
@given(ip=_FIELD, request=_FIELD, referrer=_FIELD, agent=_FIELD, tail=st.sampled_from(["", " "]))
def test_the_fast_pattern_agrees_with_the_full_one_whenever_it_matches(
    ip: str, request: str, referrer: str, agent: str, tail: str
) -> None:
    line = (
        f'{ip or "-"} - - [17/May/2015:10:05:03 +0000] "{request}" 200 12 '
        f'"{referrer}" "{agent}"{tail}'
    )
    fast = _COMBINED_PLAIN.match(line)
    full = _COMBINED.match(line)
    if fast is not None:
        assert full is not None and fast.groupdict() == full.groupdict()
    if "\\" not in line:
        assert (fast is None) == (full is None)


def test_escaped_quotes_fall_back_to_the_full_pattern() -> None:
    line = GOOD.replace("Mozilla/5.0 (Macintosh)", 'Mozilla \\"quoted\\" agent')
    assert _COMBINED_PLAIN.match(line) is None
    assert parse_web_line(line, END, 24, 48)["user_agent"] == 'Mozilla \\"quoted\\" agent'


@pytest.mark.parametrize(
    ("line", "code"),
    [
        pytest.param(GOOD.replace("203023", "9" * 19), "bad_number", id="bytes-past-int64"),
        pytest.param(GOOD.replace('"GET ', '"GET-AND-SOME-MORE '), "malformed_line", id="method"),
        pytest.param(GOOD.replace("HTTP/1.1", "HTTP/1.1-" + "x" * 8), "malformed_line", id="proto"),
    ],
)
def test_values_too_large_for_their_column_reject_the_line_not_the_file(
    line: str, code: str
) -> None:
    """A byte count past a 64-bit integer or a 17-character method would fail the whole file's
    insert (SQLite's OverflowError, PostgreSQL's varchar(16)); the line is refused instead."""
    with pytest.raises(Rejected) as caught:
        parse_web_line(line, END, 24, 48)
    assert caught.value.code == code
    assert parse_web_line(GOOD.replace("203023", "9" * 18), END, 24, 48)["bytes_sent"] == 10**18 - 1
