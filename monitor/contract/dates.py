"""Dates as the bureau counts them: its time zone, and one month arithmetic for every stage.

Pure. A run's date is a day in Asia/Shanghai whatever the machine's clock
says; "n months earlier" is the same day of that month, clamped to its end
(as ``pandas.DateOffset`` does), for the generator's delivery calendar, the
model's snapshots and labels and the tune's monthly dates alike.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

BUREAU_TIME_ZONE = ZoneInfo("Asia/Shanghai")
MONTHS_PER_YEAR = 12


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (earlier when negative), clamped to the month's end.

    Examples
    --------
    >>> add_months(dt.date(2026, 8, 31), -6)
    datetime.date(2026, 2, 28)
    >>> add_months(dt.date(2024, 1, 31), 1)
    datetime.date(2024, 2, 29)
    """
    index = day.year * MONTHS_PER_YEAR + day.month - 1 + months
    year, month = divmod(index, MONTHS_PER_YEAR)
    first_next = dt.date(year + (month == MONTHS_PER_YEAR - 1), (month + 1) % MONTHS_PER_YEAR + 1,
                         1)
    last = (first_next - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` earlier, clamped to the month's end.

    Examples
    --------
    >>> months_before(dt.date(2026, 6, 30), 4)
    datetime.date(2026, 2, 28)
    """
    return add_months(day, -months)
