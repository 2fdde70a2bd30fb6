"""The synthetic households and persons, their disabilities, shocks and latent hardship.

Pure. Each household has a monthly *latent hardship* ``x = chronic + a``
where ``a`` is an AR(1) process driven by shocks (illness, job loss,
disaster, death of a working-age member); see :mod:`monitor.synth.chunk`.
Each function draws from the chunk's generator in a fixed order: the same
seed gives the same population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.synth.calendar import DAY, NAT, Calendar, month_of
from monitor.synth.draws import digits, lognormal, person_names, random_surnames
from monitor.synth.events import disaster_clusters
from monitor.validation import idcard

#: Tries at drawing id-number sequence numbers that no other person of any chunk has.
ID_TRIES = 50


@dataclass
class Households:
    """Where each household of the chunk lives, its id and size."""

    township: np.ndarray        # row of regions.townships()
    region: np.ndarray          # 12-digit village code
    county: np.ndarray
    global_index: np.ndarray    # position in the whole population
    household_id: np.ndarray
    size: np.ndarray

    @property
    def count(self) -> int:
        """How many households."""
        return len(self.size)


@dataclass
class Persons:
    """Every member of the chunk's households, in household order."""

    household: np.ndarray       # the member's household (row of Households)
    first_member: np.ndarray    # each household's first member (its head)
    slot: np.ndarray            # position within the household (0: head)
    relation: np.ndarray
    head_age: np.ndarray        # the head's age, per household
    age: np.ndarray             # age on the as-of date
    birth: np.ndarray
    male: np.ndarray
    head_male: np.ndarray       # per household
    age_start: np.ndarray       # age at the first simulated day (negative: born later)
    death: np.ndarray
    move: np.ndarray
    id_number: np.ndarray
    id_values: np.ndarray       # the first 17 digits as int64 (unique across chunks)
    names: np.ndarray
    phone: np.ndarray
    working: np.ndarray         # working age on the first simulated day
    migrant: np.ndarray

    @property
    def count(self) -> int:
        """How many persons."""
        return len(self.household)


@dataclass
class Disabilities:
    """The chunk's disability certificates (one per disabled person)."""

    person: np.ndarray
    level: np.ndarray
    issue: np.ndarray
    severe: np.ndarray          # per person: level 1–2, or intellectual or mental
    frame: pd.DataFrame


@dataclass
class HouseholdRisk:
    """What makes a household fragile, drawn once: members by age and work, poverty history."""

    elders: np.ndarray
    working: np.ndarray
    migrants: np.ndarray
    local_workers: np.ndarray
    has_disabled: np.ndarray
    has_severe: np.ndarray
    elder_only: np.ndarray
    tuopin: np.ndarray          # a 脱贫户
    chronic: np.ndarray         # the chronic part of latent hardship


@dataclass
class Shocks:
    """Monthly shocks per household, and the events behind them."""

    ill: np.ndarray             # households × months
    ill_size: np.ndarray
    jobloss: np.ndarray
    total: np.ndarray           # households × months, float32
    death_month: np.ndarray     # per person
    working_age_death: np.ndarray
    disasters: pd.DataFrame     # household, month, type, intensity, day
    loss: np.ndarray            # per disaster row
    fragile: np.ndarray         # per household


def place_households(rng: np.random.Generator, count: int, first_household: int,
                     places: tuple[str, ...] | None) -> Households:
    """Households in real townships (streets less often), villages, sizes."""
    towns = regions.townships()
    street = towns["township_code"].str.slice(6, 9).astype(int).to_numpy() < 100
    weight = np.where(street, 0.3, 1.0)
    if places:
        chosen = towns["township_code"].str.startswith(tuple(places)).to_numpy(dtype=bool)
        if not chosen.any():
            raise ValueError(f"no Chongqing township matches {list(places)}")
        weight = np.where(chosen, weight, 0.0)
    n = count
    town = rng.choice(len(towns), n, p=weight / weight.sum())
    village = np.where(rng.random(n) < 0.88, rng.integers(200, 236, n), rng.integers(1, 16, n))
    region = np.char.add(towns["township_code"].to_numpy(dtype=str)[town],
                         np.char.zfill(village.astype(str), 3))
    county = towns["county_code"].to_numpy(dtype=str)[town]
    global_index = first_household + np.arange(n)
    household_id = np.char.zfill((global_index + 1).astype(str), 12)
    size = rng.choice(np.arange(1, 7), n, p=[0.2, 0.3, 0.2, 0.16, 0.09, 0.05])
    return Households(town, region, county, global_index, household_id, size)


def _relations(rng: np.random.Generator, size: np.ndarray, household: np.ndarray,
               slot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each member's relation to the head, and the head's age (per household and member)."""
    n, people = len(size), len(household)
    members = size[household]
    head_age = np.where(size == 1, rng.normal(66, 14, n), rng.normal(57, 13, n)).clip(20, 95)
    head = head_age[household]
    young_head = head < 48
    u = rng.random(people)
    relation = np.full(people, "子女", dtype=object)
    relation[slot == 0] = "户主"
    relation[(slot == 1) & ((u < 0.84) | (members > 3))] = "配偶"
    relation[(slot >= 2) & young_head & (u < 0.15) & (head < 60)] = "父母"
    relation[(slot >= 3) & ~young_head & (u < 0.7)] = "孙子女"
    # a few skipped-generation households (grandparents raising grandchildren)
    relation[(slot == 2) & (members == 3) & (head >= 55) & (u < 0.03)] = "孙子女"
    other = (slot >= 2) & (u > 0.985)
    relation[other] = np.where(head[other] < 40, "兄弟姐妹", "其他")
    relation[(slot >= 2) & (u > 0.995) & (head < 35)] = "祖父母"
    return relation, head_age, head


def _ages(rng: np.random.Generator, relation: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Each member's age, from the head's and the relation."""
    young_head = head < 48
    age = np.empty(len(relation))
    r = rng.random(len(relation))
    age[:] = head
    sel = relation == "配偶"
    age[sel] = head[sel] + rng.normal(-2, 3, sel.sum())
    sel = relation == "子女"
    child_age = np.where(young_head[sel], head[sel] - 23 - 13 * r[sel],
                         head[sel] - 24 - 11 * r[sel])
    age[sel] = np.where(child_age < 0, 6 * r[sel], child_age)
    sel = relation == "孙子女"
    grandchild_age = head[sel] - 50 - 8 * r[sel]
    age[sel] = np.where(grandchild_age < 0, 12 * r[sel], grandchild_age)
    sel = relation == "父母"
    age[sel] = head[sel] + 24 + 8 * r[sel]
    sel = relation == "祖父母"
    age[sel] = head[sel] + 48 + 6 * r[sel]
    sel = relation == "兄弟姐妹"
    age[sel] = head[sel] + rng.normal(0, 5, sel.sum())
    sel = relation == "其他"
    age[sel] = 10 + 60 * r[sel]
    return age.clip(0.01, 101)


def _lifetimes(rng: np.random.Generator, age_start: np.ndarray, slot: np.ndarray,
               birth: np.ndarray, cal: Calendar) -> tuple[np.ndarray, np.ndarray]:
    """Deaths (Gompertz) and moves out within the simulated span (NaT: none)."""
    people, first, last = len(age_start), cal.first_day, cal.last_day
    q = np.minimum(0.5, np.exp(-10.2 + 0.09 * np.maximum(age_start, 0)))
    q = q + np.where((age_start >= 18) & (age_start < 60), 0.0006, 0)
    death_offset = (rng.exponential(1.0, people) / q * 365.25).astype(np.int64)
    death = first + death_offset * DAY
    death = np.where((death <= last) & (death > birth), death, NAT)
    moving = (age_start >= 18) & (age_start < 40) & (slot > 0) & (rng.random(people) < 0.015)
    move = first + (rng.random(people) * (last - first).astype(np.int64)).astype(np.int64) * DAY
    return death, np.where(moving & np.isnat(death), move, NAT)


def _id_numbers(rng: np.random.Generator, county: np.ndarray, birth: np.ndarray,
                male: np.ndarray, taken_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Valid id numbers, unique within the chunk and against ``taken_ids``; their 17 digits."""
    people = len(birth)
    birth_int = pd.DatetimeIndex(birth).strftime("%Y%m%d").to_numpy().astype(np.int64)
    base17 = county.astype(np.int64) * 10**11 + birth_int * 1000
    seq = rng.integers(0, 500, people) * 2 + male
    taken = np.empty(0, np.int64) if taken_ids is None else taken_ids
    for _ in range(ID_TRIES):
        id17 = base17 + seq
        order = np.argsort(id17, kind="stable")
        repeated = np.zeros(people, bool)
        repeated[1:] = id17[order][1:] == id17[order][:-1]
        clash = np.zeros(people, bool)
        clash[order[repeated]] = True
        if len(taken):
            at = np.searchsorted(taken, id17).clip(0, len(taken) - 1)
            clash |= taken[at] == id17
        if not clash.any():
            break
        seq[clash] = rng.integers(0, 500, clash.sum()) * 2 + male[clash]
    return idcard.make_id_numbers(county, birth, seq), base17 + seq


def make_persons(rng: np.random.Generator, households: Households, cal: Calendar,
                 taken_ids: np.ndarray | None) -> Persons:
    """The members of every household: relation, age, sex, lifetime, id number, name, phone."""
    size, n = households.size, households.count
    household = np.repeat(np.arange(n), size)
    first_member = np.concatenate([[0], np.cumsum(size)[:-1]])
    slot = np.arange(int(size.sum())) - np.repeat(first_member, size)
    relation, head_age, head = _relations(rng, size, household, slot)
    age = _ages(rng, relation, head)
    birth = cal.last_day - (age * 365.25).astype(np.int64) * DAY
    head_male = rng.random(n) < 0.82
    male = rng.random(len(household)) < 0.5
    male[slot == 0] = head_male
    male[relation == "配偶"] = ~head_male[household[relation == "配偶"]]
    age_start = (cal.first_day - birth).astype(np.int64) / 365.25
    death, move = _lifetimes(rng, age_start, slot, birth, cal)
    id_number, id_values = _id_numbers(rng, households.county[household], birth, male,
                                       taken_ids)
    surname = random_surnames(rng, n)
    own_surname = random_surnames(rng, len(household))
    inherits = np.isin(relation, ["户主", "子女", "孙子女", "兄弟姐妹"]) & head_male[household]
    inherits |= slot == 0
    names = person_names(rng, np.where(inherits, surname[household], own_surname), male)
    prefix = rng.choice(np.r_[130:140, 150:154, 155:160, 180:190], len(household))
    phone = np.char.add(prefix.astype(str), digits(rng, len(household), 8))
    no_phone = (age < 16) | ((age > 75) & (rng.random(len(household)) < 0.5))
    phone = np.where(no_phone, "", phone)
    working = (age_start >= 18) & (age_start < 60)
    away_share = np.where(age_start < 45, 0.6, 0.32)
    migrant = (working & (rng.random(len(household)) < away_share)
               & ~((slot == 0) & (head > 50)))
    return Persons(household, first_member, slot, relation, head_age, age, birth, male,
                   head_male, age_start, death, move, id_number, id_values, names, phone,
                   working, migrant)


def make_disabilities(rng: np.random.Generator, persons: Persons, cal: Calendar
                      ) -> Disabilities:
    """Disability certificates: more with age; level, type, self-care and issue date."""
    people, age = persons.count, persons.age
    disabled = rng.random(people) < 0.02 + 0.0014 * np.maximum(age - 18, 0)
    person = np.flatnonzero(disabled)
    nd = len(person)
    types = np.array(["肢体", "视力", "听力", "精神", "智力", "言语", "多重"])
    kind = types[rng.choice(7, nd, p=[0.5, 0.14, 0.13, 0.08, 0.07, 0.02, 0.06])]
    level = rng.choice([1, 2, 3, 4], nd, p=[0.1, 0.18, 0.3, 0.42])
    care_share = np.array([[0.15, 0.35, 0.5], [0.4, 0.4, 0.2], [0.7, 0.25, 0.05],
                           [0.88, 0.1, 0.02]])
    draw = rng.random(nd)
    self_care = np.array(["完全自理", "半失能", "失能"])[
        (draw[:, None] > care_share[level - 1].cumsum(axis=1)).sum(axis=1).clip(0, 2)
    ]
    earliest = np.maximum(persons.birth[person] + 365 * DAY, np.datetime64("2008-01-01"))
    span = (cal.last_day - earliest).astype(np.int64).clip(1, None)
    issue = earliest + (rng.random(nd) ** 0.6 * span).astype(np.int64) * DAY
    severe = np.zeros(people, bool)
    severe[person] = (level <= 2) | np.isin(kind, ["智力", "精神"])
    frame = pd.DataFrame({
        "person": person, "id_number": persons.id_number[person], "disability_type": kind,
        "disability_level": level, "issue_date": issue, "self_care": self_care,
    })
    return Disabilities(person, level, issue, severe, frame)


def household_risk(rng: np.random.Generator, households: Households, persons: Persons,
                   disabilities: Disabilities, cal: Calendar) -> HouseholdRisk:
    """Members by age and work, disability, 脱贫 history and the chronic part of hardship."""
    n, household = households.count, persons.household
    alive_start = np.isnat(persons.death) | (persons.death > cal.first_day)
    elders = np.bincount(household, (persons.age_start >= 60) & alive_start, n)
    working = np.bincount(household, persons.working & alive_start, n)
    migrants = np.bincount(household, persons.migrant, n)
    disabled = np.zeros(persons.count, bool)
    disabled[disabilities.person] = True
    has_disabled = np.bincount(household, disabled, n) > 0
    has_severe = np.bincount(household, disabilities.severe, n) > 0
    elder_only = (elders > 0) & (working == 0)
    z = rng.standard_normal(n)
    tuopin = rng.random(n) < 1 / (1 + np.exp(-(-2.5 + 0.9 * z + 0.4 * elder_only
                                                + 0.4 * has_disabled)))
    chronic = (0.45 * z + 0.5 * elder_only + 0.35 * has_severe + 0.2 * has_disabled
               + 0.3 * tuopin + 0.25 * (households.size == 1) - 0.15 * np.minimum(migrants, 2)
               - 0.1 * (working - migrants))
    local_workers = np.bincount(household, persons.working & ~persons.migrant, n)
    return HouseholdRisk(elders, working, migrants, local_workers, has_disabled, has_severe,
                         elder_only, tuopin, chronic)


def make_shocks(rng: np.random.Generator, seed: int, households: Households,
                persons: Persons, risk: HouseholdRisk, cal: Calendar) -> Shocks:
    """Illness, job loss, working-age deaths and disasters, month by month."""
    n, months = households.count, cal.months
    ill_rate = 0.003 + 0.003 * risk.elders + 0.003 * risk.has_disabled
    ill = rng.random((n, months)) < ill_rate[:, None]
    jobloss = rng.random((n, months)) < (0.005 * np.minimum(risk.local_workers, 2))[:, None]
    total = np.zeros((n, months), np.float32)
    ill_size = 0.6 + rng.exponential(0.6, (n, months))
    total += ill * ill_size
    total += jobloss * (0.4 + rng.exponential(0.3, (n, months)))
    # deaths of working-age members
    death_month = month_of(persons.death, cal)
    working_age_death = (~np.isnat(persons.death) & (persons.age_start >= 18)
                         & (persons.age_start < 60) & (death_month >= 0))
    np.add.at(total, (persons.household[working_age_death], death_month[working_age_death]), 1.0)
    # disasters: the chunk's households in a struck township
    by_town = pd.DataFrame({"hh": np.arange(n), "township": households.township})
    hits = by_town.merge(disaster_clusters(seed, cal), on="township", how="inner", sort=False)
    hits = hits[rng.random(len(hits)) < hits["hit_share"].to_numpy()]
    hits = hits.sort_values(["hh", "month"], kind="stable").reset_index(drop=True)
    nh = len(hits)
    loss = (lognormal(rng, 3500, 1.0, nh) * hits["intensity"].to_numpy()
            * np.where(rng.random(nh) < 0.05, rng.pareto(1.5, nh) + 1, 1))
    loss = np.round(loss, -1).clip(100, None)
    np.add.at(total, (hits["hh"].to_numpy(), hits["month"].to_numpy()),
              (0.35 * np.log1p(loss / 2000)).astype(np.float32))
    # Compound vulnerability: a shock weighs far more on a household with no working-age
    # member at home and a dependant (an elder or a disabled member). Each fact alone is
    # common and mostly harmless; a moderate shock on top of both is what foretells a
    # program entry, and no single rule looks at the three together.
    fragile = (risk.local_workers == 0) & ((risk.elders > 0) | risk.has_disabled)
    total *= np.where(fragile, 2.2, 1.0).astype(np.float32)[:, None]
    return Shocks(ill, ill_size, jobloss, total, death_month, working_age_death, hits, loss,
                  fragile)


def latent_hardship(rng: np.random.Generator, shocks: Shocks, risk: HouseholdRisk
                    ) -> np.ndarray:
    """``x = chronic + a``, ``a`` an AR(1) process driven by the shocks (households × months)."""
    n, months = shocks.total.shape
    a = np.empty((n, months), np.float32)
    previous = rng.normal(0, 0.3, n)
    noise = rng.normal(0, 0.12, (n, months))
    for month in range(months):
        previous = 0.88 * previous + shocks.total[:, month] + noise[:, month]
        a[:, month] = previous
    return risk.chronic[:, None] + a
