"""Retention deadline arithmetic, as pure functions of dates (N-RET).

A rule keeps data for a period after a trigger date (when a customer ceased, an account closed,
an opt-out, or the event itself). The deadline is `trigger + period`, optionally moved to the end
of the financial year the trigger falls in first (HMRC counts six years from the end of the
financial year the records relate to). Data is due for deletion on its deadline day.

The sweep works in SQL, so for an as-of date it needs the opposite question: what is the latest
trigger date whose deadline has been reached? Deadlines are monotone in the trigger date, so that
cutoff is found by bisection and one `trigger <= :cutoff` predicate selects every expired row on
SQLite and PostgreSQL alike, without date arithmetic in SQL.
"""

from __future__ import annotations

import calendar
import datetime as dt

from ccg_pipeline.policy.models import Period, RetentionRule


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day`: timestamps strictly before it fall on or before that day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months later; a day past the end of the target month becomes its last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def add_period(day: dt.date, period: Period) -> dt.date:
    return add_months(day, period.years * 12 + period.months) + dt.timedelta(days=period.days)


def financial_year_end_on_or_after(day: dt.date, month_day: str) -> dt.date:
    """The first financial-year end (MM-DD, e.g. 04-05) on or after `day`."""
    month, dom = (int(p) for p in month_day.split("-"))
    this_year = dt.date(day.year, month, min(dom, calendar.monthrange(day.year, month)[1]))
    if day <= this_year:
        return this_year
    return dt.date(day.year + 1, month, min(dom, calendar.monthrange(day.year + 1, month)[1]))


def deadline(
    trigger: dt.date, rule: RetentionRule, *, align_to_year_end: bool | None = None
) -> dt.date:
    """The day data triggered on `trigger` becomes due under `rule`."""
    align = rule.align_to_financial_year_end if align_to_year_end is None else align_to_year_end
    start = (
        financial_year_end_on_or_after(trigger, rule.financial_year_end or "04-05")
        if align
        else trigger
    )
    return add_period(start, rule.period)


def expired_cutoff(
    as_of: dt.date, rule: RetentionRule, *, align_to_year_end: bool | None = None
) -> dt.date:
    """The latest trigger date whose deadline is on or before `as_of` (rows triggered on or
    before it are due)."""
    low = as_of - dt.timedelta(
        days=366 * (rule.period.years + 2) + 31 * rule.period.months + rule.period.days + 400
    )
    high = as_of
    # Invariant: deadline(low) <= as_of < deadline(high + 1 day).
    while low < high:
        middle = low + (high - low + dt.timedelta(days=1)) // 2
        if deadline(middle, rule, align_to_year_end=align_to_year_end) <= as_of:
            low = middle
        else:
            high = middle - dt.timedelta(days=1)
    return low
