"""Narrow value logic: email matching keys, IP minimisation, timestamps, money."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccg_pipeline.ingest.common import (
    Rejected,
    minimise_ip,
    normalise_email,
    parse_money_minor,
    parse_timestamp,
    pseudonym,
)
from ccg_pipeline.ingest.logs import parse_clf_time

pytestmark = pytest.mark.unit


def test_same_person_with_differing_case_and_whitespace_matches() -> None:
    variants = [
        "anna.berg@firma.se",
        "  Anna.Berg@Firma.SE ",
        "ANNA.BERG@FIRMA.SE",
        "Anna.berg@firma.se\t",
    ]
    assert {normalise_email(v) for v in variants} == {"anna.berg@firma.se"}


@pytest.mark.parametrize(
    "bad", ["", "   ", "no-at-sign", "a@b", "two@@ats.com", "sp ace@x.com", None]
)
def test_bad_emails_are_rejected_without_echoing_the_value(bad: str | None) -> None:
    with pytest.raises(Rejected) as err:
        normalise_email(bad)
    assert err.value.code == "bad_email"
    if bad and bad.strip():
        assert bad.strip() not in str(err.value)


@given(st.emails())
def test_email_normalisation_is_idempotent(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once
    assert normalise_email(f"  {email.upper()} ") == once


@given(st.ip_addresses(v=4))
def test_ipv4_keeps_only_the_24_bit_network(address: ipaddress.IPv4Address) -> None:
    prefix = minimise_ip(str(address))
    network = ipaddress.ip_network(prefix)
    assert network.prefixlen == 24 and address in network
    assert prefix.endswith(".0/24")


@given(st.ip_addresses(v=6))
def test_ipv6_keeps_only_the_48_bit_network(address: ipaddress.IPv6Address) -> None:
    network = ipaddress.ip_network(minimise_ip(str(address)))
    assert network.prefixlen == 48 and address in network


def _minimised_by_ipaddress(raw: str, bits: int) -> str:
    """The definition: what Python's `ipaddress` makes of the text ("rejected" where it fails)."""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return "rejected"
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


IPV6_TEXT = st.one_of(
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.ip_addresses(v=6).map(lambda a: f"::ffff:{a.exploded[-9:]}"),  # IPv4-mapped, in hex
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),  # IPv4-mapped, dotted
    st.sampled_from(["fe80::1%eth0", "::", "::1", "1::2:3:4:5:6:7", "::ffff:01.2.3.4"]),
    st.text(alphabet="0123456789abcdefABCDEF:.%", min_size=2, max_size=45).filter(
        lambda t: ":" in t
    ),
    st.lists(st.text(alphabet="0123456789abcdef", max_size=5), min_size=2, max_size=10).map(
        ":".join
    ),
)


@settings(max_examples=500)
@given(IPV6_TEXT, st.sampled_from([32, 48, 56, 64, 96, 100, 128]))
def test_the_fast_ipv6_minimisation_agrees_with_ipaddress(raw: str, bits: int) -> None:
    """The C library's parser (`_ipv6_prefix`) takes most IPv6 addresses; on any text with a
    colon, the outcome must equal `ipaddress`'s: the same network, or rejected by both."""
    expected = _minimised_by_ipaddress(raw, bits)
    try:
        got = minimise_ip(raw, 24, bits)
    except Rejected:
        got = "rejected"
    assert got == expected


@pytest.mark.parametrize("bad", ["999.1.1.1", "1.2.3", "example.com", "1.2.3.4.5", "::zz"])
def test_non_addresses_are_rejected(bad: str) -> None:
    with pytest.raises(Rejected, match="bad_ip"):
        minimise_ip(bad)


def test_pseudonym_is_keyed() -> None:
    assert pseudonym("k1", "a@b.se") == pseudonym("k1", "a@b.se")
    assert pseudonym("k1", "a@b.se") != pseudonym("k2", "a@b.se")
    assert "a@b.se" not in pseudonym("k1", "a@b.se")


def test_clf_time_converts_offsets_to_utc() -> None:
    assert parse_clf_time("17/May/2015:10:05:03 +0000") == dt.datetime(2015, 5, 17, 10, 5, 3)
    assert parse_clf_time("17/May/2015:10:05:03 +0200") == dt.datetime(2015, 5, 17, 8, 5, 3)
    assert parse_clf_time("31/Dec/2015:23:30:00 -0100") == dt.datetime(2016, 1, 1, 0, 30, 0)
    for bad in ("30/Feb/2015:10:05:03 +0000", "17/Mai/2015:10:05:03 +0000", "17/May/2015 10:05:03"):
        with pytest.raises(Rejected, match="bad_date"):
            parse_clf_time(bad)


def test_timestamps_reject_future_values_at_the_interval_end() -> None:
    end = dt.datetime(2026, 11, 24)
    assert parse_timestamp("2026-11-23T23:59:59Z", "ts", not_after=end) == dt.datetime(
        2026, 11, 23, 23, 59, 59
    )
    with pytest.raises(Rejected, match="future_date"):
        parse_timestamp("2026-11-24 00:00:00", "ts", not_after=end)
    with pytest.raises(Rejected, match="bad_date: ts is not a valid timestamp"):
        parse_timestamp("2021-02-30 10:00:00", "ts")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_money_round_trips_exactly(minor: int) -> None:
    sign = "-" if minor < 0 else ""
    text = f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"
    assert parse_money_minor(text, "amount") == minor


@pytest.mark.parametrize("bad", ["12,50", "", "1.234", "abc", "1e5", None])
def test_bad_amounts_are_rejected(bad: str | None) -> None:
    with pytest.raises(Rejected, match="bad_number"):
        parse_money_minor(bad, "amount")
