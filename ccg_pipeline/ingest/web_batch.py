"""Web-log lines parsed a chunk at a time with Arrow: a DFA match of the whole line (RE2, no
captures), fields cut out by splitting on quotes and spaces, and each label (region, site
section, browser, timestamp) computed once per distinct value.

This is a fast path, not a second parser. A line takes it only when its outcome is certain to be
the one `logs.parse_web_line` gives: an ASCII line within the length limit whose only whitespace
is the space, matched by the plain combined-format pattern, and whose timestamp and address the
per-line functions accept. Every other line (escaped quotes, tabs, non-ASCII text, anything that
would be rejected) is left to `parse_web_line`, so rejections keep their reasons and details.
`tests/unit/test_web_batch.py` checks that both give the same rows on generated, real and
hostile lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ccg_pipeline.anonymise.labels import browser_of, regions_of_networks, site_section
from ccg_pipeline.ingest.common import Rejected, minimise_ip

# `logs._COMBINED_PLAIN` restricted to printable ASCII, with the space as the only whitespace
# (Python's \s also counts \x0b and \x1c-\x1f, RE2's does not), no quote before the request (so
# quotes only delimit and splitting on them finds the fields) and at most 18 digits of bytes (an
# int64). One DFA pass decides which lines take the fast path.
_NO_SPACE_OR_QUOTE = r"[!#-~]"  # printable, not " or space
_TIME_CHAR = r"[ !#-\\^-~]"  # printable, not " or ]
_QUOTED_CHAR = r"[ !#-\[\]-~]"  # printable, not " or \
PLAIN_COMBINED = (
    rf"^{_NO_SPACE_OR_QUOTE}+ {_NO_SPACE_OR_QUOTE}+ {_NO_SPACE_OR_QUOTE}+ \[{_TIME_CHAR}+\] "
    rf'"{_QUOTED_CHAR}*" [0-9]{{3}} (?:[0-9]{{1,18}}|-)'
    rf'(?: "{_QUOTED_CHAR}*" "{_QUOTED_CHAR}*")? *$'
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
ROW_KEYS = (
    "site_section",
    "browser_family",
    "visitor_region",
    "requested_at",
    "ip_prefix",
    "method",
    "url",
    "protocol",
    "status",
    "bytes_sent",
    "referrer",
    "user_agent",
)


@dataclass
class WebChunk:
    """A chunk's lines split in two: `rows` (an Arrow table with `ROW_KEYS`), the rows of the
    lines at `positions`; and `left`, the positions `parse_web_line` must decide."""

    rows: pa.Table
    positions: list[int]
    left: list[int]

    @classmethod
    def all_left(cls, count: int) -> WebChunk:
        """No line taken: the per-line parser decides all `count` (the previous implementation,
        which the equivalence test and the ingest benchmark compare with)."""
        empty = pa.table({key: pa.array([], pa.null()) for key in ROW_KEYS})
        return cls(empty, [], list(range(count)))


def _regions(prefixes: pa.Array) -> pa.Array:
    """Each prefix's region (null for null), looked up once per distinct prefix, in one call."""
    encoded = prefixes.dictionary_encode()
    labels = pa.array(regions_of_networks(encoded.dictionary.to_pylist()), type=pa.string())
    return labels.take(encoded.indices)


def _per_distinct(values: pa.Array, label: Callable[[Any], Any], type_: pa.DataType) -> pa.Array:
    """`label` of each value, computed once per distinct value; null where it rejects (the
    values themselves are never null where it accepts)."""
    encoded = values.dictionary_encode(null_encoding="encode")
    labels = []
    for value in encoded.dictionary.to_pylist():
        try:
            labels.append(label(value))
        except Rejected:
            labels.append(None)
    return pa.array(labels, type=type_).take(encoded.indices)


def _as_arrow(lines: Sequence[str]) -> pa.Array:
    """The lines as an Arrow array; a line Arrow cannot hold (undecodable bytes kept as
    surrogates) becomes null and stays with the per-line parser."""
    try:
        return pa.array(lines, type=pa.string())
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return pa.array([_encodable(line) for line in lines], type=pa.string())


def _encodable(line: str) -> str | None:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return line


def _element(lists: pa.Array, index: int) -> pa.Array:
    return pc.list_element(lists, index)


def parse_web_lines(
    lines: Sequence[str],
    window_end: dt.datetime,
    v4_bits: int,
    v6_bits: int,
    *,
    max_chars: int,
    max_word_chars: int,
) -> WebChunk:
    """The rows `parse_web_line` gives for the lines on the fast path, as columns; the others
    are left to it."""
    texts = _as_arrow(lines)
    eligible = pc.and_kleene(
        pc.less_equal(pc.binary_length(texts), max_chars),
        pc.match_substring_regex(texts, PLAIN_COMBINED),
    )
    chosen = pc.indices_nonzero(pc.fill_null(eligible, False))
    # host ident user [time] "request" status bytes ["referrer" "agent"]: split on the quotes
    # (four more at the end give a line without the referrer and agent the same seven places),
    # the head on its first three spaces ("[time] " is the rest), the middle on its space.
    quoted = pc.split_pattern(pc.binary_join_element_wise(texts.take(chosen), '""""', ""), '"')
    has_tail = pc.equal(pc.list_value_length(quoted), 11)
    head = pc.split_pattern(_element(quoted, 0), " ", max_splits=3)
    request = _element(quoted, 1)
    middle = pc.split_pattern(pc.utf8_trim(_element(quoted, 2), " "), " ")
    size = _element(middle, 1)
    agent = pc.if_else(has_tail, _element(quoted, 5), None)
    method, url, protocol = _request_parts(request)
    prefix = _ip_prefixes(_element(head, 0), v4_bits, v6_bits)
    requested_at = _clf_times(pc.utf8_slice_codeunits(_element(head, 3), 1, -2), window_end)
    rows = pa.table(
        {
            "site_section": _per_distinct(url, site_section, pa.string()),
            "browser_family": _per_distinct(agent, browser_of, pa.string()),
            "visitor_region": _regions(prefix),
            "requested_at": requested_at,
            "ip_prefix": prefix,
            "method": method,
            "url": url,
            "protocol": protocol,
            "status": pc.cast(_element(middle, 0), pa.int64()),
            "bytes_sent": pc.cast(pc.if_else(pc.equal(size, "-"), None, size), pa.int64()),
            "referrer": pc.if_else(has_tail, _element(quoted, 3), None),
            "user_agent": agent,
        }
    )
    # A null time or prefix: a value the per-line functions reject, or one they must judge;
    # a method or protocol too long for its column is rejected there too.
    sure = pc.and_(pc.is_valid(requested_at), pc.is_valid(prefix))
    for word in (method, protocol):
        short = pc.less_equal(pc.utf8_length(word), max_word_chars)
        sure = pc.and_(sure, pc.fill_null(short, True))
    positions = chosen.filter(sure).to_pylist()
    taken = set(positions)
    return WebChunk(rows.filter(sure), positions, [i for i in range(len(lines)) if i not in taken])


def _request_parts(request: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """'GET /x HTTP/1.1' -> method, URL, protocol; anything not three words is all URL (None
    when empty), as `parse_web_line` splits it."""
    words = pc.split_pattern(pc.binary_join_element_wise(request, "  ", ""), " ")
    three = pc.equal(pc.list_value_length(words), 5)  # two padding words added
    whole = pc.if_else(pc.equal(request, ""), None, request)
    return (
        pc.if_else(three, _element(words, 0), None),
        pc.if_else(three, _element(words, 1), whole),
        pc.if_else(three, _element(words, 2), None),
    )


def _ip_prefixes(ip: pa.Array, v4_bits: int, v6_bits: int) -> pa.Array:
    """`minimise_ip` of each address (null where it rejects): IPv4 at /24, nearly every line,
    in Arrow; the rest once per distinct address."""

    def minimised(raw: str | None) -> str | None:
        return None if raw is None else minimise_ip(raw, v4_bits, v6_bits)

    if v4_bits != 24:
        return _per_distinct(ip, minimised, pa.string())
    v4 = pc.match_substring_regex(ip, IPV4)
    network = _element(pc.split_pattern(ip, ".", max_splits=1, reverse=True), 0)
    others = _per_distinct(pc.if_else(v4, None, ip), minimised, pa.string())
    return pc.if_else(v4, pc.binary_join_element_wise(network, ".0/24", ""), others)


# `logs.parse_clf_time`'s fixed layout with digits only and a year of this era: other shapes
# (signs or spaces its int() would take, year 0) are left to it.
CLF_TIME = (
    r"^[0-9]{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/(?:19[7-9][0-9]|20[0-9]{2}):"
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$"
)
_MONTH_NAMES = pa.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)
_MONTH_NUMBERS = pa.array([f"{m:02d}" for m in range(1, 13)])
_ISO = "%Y-%m-%dT%H:%M:%S"


def _digits(raw: pa.Array, shaped: pa.Array, start: int) -> pa.Array:
    """The two digits at `start` of each well-shaped time ("0" elsewhere, so casts succeed)."""
    return pc.if_else(shaped, pc.utf8_slice_codeunits(raw, start, start + 2), "0")


def _clf_times(raw: pa.Array, window_end: dt.datetime) -> pa.Array:
    """'17/May/2015:10:05:03 +0000' to naive UTC, as `parse_clf_time` computes it; null for a
    time it would reject (Arrow's strptime rolls 30 February and second 60 over: the parsed day,
    hour, minute and second must be the ones written) or one at or after the window end."""
    shaped = pc.match_substring_regex(raw, CLF_TIME)
    month = pc.take(_MONTH_NUMBERS, pc.index_in(pc.utf8_slice_codeunits(raw, 3, 6), _MONTH_NAMES))
    iso = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(raw, 7, 11), month, pc.utf8_slice_codeunits(raw, 0, 2), "-"
    )
    iso = pc.binary_join_element_wise(iso, pc.utf8_slice_codeunits(raw, 12, 20), "T")
    local = pc.strptime(iso, format=_ISO, unit="us", error_is_null=True)
    valid = shaped
    for start, part in ((0, pc.day), (12, pc.hour), (15, pc.minute), (18, pc.second)):
        written = pc.cast(_digits(raw, shaped, start), pa.int64())
        valid = pc.and_kleene(valid, pc.equal(part(local), written))
    hours = pc.cast(_digits(raw, shaped, 22), pa.int64())
    minutes = pc.cast(_digits(raw, shaped, 24), pa.int64())
    offset_us = pc.multiply(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), 1_000_000)
    east = pc.equal(pc.utf8_slice_codeunits(raw, 21, 22), "+")
    signed = pc.if_else(east, offset_us, pc.negate(offset_us))
    utc_us = pc.subtract(pc.cast(local, pa.int64()), signed)
    utc = pc.cast(utc_us, pa.timestamp("us"))
    in_window = pc.less(utc, pa.scalar(window_end, pa.timestamp("us")))
    return pc.if_else(pc.fill_null(pc.and_kleene(valid, in_window), False), utc, None)
