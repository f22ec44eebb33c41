"""The one-month clock of a data-subject request (N-RIGHTS, UK GDPR art. 12(3)).

- The answer is due one calendar month after receipt; when the next month is shorter, on its
  last day (received 31 January, due 28 or 29 February).
- The clock stops while the request waits for identity verification: the days it waited move
  the due date back by as many days.
- It may be extended by up to two further months, once the reason is recorded, and only while
  the first month runs: the subject must be told before the original due date.
"""

from __future__ import annotations

import calendar
import datetime as dt

MAX_EXTENSION_MONTHS = 2
DUE_SOON_DAYS = 7


class ClockError(ValueError):
    """An extension or verification the rules do not allow (message names the rule)."""


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, or that month's last day if it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(received: dt.date, verified: dt.date) -> dt.date:
    """One calendar month after receipt, plus the days the request waited for verification."""
    if verified < received:
        raise ClockError("a request cannot be verified before it was received")
    return add_months(received, 1) + (verified - received)


def extended_due_date(first_due: dt.date, months: int, today: dt.date) -> dt.date:
    """The due date after an extension of `months` (1 or 2) decided `today`."""
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ClockError(f"an extension is 1 to {MAX_EXTENSION_MONTHS} months")
    if today > first_due:
        raise ClockError(
            "an extension must be decided, and the subject told, within the first month"
        )
    return add_months(first_due, months)


def days_left(due: dt.date | None, today: dt.date) -> int | None:
    """Calendar days until the due date (negative when overdue); None while the clock is stopped."""
    return None if due is None else (due - today).days
