"""The synthetic population's calendar: delivery dates, simulated months, the dibao standard.

Pure. Months as :func:`monitor.contract.dates.add_months` counts them, and
month indices ``year * 12 + month - 1``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from monitor.contract.dates import add_months

HISTORY_MONTHS = 36
SNAPSHOT_EVERY_MONTHS = 6
#: Snapshot sources delivered every month (as ``rules/deliveries.yaml`` expects of them); the
#: other snapshot sources come every ``SNAPSHOT_EVERY_MONTHS``.
MONTHLY_SNAPSHOT_SOURCES = ("registry", "assistance")
#: Months simulated before the first delivery, delivered as backlog in the first events delivery.
WARMUP_MONTHS = 12
EVENT_DELIVERY_DAY = 5

DAY = np.timedelta64(1, "D")
NAT = np.datetime64("NaT", "D")


def month_index(day: dt.date) -> int:
    """``year * 12 + month - 1``: months counted from year 0."""
    return day.year * 12 + day.month - 1


def month_start(index: int) -> dt.date:
    """The first day of a month index."""
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Calendar:
    """The delivery schedule and the simulated months for one *as-of* date.

    Attributes
    ----------
    as_of : datetime.date
        The last delivery date.
    snapshot_dates : tuple of datetime.date
        Snapshot deliveries, every 6 months from ``as_of`` minus 36 months to ``as_of``.
    monthly_snapshot_dates : tuple of datetime.date
        The deliveries of :data:`MONTHLY_SNAPSHOT_SOURCES`: every month over the same span
        (``snapshot_dates`` among them).
    event_months : tuple of int
        Month indices (``year * 12 + month - 1``) covered by the monthly events
        deliveries; the first also carries the warm-up backlog.
    event_dates : tuple of datetime.date
        Delivery date of each of ``event_months``: the 5th of the next month,
        ``as_of`` for the current (partial) month, never after ``as_of``.
    start_month : int
        First simulated month (12 months before the first delivery).
    months : int
        Number of simulated months, up to and including the month of ``as_of``.
    """

    as_of: dt.date
    snapshot_dates: tuple[dt.date, ...]
    monthly_snapshot_dates: tuple[dt.date, ...]
    event_months: tuple[int, ...]
    event_dates: tuple[dt.date, ...]
    start_month: int
    months: int
    month_starts: np.ndarray = field(repr=False)

    @property
    def history_start(self) -> dt.date:
        """The first delivery date (``as_of`` minus 36 months)."""
        return self.snapshot_dates[0]

    @property
    def last_day(self) -> np.datetime64:
        """``as_of`` as a numpy day."""
        return as_day(self.as_of)

    @property
    def first_day(self) -> np.datetime64:
        """The first simulated day."""
        return self.month_starts[0]

    def snapshot_dates_of(self, source: str, monthly: bool = True) -> tuple[dt.date, ...]:
        """The delivery dates of one snapshot source (``monthly``: as scheduled)."""
        if monthly and source in MONTHLY_SNAPSHOT_SOURCES:
            return self.monthly_snapshot_dates
        return self.snapshot_dates


def calendar(as_of: dt.date, history_months: int = HISTORY_MONTHS) -> Calendar:
    """The delivery schedule for ``as_of``.

    Examples
    --------
    >>> cal = calendar(dt.date(2026, 6, 30))
    >>> [d.isoformat() for d in cal.snapshot_dates][:2], len(cal.event_dates)
    (['2023-06-30', '2023-12-30'], 37)
    >>> cal.event_dates[0].isoformat(), cal.event_dates[-1].isoformat()
    ('2023-07-05', '2026-06-30')
    """
    snapshots = tuple(
        add_months(as_of, -k) for k in range(history_months, -1, -SNAPSHOT_EVERY_MONTHS)
    )
    if snapshots[-1] != as_of:
        snapshots = (*snapshots, as_of)
    monthly = tuple(add_months(as_of, -k) for k in range(history_months, -1, -1))
    first, last = month_index(snapshots[0]), month_index(as_of)
    months = tuple(range(first, last + 1))
    dates = tuple(
        as_of if m == last else min(month_start(m + 1).replace(day=EVENT_DELIVERY_DAY), as_of)
        for m in months
    )
    start = first - WARMUP_MONTHS
    starts = np.array([month_start(m) for m in range(start, last + 2)], dtype="datetime64[D]")
    return Calendar(as_of, snapshots, monthly, months, dates, start, last - start + 1, starts)


def event_delivery_index(dates: np.ndarray, cal: Calendar) -> np.ndarray:
    """Index into ``cal.event_months`` of the delivery that carries events on ``dates``."""
    months = dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    return np.clip(months - cal.event_months[0], 0, len(cal.event_months) - 1)


def dibao_standard(dates: np.ndarray) -> np.ndarray:
    """Illustrative rural dibao standard (yuan/person/month) in force on ``dates``."""
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    return np.clip(560 + 20 * (years - 2020), 500, 760).astype(np.float64)


def as_day(day: dt.date) -> np.datetime64:
    """A date as a numpy day."""
    return np.datetime64(day, "D")


def day_in_month(rng: np.random.Generator, months: np.ndarray, cal: Calendar) -> np.ndarray:
    """A random day within each simulated month index (0-based), never after ``as_of``."""
    start = cal.month_starts[months]
    length = (cal.month_starts[months + 1] - start).astype(np.int64)
    day = start + (rng.random(len(months)) * length).astype(np.int64) * DAY
    return np.minimum(day, as_day(cal.as_of))


def month_of(dates: np.ndarray, cal: Calendar) -> np.ndarray:
    """Simulated month index (0-based, may be negative) of ``dates``."""
    return dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12 - cal.start_month


def first_true(mask: np.ndarray) -> np.ndarray:
    """Column index of the first True per row, -1 where none."""
    first = mask.argmax(axis=1)
    return np.where(mask.any(axis=1), first, -1)
