"""Deadline arithmetic at the clock's edges, and the cutoff the SQL sweep relies on."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccg_pipeline.policy import load_notice
from ccg_pipeline.policy.models import Period, RetentionRule
from ccg_pipeline.retention.deadlines import (
    add_months,
    deadline,
    expired_cutoff,
    financial_year_end_on_or_after,
)

pytestmark = pytest.mark.unit
SIX_YEARS = load_notice().rule("customer_basic")
D = dt.date


def test_exactly_six_years_is_due_on_the_anniversary() -> None:
    assert deadline(D(2020, 11, 23), SIX_YEARS) == D(2026, 11, 23)
    assert expired_cutoff(D(2026, 11, 23), SIX_YEARS) == D(2020, 11, 23)
    assert expired_cutoff(D(2026, 11, 22), SIX_YEARS) == D(2020, 11, 22)


def test_leap_day_customers_are_due_on_28_february() -> None:
    assert deadline(D(2020, 2, 29), SIX_YEARS) == D(2026, 2, 28)
    assert expired_cutoff(D(2026, 2, 28), SIX_YEARS) == D(2020, 2, 29)
    assert expired_cutoff(D(2026, 2, 27), SIX_YEARS) == D(2020, 2, 27)
    assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)


def test_financial_year_alignment_counts_from_the_year_end() -> None:
    assert financial_year_end_on_or_after(D(2020, 4, 5), "04-05") == D(2020, 4, 5)
    assert financial_year_end_on_or_after(D(2020, 4, 6), "04-05") == D(2021, 4, 5)
    assert deadline(D(2020, 4, 5), SIX_YEARS, align_to_year_end=True) == D(2026, 4, 5)
    assert deadline(D(2020, 4, 6), SIX_YEARS, align_to_year_end=True) == D(2027, 4, 5)
    # Everything that ceased in the year to 5 April 2020 becomes due together on 5 April 2026.
    assert expired_cutoff(D(2026, 4, 5), SIX_YEARS, align_to_year_end=True) == D(2020, 4, 5)
    assert expired_cutoff(D(2027, 4, 4), SIX_YEARS, align_to_year_end=True) == D(2020, 4, 5)
    assert expired_cutoff(D(2027, 4, 5), SIX_YEARS, align_to_year_end=True) == D(2021, 4, 5)


def _rule(years: int, months: int, days: int, align: bool, year_end: str) -> RetentionRule:
    return SIX_YEARS.model_copy(
        update={
            "period": Period(years=years, months=months, days=days),
            "align_to_financial_year_end": align,
            "financial_year_end": year_end,
        }
    )


@given(
    trigger=st.dates(D(2000, 1, 1), D(2030, 12, 31)),
    as_of=st.dates(D(2000, 1, 1), D(2040, 12, 31)),
    years=st.integers(0, 7),
    months=st.integers(0, 14),
    days=st.integers(0, 400),
    align=st.booleans(),
    year_end=st.sampled_from(["04-05", "03-31", "12-31", "02-28"]),
)
def test_cutoff_selects_exactly_the_rows_whose_deadline_has_come(
    trigger, as_of, years, months, days, align, year_end
) -> None:
    if not (years or months or days):
        days = 1
    rule = _rule(years, months, days, align, year_end)
    assert (trigger <= expired_cutoff(as_of, rule)) == (deadline(trigger, rule) <= as_of)
