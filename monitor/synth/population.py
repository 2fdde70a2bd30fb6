"""Generate a synthetic rural Chongqing population and its department deliveries (pure).

Nothing here touches a path or the clock: every function takes the seed, the
number of households, the *as-of* date and the chunk it works on, and returns
pandas DataFrames. :mod:`monitor.io.sample_writer` turns them into landing
files.

The model, in short:

- Households live in real townships (:func:`monitor.contract.regions.townships`), with
  sizes and ages like rural Chongqing (many elders, working-age members often
  away for work).
- Each household has a monthly *latent hardship* ``x = chronic + a`` where
  ``a`` is an AR(1) process driven by shocks (illness, job loss, disaster,
  death of a working-age member). Shocks weigh 2.2 times as much on a
  *fragile* household (no working-age member at home, and an elder or a
  disabled member), so that a moderate shock there foretells a program entry
  that no single rule sees coming. Signals of those shocks (medical claims,
  失业登记, disaster losses, dropouts, income falls) are dated when the shock
  happens; program entries (低保, 低保边缘, 临时救助) follow them with a lag of
  a few months, so that a model can learn to anticipate them.
- Snapshot sources are views of the full history as of a delivery date
  (the registry and assistance monthly, the others every 6 months);
  events sources are the events grouped by monthly delivery.
- :func:`faulty_text` turns a delivery into the strings written to a file and
  injects a small, deterministic share of row faults.

Illustrative figures only (dibao standard, amounts, rates): synthetic data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from faker.providers.person.zh_CN import Provider as _ZhNames

from monitor.contract import regions
from monitor.contract.sources import SOURCES
from monitor.validation import idcard

HISTORY_MONTHS = 36
SNAPSHOT_EVERY_MONTHS = 6
#: Snapshot sources delivered every month (as ``rules/deliveries.yaml`` expects of them); the
#: other snapshot sources come every ``SNAPSHOT_EVERY_MONTHS``.
MONTHLY_SNAPSHOT_SOURCES = ("registry", "assistance")
#: Months simulated before the first delivery, delivered as backlog in the first events delivery.
WARMUP_MONTHS = 12
EVENT_DELIVERY_DAY = 5
#: Share of rows given a quarantine-worthy fault.
FAULT_RATE = 0.002
#: Share of old people's id numbers written as 15-digit legacy numbers (valid).
LEGACY_RATE = 0.01
#: Share of X-ending id numbers written with a lowercase ``x`` (valid).
LOWER_X_RATE = 0.05

SNAPSHOT_SOURCES = (
    "registry", "assistance", "income", "rural_revitalization", "disability", "housing", "assets",
)
EVENT_SOURCES = ("medical", "employment", "education", "disaster", "feedback")

#: The value used for the ``unknown_code`` fault, by source and column.
UNKNOWN_CODES = {
    "registry": ("relation", "表亲"),
    "assistance": ("program", "五保户"),
    "rural_revitalization": ("status", "一般户"),
    "medical": ("category", "其他病种"),
    "disability": ("disability_type", "内脏"),
    "employment": ("event_type", "退休"),
    "education": ("status", "转学"),
    "housing": ("rating", "E"),
    "disaster": ("disaster_type", "地震"),
    "assets": ("asset_type", "股票"),
    "feedback": ("action", "其他"),
}
#: Columns per source: (name, kind) with kind id, date, money, code or text.
# How the generator writes each contract column, read off the schemas: ids and
# dates and money get their own text form and faults; the rest is plain text.
_WRITTEN_AS = {"id": "id", "code": "code", "date": "date", "money": "money"}
COLUMNS = {
    name: [(spec.name, _WRITTEN_AS.get(spec.parse, "text")) for spec in source.columns]
    for name, source in SOURCES.items()
}
#: The date column by which an events source is delivered.
EVENT_DATE = {"medical": "settle_date", "employment": "event_date", "education": "event_date",
              "disaster": "event_date", "feedback": "closed_date"}

_DAY = np.timedelta64(1, "D")
_NAT = np.datetime64("NaT", "D")


# --------------------------------------------------------------------------- calendar


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (earlier when negative), clamped to the month's end.

    Examples
    --------
    >>> add_months(dt.date(2026, 8, 31), -6)
    datetime.date(2026, 2, 28)
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first_next = dt.date(year + (month == 11), (month + 1) % 12 + 1, 1)
    last = (first_next - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(index: int) -> dt.date:
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
    first, last = _month_index(snapshots[0]), _month_index(as_of)
    months = tuple(range(first, last + 1))
    dates = tuple(
        as_of if m == last else min(_month_start(m + 1).replace(day=EVENT_DELIVERY_DAY), as_of)
        for m in months
    )
    start = first - WARMUP_MONTHS
    starts = np.array([_month_start(m) for m in range(start, last + 2)], dtype="datetime64[D]")
    return Calendar(as_of, snapshots, monthly, months, dates, start, last - start + 1, starts)


def event_delivery_index(dates: np.ndarray, cal: Calendar) -> np.ndarray:
    """Index into ``cal.event_months`` of the delivery that carries events on ``dates``."""
    months = dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    return np.clip(months - cal.event_months[0], 0, len(cal.event_months) - 1)


def dibao_standard(dates: np.ndarray) -> np.ndarray:
    """Illustrative rural dibao standard (yuan/person/month) in force on ``dates``."""
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    return np.clip(560 + 20 * (years - 2020), 500, 760).astype(np.float64)


# --------------------------------------------------------------------------- helpers


def _days(day: dt.date) -> np.datetime64:
    return np.datetime64(day, "D")


def _day_in_month(rng: np.random.Generator, months: np.ndarray, cal: Calendar) -> np.ndarray:
    """A random day within each simulated month index (0-based), never after ``as_of``."""
    start = cal.month_starts[months]
    length = (cal.month_starts[months + 1] - start).astype(np.int64)
    day = start + (rng.random(len(months)) * length).astype(np.int64) * _DAY
    return np.minimum(day, _days(cal.as_of))


def _month_of(dates: np.ndarray, cal: Calendar) -> np.ndarray:
    """Simulated month index (0-based, may be negative) of ``dates``."""
    return dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12 - cal.start_month


def _first_true(mask: np.ndarray) -> np.ndarray:
    """Column index of the first True per row, -1 where none."""
    first = mask.argmax(axis=1)
    return np.where(mask.any(axis=1), first, -1)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width)


_LAST = np.array(list(_ZhNames.last_names.keys()))
_LAST_P = np.array(list(_ZhNames.last_names.values()), dtype=float)
_LAST_P /= _LAST_P.sum()
_MALE = np.array(_ZhNames.first_names_male)
_FEMALE = np.array(_ZhNames.first_names_female)


def _given_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    n = len(male)
    first = np.where(male, rng.choice(_MALE, n), rng.choice(_FEMALE, n))
    second = np.where(male, rng.choice(_MALE, n), rng.choice(_FEMALE, n))
    two = (rng.random(n) < 0.65) & (np.char.str_len(first.astype(str)) == 1)
    return np.where(two, np.char.add(first, second), first)


def person_names(rng: np.random.Generator, surnames: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Chinese names from Faker's zh_CN lists, drawn vectorised."""
    return np.char.add(surnames.astype(str), _given_names(rng, male))


def random_surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    """Surnames weighted as in Faker's zh_CN provider."""
    return rng.choice(_LAST, n, p=_LAST_P)


# --------------------------------------------------------------------------- disasters


def disaster_clusters(seed: int, cal: Calendar) -> pd.DataFrame:
    """Township-month disasters, the same for every chunk (clustered by township and month).

    Returns a frame with ``township`` (row of :func:`regions.townships`),
    ``month`` (simulated month index), ``disaster_type``, ``intensity`` and
    ``hit_share`` (share of the township's households that suffer a loss).
    """
    rng = np.random.default_rng([seed, 7_777_777])
    n_town = len(regions.townships())
    calendar_month = (np.arange(cal.months) + cal.start_month) % 12
    season = np.array([1, 1, 1, 1.5, 2.5, 4, 5, 4, 2, 1, 1, 1])[calendar_month]
    hit = rng.random((n_town, cal.months)) < 0.0045 * season[None, :]
    town, month = np.nonzero(hit)
    cm = calendar_month[month]
    types = np.array(["洪涝", "地质灾害", "火灾", "风雹", "干旱", "其他"])
    summer = np.array([0.5, 0.25, 0.02, 0.1, 0.1, 0.03])
    winter = np.array([0.02, 0.2, 0.5, 0.03, 0.05, 0.2])
    spring = np.array([0.2, 0.2, 0.1, 0.35, 0.05, 0.1])
    u = rng.random(len(town))
    kind = np.select(
        [(cm >= 5) & (cm <= 8), (cm >= 10) | (cm <= 1)],
        [np.searchsorted(summer.cumsum(), u * 0.99999),
         np.searchsorted(winter.cumsum(), u * 0.99999)],
        np.searchsorted(spring.cumsum(), u * 0.99999),
    )
    return pd.DataFrame({
        "township": town,
        "month": month,
        "disaster_type": types[kind],
        "intensity": np.exp(0.5 * rng.standard_normal(len(town))),
        "hit_share": rng.uniform(0.03, 0.25, len(town)),
        "day": rng.random(len(town)),
    })


# --------------------------------------------------------------------------- the chunk


@dataclass
class Population:
    """The full simulated history of one chunk of households.

    Snapshot tables hold every version with its validity (see
    :func:`snapshot`); events tables hold every event with its date.
    """

    households: pd.DataFrame
    persons: pd.DataFrame
    spells: pd.DataFrame
    incomes: pd.DataFrame
    revitalization: pd.DataFrame
    disability: pd.DataFrame
    housing: pd.DataFrame
    assets: pd.DataFrame
    events: dict[str, pd.DataFrame]
    hardship: np.ndarray = field(repr=False)
    new_ids: np.ndarray = field(repr=False)


def generate_chunk(
    seed: int,
    chunk_index: int,
    first_household: int,
    households: int,
    as_of: dt.date,
    *,
    taken_ids: np.ndarray | None = None,
    places: tuple[str, ...] | None = None,
) -> Population:
    """Simulate the households ``first_household … first_household + households - 1``.

    Parameters
    ----------
    seed : int
        The population's seed; the chunk draws from ``default_rng([seed, chunk_index])``.
    chunk_index : int
        Position of the chunk.
    first_household : int
        Global index of the chunk's first household (household ids follow it).
    households : int
        Number of households in the chunk.
    as_of : datetime.date
        The last delivery date; nothing happens after it.
    taken_ids : numpy.ndarray, optional
        Sorted int64 first-17-digit values of id numbers used by earlier
        chunks; the chunk's id numbers avoid them (``Population.new_ids``
        returns the chunk's own).
    places : tuple of str, optional
        County or township codes (region-code prefixes): place households
        only there (small test populations); by default, all of Chongqing.

    Returns
    -------
    Population
    """
    cal = calendar(as_of)
    rng = np.random.default_rng([seed, chunk_index])
    asof = _days(as_of)
    T = cal.months
    sim_start = cal.month_starts[0]

    # ---------------------------------------------------------------- households
    towns = regions.townships()
    street = towns["township_code"].str.slice(6, 9).astype(int).to_numpy() < 100
    weight = np.where(street, 0.3, 1.0)
    if places:
        chosen = towns["township_code"].str.startswith(tuple(places)).to_numpy(dtype=bool)
        if not chosen.any():
            raise ValueError(f"no Chongqing township matches {list(places)}")
        weight = np.where(chosen, weight, 0.0)
    n = households
    town = rng.choice(len(towns), n, p=weight / weight.sum())
    village = np.where(rng.random(n) < 0.88, rng.integers(200, 236, n), rng.integers(1, 16, n))
    region = np.char.add(towns["township_code"].to_numpy(dtype=str)[town],
                         np.char.zfill(village.astype(str), 3))
    county = towns["county_code"].to_numpy(dtype=str)[town]
    hh_global = first_household + np.arange(n)
    household_id = np.char.zfill((hh_global + 1).astype(str), 12)
    size = rng.choice(np.arange(1, 7), n, p=[0.2, 0.3, 0.2, 0.16, 0.09, 0.05])

    # ---------------------------------------------------------------- persons
    P = int(size.sum())
    hh = np.repeat(np.arange(n), size)
    offsets = np.concatenate([[0], np.cumsum(size)[:-1]])
    slot = np.arange(P) - np.repeat(offsets, size)
    hsize = size[hh]
    head_age = np.where(size == 1, rng.normal(66, 14, n), rng.normal(57, 13, n)).clip(20, 95)
    ha = head_age[hh]
    young_head = ha < 48
    u = rng.random(P)
    relation = np.full(P, "子女", dtype=object)
    relation[slot == 0] = "户主"
    spouse = (slot == 1) & ((u < 0.84) | (hsize > 3))
    relation[spouse] = "配偶"
    parent = (slot >= 2) & young_head & (u < 0.15) & (ha < 60)
    relation[parent] = "父母"
    grand = (slot >= 3) & ~young_head & (u < 0.7)
    relation[grand] = "孙子女"
    # a few skipped-generation households (grandparents raising grandchildren)
    skipped = (slot == 2) & (hsize == 3) & (ha >= 55) & (u < 0.03)
    relation[skipped] = "孙子女"
    other = (slot >= 2) & (u > 0.985)
    relation[other] = np.where(ha[other] < 40, "兄弟姐妹", "其他")
    relation[(slot >= 2) & (u > 0.995) & (ha < 35)] = "祖父母"

    age = np.empty(P)
    r = rng.random(P)
    age[:] = ha
    sel = relation == "配偶"
    age[sel] = ha[sel] + rng.normal(-2, 3, sel.sum())
    sel = relation == "子女"
    child_age = np.where(young_head[sel], ha[sel] - 23 - 13 * r[sel], ha[sel] - 24 - 11 * r[sel])
    age[sel] = np.where(child_age < 0, 6 * r[sel], child_age)
    sel = relation == "孙子女"
    gage = ha[sel] - 50 - 8 * r[sel]
    age[sel] = np.where(gage < 0, 12 * r[sel], gage)
    sel = relation == "父母"
    age[sel] = ha[sel] + 24 + 8 * r[sel]
    sel = relation == "祖父母"
    age[sel] = ha[sel] + 48 + 6 * r[sel]
    sel = relation == "兄弟姐妹"
    age[sel] = ha[sel] + rng.normal(0, 5, sel.sum())
    sel = relation == "其他"
    age[sel] = 10 + 60 * r[sel]
    age = age.clip(0.01, 101)
    birth = asof - (age * 365.25).astype(np.int64) * _DAY
    head_male = rng.random(n) < 0.82
    male = rng.random(P) < 0.5
    male[slot == 0] = head_male
    male[relation == "配偶"] = ~head_male[hh[relation == "配偶"]]

    age_start = (sim_start - birth).astype(np.int64) / 365.25  # negative: born later

    # deaths (Gompertz) and moves
    q = np.minimum(0.5, np.exp(-10.2 + 0.09 * np.maximum(age_start, 0)))
    q = q + np.where((age_start >= 18) & (age_start < 60), 0.0006, 0)
    death_offset = (rng.exponential(1.0, P) / q * 365.25).astype(np.int64)
    death = sim_start + death_offset * _DAY
    death = np.where((death <= asof) & (death > birth), death, _NAT)
    moving = (age_start >= 18) & (age_start < 40) & (slot > 0) & (rng.random(P) < 0.015)
    move = sim_start + (rng.random(P) * (asof - sim_start).astype(np.int64)).astype(np.int64) * _DAY
    move = np.where(moving & np.isnat(death), move, _NAT)

    # id numbers: unique across chunks via taken_ids
    birth_int = pd.DatetimeIndex(birth).strftime("%Y%m%d").to_numpy().astype(np.int64)
    base17 = county.astype(np.int64)[hh] * 10**11 + birth_int * 1000
    seq = rng.integers(0, 500, P) * 2 + male
    taken = np.empty(0, np.int64) if taken_ids is None else taken_ids
    for _ in range(50):
        id17 = base17 + seq
        order = np.argsort(id17, kind="stable")
        dup_sorted = np.zeros(P, bool)
        dup_sorted[1:] = id17[order][1:] == id17[order][:-1]
        clash = np.zeros(P, bool)
        clash[order[dup_sorted]] = True
        if len(taken):
            pos = np.searchsorted(taken, id17).clip(0, len(taken) - 1)
            clash |= taken[pos] == id17
        if not clash.any():
            break
        seq[clash] = rng.integers(0, 500, clash.sum()) * 2 + male[clash]
    id_number = idcard.make_id_numbers(county[hh], birth, seq)

    surname = random_surnames(rng, n)
    own_surname = random_surnames(rng, P)
    inherits = np.isin(relation, ["户主", "子女", "孙子女", "兄弟姐妹"]) & head_male[hh]
    inherits |= slot == 0
    names = person_names(rng, np.where(inherits, surname[hh], own_surname), male)
    prefix = rng.choice(np.r_[130:140, 150:154, 155:160, 180:190], P)
    phone = np.char.add(prefix.astype(str), _digits(rng, P, 8))
    no_phone = (age < 16) | ((age > 75) & (rng.random(P) < 0.5))
    phone = np.where(no_phone, "", phone)

    working = (age_start >= 18) & (age_start < 60)
    away_p = np.where(age_start < 45, 0.6, 0.32)
    migrant = working & (rng.random(P) < away_p) & ~((slot == 0) & (ha > 50))

    # ---------------------------------------------------------------- disability
    p_dis = 0.02 + 0.0014 * np.maximum(age - 18, 0)
    disabled = rng.random(P) < p_dis
    dis_idx = np.flatnonzero(disabled)
    nd = len(dis_idx)
    dis_types = np.array(["肢体", "视力", "听力", "精神", "智力", "言语", "多重"])
    dtype_ = dis_types[rng.choice(7, nd, p=[0.5, 0.14, 0.13, 0.08, 0.07, 0.02, 0.06])]
    level = rng.choice([1, 2, 3, 4], nd, p=[0.1, 0.18, 0.3, 0.42])
    care_p = np.array([[0.15, 0.35, 0.5], [0.4, 0.4, 0.2], [0.7, 0.25, 0.05], [0.88, 0.1, 0.02]])
    cu = rng.random(nd)
    self_care = np.array(["完全自理", "半失能", "失能"])[
        (cu[:, None] > care_p[level - 1].cumsum(axis=1)).sum(axis=1).clip(0, 2)
    ]
    earliest = np.maximum(birth[dis_idx] + 365 * _DAY, np.datetime64("2008-01-01"))
    span = (asof - earliest).astype(np.int64).clip(1, None)
    issue = earliest + (rng.random(nd) ** 0.6 * span).astype(np.int64) * _DAY
    severe_p = np.zeros(P, bool)
    severe_p[dis_idx] = (level <= 2) | np.isin(dtype_, ["智力", "精神"])
    disability = pd.DataFrame({
        "person": dis_idx, "id_number": id_number[dis_idx], "disability_type": dtype_,
        "disability_level": level, "issue_date": issue, "self_care": self_care,
    })

    # ---------------------------------------------------------------- household facts
    alive_start = np.isnat(death) | (death > sim_start)
    n_elder = np.bincount(hh, (age_start >= 60) & alive_start, n)
    n_work = np.bincount(hh, working & alive_start, n)
    n_migr = np.bincount(hh, migrant, n)
    has_dis = np.bincount(hh, disabled, n) > 0
    has_severe = np.bincount(hh, severe_p, n) > 0
    elder_only = (n_elder > 0) & (n_work == 0)
    z = rng.standard_normal(n)
    tuopin = rng.random(n) < 1 / (1 + np.exp(-(-2.5 + 0.9 * z + 0.4 * elder_only + 0.4 * has_dis)))
    chronic = (0.45 * z + 0.5 * elder_only + 0.35 * has_severe + 0.2 * has_dis + 0.3 * tuopin
               + 0.25 * (size == 1) - 0.15 * np.minimum(n_migr, 2) - 0.1 * (n_work - n_migr))

    # ---------------------------------------------------------------- shocks
    months = np.arange(T)
    p_ill = 0.003 + 0.003 * n_elder + 0.003 * has_dis
    ill = rng.random((n, T)) < p_ill[:, None]
    local_work = np.bincount(hh, working & ~migrant, n)
    jobloss = rng.random((n, T)) < (0.005 * np.minimum(local_work, 2))[:, None]
    shock = np.zeros((n, T), np.float32)
    ill_size = 0.6 + rng.exponential(0.6, (n, T))
    shock += ill * ill_size
    shock += jobloss * (0.4 + rng.exponential(0.3, (n, T)))

    # deaths of working-age members
    dm = _month_of(death, cal)
    wdeath = ~np.isnat(death) & (age_start >= 18) & (age_start < 60) & (dm >= 0)
    np.add.at(shock, (hh[wdeath], dm[wdeath]), 1.0)

    # disasters: the chunk's households in a struck township
    clusters = disaster_clusters(seed, cal)
    by_town = pd.DataFrame({"hh": np.arange(n), "township": town})
    hits = by_town.merge(clusters, on="township", how="inner", sort=False)
    hits = hits[rng.random(len(hits)) < hits["hit_share"].to_numpy()]
    hits = hits.sort_values(["hh", "month"], kind="stable").reset_index(drop=True)
    nh = len(hits)
    loss = (_lognormal(rng, 3500, 1.0, nh) * hits["intensity"].to_numpy()
            * np.where(rng.random(nh) < 0.05, rng.pareto(1.5, nh) + 1, 1))
    loss = np.round(loss, -1).clip(100, None)
    np.add.at(shock, (hits["hh"].to_numpy(), hits["month"].to_numpy()),
              (0.35 * np.log1p(loss / 2000)).astype(np.float32))

    # Compound vulnerability: a shock weighs far more on a household with no working-age
    # member at home and a dependant (an elder or a disabled member). Each fact alone is
    # common and mostly harmless; a moderate shock on top of both is what foretells a
    # program entry, and no single rule looks at the three together.
    fragile = (local_work == 0) & ((n_elder > 0) | has_dis)
    shock *= np.where(fragile, 2.2, 1.0).astype(np.float32)[:, None]

    # ---------------------------------------------------------------- latent hardship
    a = np.empty((n, T), np.float32)
    prev = rng.normal(0, 0.3, n)
    noise = rng.normal(0, 0.12, (n, T))
    for t in range(T):
        prev = 0.88 * prev + shock[:, t] + noise[:, t]
        a[:, t] = prev
    x = chronic[:, None] + a

    # ---------------------------------------------------------------- programs
    spells = []

    def month_start_day(m: np.ndarray) -> np.ndarray:
        return _day_in_month(rng, np.clip(m, 0, T - 1), cal)

    def before_start(k: int, earliest: str = "2015-01-01") -> np.ndarray:
        lo = np.datetime64(earliest)
        return lo + (rng.random(k) * (sim_start - lo).astype(np.int64)).astype(np.int64) * _DAY

    theta_d, theta_e = 1.45, 1.05
    single_elder = (size == 1) & (n_elder == 1)
    tekun_hh = (single_elder & (x[:, 0] > theta_d - 0.3)) | (
        (size == 1) & has_severe & (x[:, 0] > theta_d - 0.5))
    # 低保: household spells
    eligible = x > theta_d
    at_start = eligible[:, 0] & (rng.random(n) < 0.85) & ~tekun_hh
    cross = _first_true(x[:, 1:] > theta_d + 0.1)
    cross = np.where(cross >= 0, cross + 1, -1)
    lag = 1 + rng.poisson(2.5, n)
    new = ~at_start & ~tekun_hh & (cross > 0) & (rng.random(n) < 0.8) & (cross + lag < T)
    db_start_m = np.where(at_start, -1, np.where(new, cross + lag, -10))
    in_db = at_start | new
    db_start = np.full(n, _NAT)
    db_start[at_start] = before_start(at_start.sum())
    db_start[new] = month_start_day(db_start_m[new])
    after = months[None, :] >= (db_start_m[:, None] + 6)
    recovered = _first_true((x < theta_d - 0.3) & after)
    end_m = recovered + 6 + rng.poisson(1, n)
    ends = in_db & (recovered >= 0) & (end_m < T) & (rng.random(n) < 0.75)
    db_end = np.full(n, _NAT)
    db_end[ends] = month_start_day(end_m[ends])
    db_end = np.where(db_end > asof, _NAT, db_end)

    # 低保边缘: band below dibao
    band = (x > theta_e) & (x <= theta_d)
    e_start0 = band[:, 0] & ~at_start & ~tekun_hh & (rng.random(n) < 0.25)
    e_cross = _first_true(x[:, 1:] > theta_e + 0.05)
    e_cross = np.where(e_cross >= 0, e_cross + 1, -1)
    e_lag = 1 + rng.poisson(2, n)
    e_new = (~e_start0 & ~in_db & ~tekun_hh & (e_cross > 0) & (rng.random(n) < 0.2)
             & (e_cross + e_lag < T))
    in_edge = e_start0 | e_new
    ed_start = np.full(n, _NAT)
    ed_start[e_start0] = before_start(e_start0.sum(), "2021-06-01")
    ed_start[e_new] = month_start_day((e_cross + e_lag)[e_new])
    ed_end = np.where(in_edge & in_db & (db_start > ed_start), db_start - _DAY, _NAT)
    ed_rec = _first_true((x < theta_e - 0.4) & (months[None, :] >= (e_cross + e_lag + 6)[:, None]))
    ed_done = in_edge & np.isnat(ed_end) & (ed_rec >= 0) & (rng.random(n) < 0.6)
    ed_end[ed_done] = month_start_day(ed_rec[ed_done])
    in_edge &= ~(in_db & (db_start <= ed_start))

    def household_spells(mask: np.ndarray, start: np.ndarray, end: np.ndarray, program: str,
                         amount: np.ndarray | None) -> None:
        members = mask[hh] & (birth < start[hh]) & (np.isnat(death) | (death > start[hh]))
        idx = np.flatnonzero(members)
        s, e = start[hh[idx]], end[hh[idx]]
        d = death[idx]
        # a deceased recipient's spell ends 1–3 months after death; ~8% never (a data error)
        stop = ~np.isnat(d) & (np.isnat(e) | (e > d))
        late = d + rng.integers(20, 95, len(idx)) * _DAY
        keep_error = rng.random(len(idx)) < 0.08
        e = np.where(stop & ~keep_error, np.where(late > asof, _NAT, late), e)
        spells.append(pd.DataFrame({
            "person": idx, "program": program, "start_date": s, "end_date": e,
            "monthly_amount": np.nan if amount is None else amount[hh[idx]],
        }))

    std_db = dibao_standard(np.where(np.isnat(db_start), asof, db_start))
    household_spells(in_db, db_start, db_end, "低保", np.round(std_db * rng.uniform(0.5, 1.0, n)))
    household_spells(in_edge, ed_start, ed_end, "低保边缘", None)

    # 特困: single elders / severely disabled living alone
    tk_start = before_start(n, "2012-01-01")
    std_tk = dibao_standard(np.full(n, asof))
    tk_amount = np.round(std_tk * np.where(rng.random(n) < 0.06, rng.uniform(1.0, 1.25, n),
                                           rng.uniform(1.3, 1.45, n)))
    household_spells(tekun_hh, tk_start, np.full(n, _NAT), "特困", tk_amount)

    # 临时救助: acute shocks (illness, big disaster loss, working-age death)
    acute_h, acute_m = np.nonzero(ill & (ill_size > 1.2))
    big = loss > 8000
    acute_h = np.concatenate([acute_h, hits["hh"].to_numpy()[big], hh[wdeath]])
    acute_m = np.concatenate([acute_m, hits["month"].to_numpy()[big], dm[wdeath]])
    take = (rng.random(len(acute_h)) < np.where(fragile[acute_h], 0.6, 0.35)) & (acute_m + 2 < T)
    acute_h, acute_m = acute_h[take], acute_m[take]
    head_idx = offsets[acute_h]
    ts = _day_in_month(rng, acute_m + 1 + (rng.random(len(acute_h)) < 0.5), cal)
    te = ts + rng.integers(28, 92, len(ts)) * _DAY
    te = np.where(te > asof, _NAT, te)
    spells.append(pd.DataFrame({
        "person": head_idx, "program": "临时救助", "start_date": ts, "end_date": te,
        "monthly_amount": np.round(rng.uniform(300, 2500, len(ts)), -1),
    }))

    # disability subsidies
    person_db = (in_db | in_edge)[hh]
    d_person = dis_idx
    living = person_db[d_person] & (rng.random(nd) < 0.7)
    prog_start = np.where(in_db, db_start, ed_start)[hh[d_person]]
    ls = np.maximum(issue, prog_start) + rng.integers(15, 90, nd) * _DAY
    le = np.where(in_db, db_end, ed_end)[hh[d_person]]
    ok = living & (ls <= asof) & (np.isnat(le) | (le > ls))
    spells.append(pd.DataFrame({
        "person": d_person[ok], "program": "残疾人生活补贴", "start_date": ls[ok],
        "end_date": le[ok], "monthly_amount": np.round(rng.uniform(80, 120, ok.sum())),
    }))
    care = severe_p[d_person] & (rng.random(nd) < 0.75)
    cs = issue + rng.integers(20, 180, nd) * _DAY
    ok = care & (cs <= asof) & (np.isnat(death[d_person]) | (death[d_person] > cs))
    ce = death[d_person] + rng.integers(20, 95, nd) * _DAY
    ce = np.where(ce > asof, _NAT, ce)
    spells.append(pd.DataFrame({
        "person": d_person[ok], "program": "残疾人护理补贴", "start_date": cs[ok],
        "end_date": ce[ok], "monthly_amount": np.round(rng.uniform(80, 120, ok.sum())),
    }))
    # children without working-age adults: 事实无人抚养 / 孤儿
    minor = age_start < 18
    no_adult = (n_work == 0)[hh]
    orphan_like = minor & no_adult & (relation == "孙子女")
    draw = rng.random(P)
    for program, lo, hi, amount in (("事实无人抚养儿童生活补贴", 0.0, 0.55, 1100),
                                    ("孤儿基本生活费", 0.55, 0.65, 1300)):
        sel = np.flatnonzero(orphan_like & (draw >= lo) & (draw < hi))
        st = np.maximum(birth[sel] + 30 * _DAY, before_start(len(sel), "2019-01-01"))
        spells.append(pd.DataFrame({
            "person": sel, "program": program, "start_date": st, "end_date": _NAT,
            "monthly_amount": np.round(amount * rng.uniform(0.95, 1.1, len(sel))),
        }))
    spells = pd.concat(spells, ignore_index=True)
    spells = spells[spells["start_date"] <= asof]
    spells = spells.drop_duplicates(["person", "program", "start_date"]).reset_index(drop=True)
    spells["id_number"] = id_number[spells["person"].to_numpy()]
    spells["household_id"] = household_id[hh[spells["person"].to_numpy()]]

    # ---------------------------------------------------------------- income
    members_now = size.astype(float)
    m0 = rng.integers(0, 12, n)
    reg_m = (m0[:, None] + 12 * np.arange(T // 12 + 1)[None, :]).ravel()
    reg_h = np.repeat(np.arange(n), T // 12 + 1)
    keep = reg_m < T
    inc_h = np.concatenate([reg_h[keep], np.flatnonzero(new), np.flatnonzero(e_new)])
    inc_m = np.concatenate([reg_m[keep], (cross + lag - 1)[new], (e_cross + e_lag - 1)[e_new]])
    inc_m = np.clip(inc_m, 0, T - 1)
    ratio = np.exp(-0.7 * (x[inc_h, inc_m] - theta_d) - 0.15 + rng.normal(0, 0.17, len(inc_h)))
    inc_day = _day_in_month(rng, inc_m, cal)
    pc_year = ratio * dibao_standard(inc_day) * 12
    employment_cost = np.where(rng.random(len(inc_h)) < 0.5,
                               np.round(n_migr[inc_h] * rng.uniform(1200, 3600, len(inc_h)), -1), 0)
    annual = np.round(pc_year * members_now[inc_h] + employment_cost, -1)
    incomes = pd.DataFrame({"hh": inc_h, "assess_date": inc_day, "annual_income": annual,
                            "employment_cost": employment_cost})

    # ---------------------------------------------------------------- rural revitalization
    tp_since = np.datetime64("2014-06-01") + rng.integers(0, 6.5 * 365, n) * _DAY
    theta_m = 1.25
    mon0 = x[:, 0] > theta_m
    mon_cross = _first_true(x > theta_m + 0.1)
    mon_lag = rng.integers(0, 2, n)
    monitored = (mon0 & (rng.random(n) < np.where(tuopin, 0.5, 0.15))) | (
        (mon_cross >= 0) & (rng.random(n) < np.where(tuopin, 0.35, 0.1)))
    mon_since = np.where(mon0, before_start(n, "2021-03-01"),
                         _day_in_month(rng, np.clip(mon_cross + mon_lag, 0, T - 1), cal))
    mon_since = np.where(mon_since > asof, asof, mon_since)
    mon_type = np.where(tuopin, "脱贫不稳定户", "边缘易致贫户")
    sudden = (shock.max(axis=1) > 1.6) & (rng.random(n) < 0.15) & ~monitored
    sudden_m = shock.argmax(axis=1)
    mon_type = np.where(sudden, "突发严重困难户", mon_type)
    sudden_day = _day_in_month(rng, np.clip(sudden_m + 1, 0, T - 1), cal)
    mon_since = np.where(sudden, sudden_day, mon_since)
    monitored |= sudden
    since_m = np.clip(_month_of(mon_since, cal), 0, T - 1)
    removed_m = _first_true((x < theta_m - 0.45) & (months[None, :] >= since_m[:, None] + 6))
    removed = np.where(removed_m >= 0, _day_in_month(rng, np.clip(removed_m + 2, 0, T - 1), cal),
                       _NAT)
    revitalization = pd.DataFrame({
        "hh": np.arange(n), "tuopin": tuopin, "tuopin_since": tp_since,
        "monitored": monitored, "status": mon_type, "since": mon_since, "removed": removed,
    })
    revitalization = revitalization[revitalization["tuopin"] | revitalization["monitored"]]

    # ---------------------------------------------------------------- housing
    assessed = rng.random(n) < 0.45
    h_idx = np.flatnonzero(assessed)
    h_date = np.datetime64("2019-01-01") + (
        rng.random(len(h_idx)) * (asof - np.datetime64("2019-01-01")).astype(np.int64)
    ).astype(np.int64) * _DAY
    hx = x[h_idx, 0]
    p_bad = 0.03 + 0.12 / (1 + np.exp(-(hx - theta_d) * 2)) + 0.03 * elder_only[h_idx]
    hu = rng.random(len(h_idx))
    rating = np.where(hu < p_bad * 0.3, "D", np.where(hu < p_bad, "C",
                      np.where(hu < 0.5, "A", "B")))
    fix = np.isin(rating, ["C", "D"]) & (rng.random(len(h_idx)) < 0.4)
    fix_date = h_date[fix] + rng.integers(180, 540, fix.sum()) * _DAY
    fixed_ok = fix_date <= asof
    housing = pd.DataFrame({
        "hh": np.concatenate([h_idx, h_idx[fix][fixed_ok]]),
        "assess_date": np.concatenate([h_date, fix_date[fixed_ok]]),
        "rating": np.concatenate([rating, np.where(rng.random(fixed_ok.sum()) < 0.7, "A", "B")]),
    })

    # ---------------------------------------------------------------- assets
    owner = offsets  # the head owns household assets
    lowx = np.exp(-0.8 * np.maximum(x[:, -1] - 0.5, 0))
    parts = []
    asset_start = np.datetime64("2010-01-01")
    span_a = (asof - asset_start).astype(np.int64)

    def assets_of(mask: np.ndarray, kind: str, ref: np.ndarray, value: np.ndarray) -> None:
        idx = np.flatnonzero(mask)
        parts.append(pd.DataFrame({
            "person": owner[idx], "asset_type": kind, "asset_ref": ref[idx],
            "value": np.round(value[idx], -2),
            "record_date": asset_start + (rng.random(len(idx)) * span_a).astype(np.int64) * _DAY,
        }))

    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
    plate = np.char.add(np.char.add("渝", rng.choice(letters, n)),
                        np.char.add(rng.choice(letters, n), _digits(rng, n, 4)))
    assets_of(rng.random(n) < 0.17 * lowx, "机动车", plate, _lognormal(rng, 60000, 0.5, n))
    house = rng.random(n) < 0.09 * lowx
    deed = np.char.add(np.char.add("渝(", rng.integers(2010, 2026, n).astype(str)),
                       np.char.add(")不动产权第", np.char.add(_digits(rng, n, 7), "号")))
    assets_of(house, "商品房", deed, _lognormal(rng, 380000, 0.45, n))
    deed2 = np.char.add(deed, "-2")
    assets_of(house & (rng.random(n) < 0.12), "商品房", deed2, _lognormal(rng, 300000, 0.45, n))
    licence = np.char.add("92500", np.char.add(_digits(rng, n, 9), _digits(rng, n, 4)))
    assets_of(rng.random(n) < 0.05 * lowx, "工商登记", licence, _lognormal(rng, 50000, 0.9, n))
    account = np.char.add("6228", np.char.add(_digits(rng, n, 7), _digits(rng, n, 8)))
    assets_of(rng.random(n) < 0.35, "金融资产", account, _lognormal(rng, 15000, 1.2, n) * lowx)
    assets = pd.concat(parts, ignore_index=True)
    assets["id_number"] = id_number[assets["person"].to_numpy()]

    # ---------------------------------------------------------------- events
    events = {
        "medical": _medical(rng, cal, chunk_index, hh, age_start, x, ill, birth, death,
                            id_number),
        "employment": _employment(rng, cal, hh, migrant, working, jobloss, id_number, birth),
        "education": _education(rng, cal, hh, birth, death, x, id_number),
        "disaster": pd.DataFrame({
            "event_id": np.char.add(np.char.add("ZQ", pd.DatetimeIndex(
                _disaster_days(hits, cal)).strftime("%Y%m%d").to_numpy(dtype=str)),
                household_id[hits["hh"].to_numpy()]),
            "household_id": household_id[hits["hh"].to_numpy()],
            "event_date": _disaster_days(hits, cal),
            "disaster_type": hits["disaster_type"].to_numpy(),
            "loss_amount": loss,
        }),
        "feedback": _feedback(rng, cal, spells, hh, household_id, hh_global, n),
    }
    for name, frame in events.items():
        keep = frame[EVENT_DATE[name]] <= asof
        events[name] = frame[keep.to_numpy()].reset_index(drop=True)

    household_frame = pd.DataFrame({
        "household_id": household_id, "region_code": region, "county_code": county,
        "township": town, "size": size, "in_dibao": in_db, "dibao_start": db_start,
        "in_edge": in_edge, "edge_start": ed_start, "tuopin": tuopin,
    })
    persons = pd.DataFrame({
        "id_number": id_number, "name": names, "household_id": household_id[hh],
        "relation": relation, "region_code": region[hh], "birth": birth, "male": male,
        "death": death, "moved": move, "phone": phone, "migrant": migrant, "hh": hh,
    })
    return Population(
        households=household_frame, persons=persons, spells=spells, incomes=incomes,
        revitalization=revitalization, disability=disability, housing=housing,
        assets=assets, events=events, hardship=x, new_ids=np.sort(base17 + seq),
    )


def _disaster_days(hits: pd.DataFrame, cal: Calendar) -> np.ndarray:
    months = hits["month"].to_numpy()
    start = cal.month_starts[months]
    length = (cal.month_starts[months + 1] - start).astype(np.int64)
    day = start + (hits["day"].to_numpy() * length).astype(np.int64) * _DAY
    return np.minimum(day, _days(cal.as_of))


def _medical(rng, cal, chunk_index, hh, age_start, x, ill, birth, death, id_number):
    """Claims: a base rate by age and hardship, plus bursts after illness shocks."""
    P, T = len(hh), cal.months
    base = np.select([age_start < 18, age_start < 60, age_start < 75], [0.03, 0.04, 0.08], 0.11)
    chronic = (age_start >= 55) & (rng.random(P) < 0.3)
    ill_h, ill_m = np.nonzero(ill)
    # the ill member: an elder-weighted random member of the household
    order = np.argsort(hh, kind="stable")
    first = np.searchsorted(hh[order], ill_h)
    count = np.bincount(hh, minlength=x.shape[0])[ill_h]
    ill_p = order[first + (rng.random(len(ill_h)) * count).astype(np.int64)]
    parts = []
    for t in range(T):
        lam = base * np.exp(0.3 * np.maximum(x[hh, t] - 0.5, 0))
        k = rng.poisson(lam)
        idx = np.repeat(np.arange(P), k)
        inpatient = rng.random(len(idx)) < np.where(age_start[idx] >= 60, 0.14, 0.06)
        cat = np.where(chronic[idx] & ~inpatient, "门诊慢特病", "普通")
        cost = np.where(inpatient, _lognormal(rng, 5500, 0.8, len(idx)),
                        np.where(chronic[idx], _lognormal(rng, 450, 0.7, len(idx)),
                                 _lognormal(rng, 160, 0.9, len(idx))))
        sel = ill_m == t
        extra = rng.poisson(1.6, sel.sum()) + 1
        b_idx = np.repeat(ill_p[sel], extra)
        b_month = t + rng.integers(0, 3, len(b_idx))
        severe = rng.random(len(b_idx)) < 0.25
        heavy = _lognormal(rng, 45000, 0.7, len(b_idx)) * (rng.pareto(2.5, len(b_idx)) + 1)
        b_cost = np.where(severe, heavy, _lognormal(rng, 9000, 0.8, len(b_idx)))
        parts.append(pd.DataFrame({
            "person": np.concatenate([idx, b_idx]),
            "month": np.concatenate([np.full(len(idx), t), b_month]),
            "total_cost": np.concatenate([cost, b_cost]),
            "category": np.concatenate([cat, np.where(severe, "重特大疾病", "普通")]),
            "inpatient": np.concatenate([inpatient, severe | (rng.random(len(b_idx)) < 0.7)]),
        }))
    claims = pd.concat(parts, ignore_index=True)
    claims = claims[claims["month"] < T]
    person = claims["person"].to_numpy()
    date = _day_in_month(rng, claims["month"].to_numpy(), cal)
    alive = (date >= birth[person]) & (np.isnat(death[person]) | (date <= death[person]))
    claims = claims[alive]
    date = date[alive]
    person = person[alive]
    total = np.round(claims["total_cost"].to_numpy().clip(5, None), 2)
    share = np.where(claims["inpatient"].to_numpy(), rng.uniform(0.15, 0.45, len(total)),
                     rng.uniform(0.3, 0.8, len(total)))
    order = np.lexsort((person, date))
    serial = np.char.zfill(np.arange(len(total)).astype(str), 9)
    claims_id = np.char.add(f"YB{chunk_index:05d}", serial)
    out = pd.DataFrame({
        "claim_id": claims_id,
        "id_number": id_number[person[order]],
        "settle_date": date[order],
        "total_cost": total[order],
        "out_of_pocket": np.round(total * share, 2)[order],
        "category": claims["category"].to_numpy()[order],
        "inpatient": np.where(claims["inpatient"].to_numpy()[order], "是", "否"),
        "person": person[order],
    })
    return out


def _employment(rng, cal, hh, migrant, working, jobloss, id_number, birth):
    """外出务工 for migrants (mostly in the warm-up), 返乡 for some, 失业登记 after job loss."""
    T = cal.months
    parts = []
    mig = np.flatnonzero(migrant)
    m_month = np.where(rng.random(len(mig)) < 0.75, rng.integers(0, 12, len(mig)),
                       rng.integers(0, T, len(mig)))
    parts.append((mig, m_month, "外出务工"))
    back = rng.random(len(mig)) < 0.18
    b_month = m_month + rng.integers(3, 30, len(mig))
    ok = back & (b_month < T)
    parts.append((mig[ok], b_month[ok], "返乡"))
    # some who came back register as unemployed, some leave again
    re_un = ok & (rng.random(len(mig)) < 0.3) & (b_month + 1 < T)
    parts.append((mig[re_un], b_month[re_un] + 1, "失业登记"))
    again = ok & ~re_un & (rng.random(len(mig)) < 0.4) & (b_month + 4 < T)
    parts.append((mig[again], b_month[again] + 4, "外出务工"))
    # local workers: registered employment, job loss, re-employment
    local = np.flatnonzero(working & ~migrant)
    reg = rng.random(len(local)) < 0.25
    parts.append((local[reg], rng.integers(0, T, reg.sum()), "就业登记"))
    jl_h, jl_m = np.nonzero(jobloss)
    order = np.argsort(hh[local], kind="stable")
    lh = hh[local][order]
    first = np.searchsorted(lh, jl_h)
    count = np.searchsorted(lh, jl_h, side="right") - first
    has = count > 0
    pick = local[order][(first + (rng.random(len(jl_h)) * np.maximum(count, 1)).astype(np.int64))
                        .clip(0, max(len(local) - 1, 0))] if len(local) else np.empty(0, np.int64)
    pick, jl_m = pick[has], jl_m[has]
    parts.append((pick, jl_m, "失业登记"))
    re_emp = rng.random(len(pick)) < 0.5
    re_m = jl_m + rng.integers(2, 9, len(pick))
    ok = re_emp & (re_m < T)
    parts.append((pick[ok], re_m[ok], "就业登记"))
    person = np.concatenate([p[0] for p in parts])
    month = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    date = _day_in_month(rng, month, cal)
    ok = date > birth[person]
    out = pd.DataFrame({"id_number": id_number[person[ok]], "event_date": date[ok],
                        "event_type": kind[ok], "person": person[ok]})
    out = out.drop_duplicates(["id_number", "event_date", "event_type"])
    return out.sort_values(["event_date", "id_number"], kind="stable").reset_index(drop=True)


def _education(rng, cal, hh, birth, death, x, id_number):
    """在读 every September for ages 6–17, 毕业 at 15 or 18, rare 辍学 (hardship) and 休学."""
    T = cal.months
    first_year = _month_start(cal.start_month).year
    parts = []
    for year in range(first_year, cal.as_of.year + 1):
        sep = np.datetime64(f"{year}-09-01")
        jul = np.datetime64(f"{year}-07-01")
        age = (sep - birth).astype(np.int64) / 365.25
        alive = np.isnat(death) | (death > sep)
        school = np.flatnonzero((age >= 6) & (age < 18) & alive)
        parts.append((school, np.full(len(school), sep) + rng.integers(0, 6, len(school)) * _DAY,
                      "在读"))
        jage = (jul - birth).astype(np.int64) / 365.25
        grad = np.flatnonzero(((np.abs(jage - 15.5) < 0.5) | (np.abs(jage - 18.5) < 0.5)) & alive)
        grad_day = np.full(len(grad), jul) + rng.integers(0, 10, len(grad)) * _DAY
        parts.append((grad, grad_day, "毕业"))
    person = np.concatenate([p[0] for p in parts])
    date = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    # dropouts: a hazard that rises steeply with household hardship (ages 12–17)
    month_idx = np.clip(_month_of(date, cal), 0, T - 1)
    age = (date - birth[person]).astype(np.int64) / 365.25
    hard = x[hh[person], month_idx]
    p_drop = np.where((age >= 12) & (kind == "在读"), 0.004 * np.exp(1.3 * (hard - 0.8)), 0)
    drop = rng.random(len(person)) < np.minimum(p_drop, 0.3)
    pause = (kind == "在读") & ~drop & (rng.random(len(person)) < 0.002)
    extra_date = date + rng.integers(30, 200, len(person)) * _DAY
    out = pd.DataFrame({
        "person": np.concatenate([person, person[drop], person[pause]]),
        "event_date": np.concatenate([date, extra_date[drop], extra_date[pause]]),
        "status": np.concatenate([kind, np.full(drop.sum(), "辍学"), np.full(pause.sum(), "休学")]),
    })
    # a dropout does not come back: later 在读/毕业 rows removed
    first_drop = np.full(len(birth), np.datetime64("2200-01-01"), dtype="datetime64[D]")
    dropped = out["status"].to_numpy() == "辍学"
    np.minimum.at(first_drop, out["person"].to_numpy()[dropped],
                  out["event_date"].to_numpy()[dropped].astype("datetime64[D]"))
    out = out[out["event_date"].to_numpy() <= first_drop[out["person"].to_numpy()]]
    out = out[out["event_date"] < _days(cal.as_of) + _DAY]
    out = out[out["event_date"].to_numpy() >= cal.month_starts[0]]
    out["id_number"] = id_number[out["person"].to_numpy()]
    out = out.drop_duplicates(["id_number", "event_date"], keep="last")
    return out.sort_values(["event_date", "id_number"], kind="stable").reset_index(drop=True)


def _feedback(rng, cal, spells, hh, household_id, hh_global, n):
    """Township feedback on warnings: entries that followed a warning, and checked-out ones."""
    first_delivery = _days(cal.history_start)
    entries = spells[spells["program"].isin(["低保", "低保边缘", "临时救助"])]
    entries = entries.drop_duplicates(["household_id", "program", "start_date"])
    entries = entries[entries["start_date"].to_numpy() > first_delivery + 30 * _DAY]
    entries = entries[rng.random(len(entries)) < 0.6]
    action = entries["program"].map({"低保": "纳入低保", "低保边缘": "纳入低保边缘",
                                     "临时救助": "临时救助"}).to_numpy()
    closed = entries["start_date"].to_numpy() - rng.integers(0, 20, len(entries)) * _DAY
    hh_of = (entries["person"].to_numpy())
    hh_index = hh[hh_of]
    checked = np.flatnonzero(rng.random(n) < 0.004 * cal.months / 12)
    c_closed = first_delivery + (rng.random(len(checked)) * (_days(cal.as_of) - first_delivery)
                                 .astype(np.int64)).astype(np.int64) * _DAY
    c_action = rng.choice(["无需救助", "定期探访", "转介其他部门", "医疗救助"], len(checked),
                          p=[0.5, 0.3, 0.1, 0.1])
    verified = np.concatenate([np.full(len(hh_index), "属实"),
                               np.where(c_action == "无需救助", "不属实", "属实")])
    households = np.concatenate([hh_index, checked])
    closed = np.concatenate([closed, c_closed])
    opened = closed - rng.integers(3, 25, len(closed)) * _DAY
    warning_id = np.char.add(
        np.char.add("YJ", pd.DatetimeIndex(opened).strftime("%Y%m%d").to_numpy(dtype=str)),
        np.char.add("-", np.char.zfill((hh_global[households] % 1_000_000).astype(str), 6)),
    )
    caseworker = person_names(rng, random_surnames(rng, len(households)),
                              rng.random(len(households)) < 0.5)
    out = pd.DataFrame({
        "warning_id": warning_id, "household_id": household_id[households],
        "verified": verified, "action": np.concatenate([action, c_action]),
        "closed_date": closed, "caseworker": caseworker,
    })
    out = out[out["closed_date"].to_numpy() >= first_delivery]
    out = out.drop_duplicates("warning_id")
    return out.sort_values(["closed_date", "warning_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- views


def snapshot(pop: Population, source: str, on: dt.date) -> pd.DataFrame:
    """The state of a snapshot source as a department would deliver it on ``on``.

    Persons born later are absent, deaths and moves after ``on`` not yet
    recorded, spells starting later absent and end dates after ``on`` empty.
    Columns are the contract's, typed (dates ``datetime64``, money float).
    """
    day = _days(on)
    if source == "registry":
        p = pop.persons
        present = p["birth"].to_numpy() <= day
        p = p[present]
        death = p["death"].to_numpy()
        moved = p["moved"].to_numpy()
        dead = death <= day
        gone = ~dead & (moved <= day)
        return pd.DataFrame({
            "id_number": p["id_number"].to_numpy(),
            "name": p["name"].to_numpy(),
            "household_id": p["household_id"].to_numpy(),
            "relation": p["relation"].to_numpy(),
            "region_code": p["region_code"].to_numpy(),
            "status": np.where(dead, "死亡", np.where(gone, "迁出", "正常")),
            "status_date": np.where(dead, death, np.where(gone, moved, _NAT)),
            "phone": p["phone"].to_numpy(),
        })
    if source == "assistance":
        s = pop.spells
        s = s[s["start_date"].to_numpy() <= day]
        end = s["end_date"].to_numpy()
        return pd.DataFrame({
            "id_number": s["id_number"].to_numpy(),
            "household_id": s["household_id"].to_numpy(),
            "program": s["program"].to_numpy(),
            "start_date": s["start_date"].to_numpy(),
            "end_date": np.where(end <= day, end, _NAT),
            "monthly_amount": s["monthly_amount"].to_numpy(),
        })
    if source == "income":
        inc = pop.incomes
        inc = inc[inc["assess_date"].to_numpy() <= day]
        inc = inc.sort_values(["hh", "assess_date"], kind="stable")
        inc = inc.drop_duplicates("hh", keep="last")
        return pd.DataFrame({
            "household_id": pop.households["household_id"].to_numpy()[inc["hh"].to_numpy()],
            "assess_date": inc["assess_date"].to_numpy(),
            "annual_income": inc["annual_income"].to_numpy(),
            "employment_cost": inc["employment_cost"].to_numpy(),
        })
    if source == "rural_revitalization":
        r = pop.revitalization
        monitored = r["monitored"].to_numpy() & (r["since"].to_numpy() <= day)
        tuopin = r["tuopin"].to_numpy() & (r["tuopin_since"].to_numpy() <= day)
        keep = monitored | tuopin
        removed = r["removed"].to_numpy() <= day
        out = pd.DataFrame({
            "household_id": pop.households["household_id"].to_numpy()[r["hh"].to_numpy()],
            "status": np.where(monitored, r["status"].to_numpy(), "脱贫户"),
            "since": np.where(monitored, r["since"].to_numpy(), r["tuopin_since"].to_numpy()),
            "risk_removed": np.where(monitored, np.where(removed, "是", "否"), ""),
        })
        return out[keep].reset_index(drop=True)
    if source == "disability":
        d = pop.disability
        d = d[d["issue_date"].to_numpy() <= day]
        return d[["id_number", "disability_type", "disability_level", "issue_date",
                  "self_care"]].reset_index(drop=True)
    if source == "housing":
        h = pop.housing
        h = h[h["assess_date"].to_numpy() <= day]
        h = h.sort_values(["hh", "assess_date"], kind="stable").drop_duplicates("hh", keep="last")
        return pd.DataFrame({
            "household_id": pop.households["household_id"].to_numpy()[h["hh"].to_numpy()],
            "assess_date": h["assess_date"].to_numpy(),
            "rating": h["rating"].to_numpy(),
        })
    if source == "assets":
        a = pop.assets
        a = a[a["record_date"].to_numpy() <= day]
        return a[["id_number", "asset_type", "asset_ref", "value", "record_date"]].reset_index(
            drop=True)
    raise ValueError(f"not a snapshot source: {source}")


def event_deliveries(pop: Population, source: str, cal: Calendar) -> dict[int, pd.DataFrame]:
    """An events source split by delivery: ``{index into cal.event_months: rows}``."""
    frame = pop.events[source]
    columns = [name for name, _ in COLUMNS[source]]
    index = event_delivery_index(frame[EVENT_DATE[source]].to_numpy(), cal)
    return {int(k): frame.loc[index == k, columns].reset_index(drop=True)
            for k in np.unique(index)}


# --------------------------------------------------------------------------- text and faults


def _date_text(values: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)
    text[np.isnat(values.astype("datetime64[D]"))] = ""
    return text


def _money_text(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    cents = np.round(np.nan_to_num(v) * 100).astype(np.int64)
    whole = cents % 100 == 0
    units = (np.abs(cents) // 100 * np.sign(cents)).astype(str)
    fraction = np.char.zfill((np.abs(cents) % 100).astype(str), 2)
    decimal = np.char.add(np.char.add(units, "."), fraction)
    text = np.where(whole, (cents // 100).astype(str), decimal)
    text = text.astype(object)
    text[np.isnan(v)] = ""
    return text


def as_text(frame: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """The delivery as strings per column (object arrays), empty string for missing."""
    out = {}
    for name, kind in COLUMNS[source]:
        values = frame[name].to_numpy()
        if kind == "date":
            out[name] = _date_text(values)
        elif kind == "money":
            out[name] = _money_text(values)
        elif values.dtype == object:
            out[name] = values.copy()  # faults edit in place: never the population's own
        else:
            out[name] = np.asarray(values).astype(str).astype(object)
    return out


def faulty_text(frame: pd.DataFrame, source: str, rng: np.random.Generator,
                delivery_date: dt.date) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Strings of a delivery with a small share of deterministic faults.

    Faults (each on about ``FAULT_RATE`` of rows): ``bad_check_digit``
    (id number's check character replaced), ``bad_date`` (``YYYY-02-30`` or
    ``YYYY-13-01``), ``negative_amount``, ``duplicate_row``, ``unknown_code``
    (values in :data:`UNKNOWN_CODES`), ``future_date`` (events: dated 3–30 days
    after delivery). Valid variants, not faults: ``legacy_15`` (15-digit id
    numbers of people born 1900–1959) and ``lower_x``.

    Returns
    -------
    text : dict of str to numpy.ndarray
        Column strings, in contract order.
    counts : dict of str to int
        How many rows got each fault or variant.
    """
    text = as_text(frame, source)
    n = len(frame)
    counts: dict[str, int] = {}
    if n == 0:
        return text, counts
    kinds = dict(COLUMNS[source])
    id_cols = [c for c, k in kinds.items() if k == "id"]
    date_cols = [c for c, k in kinds.items() if k == "date"]
    money_cols = [c for c, k in kinds.items() if k == "money"]
    fault_kinds = ["duplicate_row"]
    if id_cols:
        fault_kinds.append("bad_check_digit")
    if date_cols:
        fault_kinds.append("bad_date")
    if money_cols:
        fault_kinds.append("negative_amount")
    if source in UNKNOWN_CODES:
        fault_kinds.append("unknown_code")
    if source in EVENT_SOURCES:
        fault_kinds.append("future_date")
    hit = rng.random(n) < FAULT_RATE
    which = rng.integers(0, len(fault_kinds), n)
    pick = rng.random(n)

    def rows(kind: str) -> np.ndarray:
        return np.flatnonzero(hit & (which == fault_kinds.index(kind)))

    # valid variants first, so that faults stay visible
    for col in id_cols:
        ids = text[col]
        matrix = idcard._digit_matrix(ids, idcard.ID_LENGTH).astype(np.int64)
        year = (matrix[:, 6:10] - ord("0")) @ np.array([1000, 100, 10, 1])
        old = (year >= 1900) & (year < 1960)
        legacy = np.flatnonzero(old & (rng.random(n) < LEGACY_RATE) & ~hit)
        ids[legacy] = [s[:6] + s[8:17] for s in ids[legacy]]
        counts["legacy_15"] = counts.get("legacy_15", 0) + len(legacy)
        ends_x = matrix[:, 17] == ord("X")
        ends_x[legacy] = False
        lower = np.flatnonzero(ends_x & (rng.random(n) < LOWER_X_RATE) & ~hit)
        ids[lower] = [s[:-1] + "x" for s in ids[lower]]
        counts["lower_x"] = counts.get("lower_x", 0) + len(lower)
    if id_cols:
        idx = rows("bad_check_digit")
        col = id_cols[0]
        ids = text[col]
        swap = {c: idcard.CHECK_CHARACTERS[(idcard.CHECK_CHARACTERS.index(c) + 1) % 11]
                for c in idcard.CHECK_CHARACTERS}
        ids[idx] = [s[:17] + swap[s[17].upper()] if len(s) == 18 else s for s in ids[idx]]
        counts["bad_check_digit"] = len(idx)
    if date_cols:
        idx = rows("bad_date")
        col = np.array(date_cols)[(pick[idx] * len(date_cols)).astype(int)] if len(idx) else []
        for i, c in zip(idx, col, strict=True):
            year = delivery_date.year - (1 if i % 3 == 0 else 0)
            text[c][i] = f"{year}-02-30" if i % 2 == 0 else f"{year}-13-01"
        counts["bad_date"] = len(idx)
    if money_cols:
        idx = rows("negative_amount")
        for i in idx:
            c = money_cols[i % len(money_cols)]
            value = text[c][i]
            text[c][i] = "-" + value if value not in ("", "0") else "-100"
        counts["negative_amount"] = len(idx)
    if source in UNKNOWN_CODES:
        col, bad = UNKNOWN_CODES[source]
        idx = rows("unknown_code")
        text[col][idx] = bad
        counts["unknown_code"] = len(idx)
    if source in EVENT_SOURCES:
        idx = rows("future_date")
        later = _days(delivery_date) + (3 + (pick[idx] * 27).astype(np.int64)) * _DAY
        text[EVENT_DATE[source]][idx] = _date_text(later)
        counts["future_date"] = len(idx)
    dup = rows("duplicate_row")
    if len(dup):
        order = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
        text = {c: v[order] for c, v in text.items()}
    counts["duplicate_row"] = len(dup)
    return text, counts
