"""Assistance programs, income assessments and rural revitalization, driven by latent hardship.

Pure. 低保 follows hardship above ``DIBAO_THRESHOLD`` with a lag of a few
months, 低保边缘 the band below it, 特困 single elders and the severely
disabled living alone, 临时救助 acute shocks; disability subsidies and
children's allowances follow. Incomes are assessed yearly and on each new
entry; the monitored households of 乡村振兴 cross a threshold of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.synth.calendar import (
    DAY,
    NAT,
    Calendar,
    day_in_month,
    dibao_standard,
    first_true,
    month_of,
)
from monitor.synth.population import Disabilities, HouseholdRisk, Households, Persons, Shocks

DIBAO_THRESHOLD, EDGE_THRESHOLD, MONITORING_THRESHOLD = 1.45, 1.05, 1.25


@dataclass
class Entries:
    """When each household entered (and left) 低保 and 低保边缘, and why it was assessed."""

    tekun: np.ndarray
    in_dibao: np.ndarray
    dibao_start: np.ndarray
    dibao_end: np.ndarray
    new_dibao: np.ndarray       # entered within the span (not at its start)
    dibao_month: np.ndarray     # the month it crossed the threshold, and the lag after it
    dibao_lag: np.ndarray
    in_edge: np.ndarray
    edge_start: np.ndarray
    edge_end: np.ndarray
    new_edge: np.ndarray
    edge_month: np.ndarray
    edge_lag: np.ndarray


def _month_day(rng: np.random.Generator, month: np.ndarray, cal: Calendar) -> np.ndarray:
    return day_in_month(rng, np.clip(month, 0, cal.months - 1), cal)


def _before_start(rng: np.random.Generator, count: int, cal: Calendar,
                  earliest: str = "2015-01-01") -> np.ndarray:
    """Days between ``earliest`` and the first simulated day (entries before the span)."""
    low = np.datetime64(earliest)
    return low + (rng.random(count) * (cal.first_day - low).astype(np.int64)).astype(
        np.int64) * DAY


def _dibao(rng: np.random.Generator, x: np.ndarray, tekun: np.ndarray, cal: Calendar
           ) -> tuple[np.ndarray, ...]:
    """Households in 低保 at the start or entering later; their start and end days."""
    n, months = x.shape
    at_start = (x > DIBAO_THRESHOLD)[:, 0] & (rng.random(n) < 0.85) & ~tekun
    cross = first_true(x[:, 1:] > DIBAO_THRESHOLD + 0.1)
    cross = np.where(cross >= 0, cross + 1, -1)
    lag = 1 + rng.poisson(2.5, n)
    new = ~at_start & ~tekun & (cross > 0) & (rng.random(n) < 0.8) & (cross + lag < months)
    start_month = np.where(at_start, -1, np.where(new, cross + lag, -10))
    start = np.full(n, NAT)
    start[at_start] = _before_start(rng, at_start.sum(), cal)
    start[new] = _month_day(rng, start_month[new], cal)
    after = np.arange(months)[None, :] >= (start_month[:, None] + 6)
    recovered = first_true((x < DIBAO_THRESHOLD - 0.3) & after)
    end_month = recovered + 6 + rng.poisson(1, n)
    ends = ((at_start | new) & (recovered >= 0) & (end_month < months)
            & (rng.random(n) < 0.75))
    end = np.full(n, NAT)
    end[ends] = _month_day(rng, end_month[ends], cal)
    end = np.where(end > cal.last_day, NAT, end)
    return at_start, new, start, end, cross, lag


def program_entries(rng: np.random.Generator, x: np.ndarray, households: Households,
                    risk: HouseholdRisk, cal: Calendar) -> Entries:
    """Who is in 特困, 低保 and 低保边缘, from when to when."""
    n, months = x.shape
    single_elder = (households.size == 1) & (risk.elders == 1)
    tekun = (single_elder & (x[:, 0] > DIBAO_THRESHOLD - 0.3)) | (
        (households.size == 1) & risk.has_severe & (x[:, 0] > DIBAO_THRESHOLD - 0.5))
    at_start, new, dibao_start, dibao_end, cross, lag = _dibao(rng, x, tekun, cal)
    in_dibao = at_start | new
    band = (x > EDGE_THRESHOLD) & (x <= DIBAO_THRESHOLD)
    edge_at_start = band[:, 0] & ~at_start & ~tekun & (rng.random(n) < 0.25)
    edge_cross = first_true(x[:, 1:] > EDGE_THRESHOLD + 0.05)
    edge_cross = np.where(edge_cross >= 0, edge_cross + 1, -1)
    edge_lag = 1 + rng.poisson(2, n)
    new_edge = (~edge_at_start & ~in_dibao & ~tekun & (edge_cross > 0)
                & (rng.random(n) < 0.2) & (edge_cross + edge_lag < months))
    in_edge = edge_at_start | new_edge
    edge_start = np.full(n, NAT)
    edge_start[edge_at_start] = _before_start(rng, edge_at_start.sum(), cal, "2021-06-01")
    edge_start[new_edge] = _month_day(rng, (edge_cross + edge_lag)[new_edge], cal)
    edge_end = np.where(in_edge & in_dibao & (dibao_start > edge_start), dibao_start - DAY,
                        NAT)
    recovered = first_true((x < EDGE_THRESHOLD - 0.4)
                           & (np.arange(months)[None, :] >= (edge_cross + edge_lag + 6)[:, None]))
    done = in_edge & np.isnat(edge_end) & (recovered >= 0) & (rng.random(n) < 0.6)
    edge_end[done] = _month_day(rng, recovered[done], cal)
    in_edge &= ~(in_dibao & (dibao_start <= edge_start))
    return Entries(tekun, in_dibao, dibao_start, dibao_end, new, cross, lag, in_edge,
                   edge_start, edge_end, new_edge, edge_cross, edge_lag)


def _household_spells(rng: np.random.Generator, persons: Persons, mask: np.ndarray,
                      start: np.ndarray, end: np.ndarray, program: str,
                      amount: np.ndarray | None, cal: Calendar) -> pd.DataFrame:
    """A household program's spell for each member living when it started."""
    household, death = persons.household, persons.death
    members = (mask[household] & (persons.birth < start[household])
               & (np.isnat(death) | (death > start[household])))
    person = np.flatnonzero(members)
    spell_start, spell_end = start[household[person]], end[household[person]]
    died = death[person]
    # a deceased recipient's spell ends 1–3 months after death; ~8% never (a data error)
    stop = ~np.isnat(died) & (np.isnat(spell_end) | (spell_end > died))
    late = died + rng.integers(20, 95, len(person)) * DAY
    kept_in_error = rng.random(len(person)) < 0.08
    spell_end = np.where(stop & ~kept_in_error, np.where(late > cal.last_day, NAT, late),
                         spell_end)
    return pd.DataFrame({
        "person": person, "program": program, "start_date": spell_start,
        "end_date": spell_end,
        "monthly_amount": np.nan if amount is None else amount[household[person]],
    })


def _temporary_assistance(rng: np.random.Generator, persons: Persons, shocks: Shocks,
                          cal: Calendar) -> pd.DataFrame:
    """临时救助 after acute shocks (illness, a big disaster loss, a working-age death)."""
    acute_h, acute_m = np.nonzero(shocks.ill & (shocks.ill_size > 1.2))
    big = shocks.loss > 8000
    deaths = shocks.working_age_death
    acute_h = np.concatenate([acute_h, shocks.disasters["hh"].to_numpy()[big],
                              persons.household[deaths]])
    acute_m = np.concatenate([acute_m, shocks.disasters["month"].to_numpy()[big],
                              shocks.death_month[deaths]])
    take = ((rng.random(len(acute_h)) < np.where(shocks.fragile[acute_h], 0.6, 0.35))
            & (acute_m + 2 < cal.months))
    acute_h, acute_m = acute_h[take], acute_m[take]
    start = day_in_month(rng, acute_m + 1 + (rng.random(len(acute_h)) < 0.5), cal)
    end = start + rng.integers(28, 92, len(start)) * DAY
    end = np.where(end > cal.last_day, NAT, end)
    return pd.DataFrame({
        "person": persons.first_member[acute_h], "program": "临时救助", "start_date": start,
        "end_date": end, "monthly_amount": np.round(rng.uniform(300, 2500, len(start)), -1),
    })


def _disability_subsidies(rng: np.random.Generator, persons: Persons,
                          disabilities: Disabilities, entries: Entries, cal: Calendar
                          ) -> list[pd.DataFrame]:
    """残疾人生活补贴 for disabled members of 低保 or 边缘 households; 护理补贴 for the severe."""
    person, issue, death = disabilities.person, disabilities.issue, persons.death
    count, household = len(person), persons.household[person]
    living = (entries.in_dibao | entries.in_edge)[persons.household][person] & (
        rng.random(count) < 0.7)
    program_start = np.where(entries.in_dibao, entries.dibao_start, entries.edge_start)[household]
    start = np.maximum(issue, program_start) + rng.integers(15, 90, count) * DAY
    end = np.where(entries.in_dibao, entries.dibao_end, entries.edge_end)[household]
    ok = living & (start <= cal.last_day) & (np.isnat(end) | (end > start))
    subsidy = pd.DataFrame({
        "person": person[ok], "program": "残疾人生活补贴", "start_date": start[ok],
        "end_date": end[ok], "monthly_amount": np.round(rng.uniform(80, 120, ok.sum())),
    })
    care = disabilities.severe[person] & (rng.random(count) < 0.75)
    start = issue + rng.integers(20, 180, count) * DAY
    ok = care & (start <= cal.last_day) & (np.isnat(death[person]) | (death[person] > start))
    end = death[person] + rng.integers(20, 95, count) * DAY
    end = np.where(end > cal.last_day, NAT, end)
    care_subsidy = pd.DataFrame({
        "person": person[ok], "program": "残疾人护理补贴", "start_date": start[ok],
        "end_date": end[ok], "monthly_amount": np.round(rng.uniform(80, 120, ok.sum())),
    })
    return [subsidy, care_subsidy]


def _children_allowances(rng: np.random.Generator, persons: Persons, risk: HouseholdRisk,
                         cal: Calendar) -> list[pd.DataFrame]:
    """事实无人抚养 and 孤儿 allowances for grandchildren with no working-age adult."""
    orphan_like = ((persons.age_start < 18) & (risk.working == 0)[persons.household]
                   & (persons.relation == "孙子女"))
    draw = rng.random(persons.count)
    allowances = []
    for program, low, high, amount in (("事实无人抚养儿童生活补贴", 0.0, 0.55, 1100),
                                       ("孤儿基本生活费", 0.55, 0.65, 1300)):
        chosen = np.flatnonzero(orphan_like & (draw >= low) & (draw < high))
        start = np.maximum(persons.birth[chosen] + 30 * DAY,
                           _before_start(rng, len(chosen), cal, "2019-01-01"))
        allowances.append(pd.DataFrame({
            "person": chosen, "program": program, "start_date": start, "end_date": NAT,
            "monthly_amount": np.round(amount * rng.uniform(0.95, 1.1, len(chosen))),
        }))
    return allowances


def assistance_spells(rng: np.random.Generator, households: Households, persons: Persons,
                      disabilities: Disabilities, risk: HouseholdRisk, shocks: Shocks,
                      entries: Entries, cal: Calendar) -> pd.DataFrame:
    """Every program spell of every person (the assistance source's full history)."""
    n, last = households.count, cal.last_day
    dibao = dibao_standard(np.where(np.isnat(entries.dibao_start), last, entries.dibao_start))
    spells = [
        _household_spells(rng, persons, entries.in_dibao, entries.dibao_start,
                          entries.dibao_end, "低保",
                          np.round(dibao * rng.uniform(0.5, 1.0, n)), cal),
        _household_spells(rng, persons, entries.in_edge, entries.edge_start,
                          entries.edge_end, "低保边缘", None, cal),
    ]
    tekun_start = _before_start(rng, n, cal, "2012-01-01")
    standard = dibao_standard(np.full(n, last))
    tekun_amount = np.round(standard * np.where(rng.random(n) < 0.06, rng.uniform(1.0, 1.25, n),
                                                rng.uniform(1.3, 1.45, n)))
    spells.append(_household_spells(rng, persons, entries.tekun, tekun_start, np.full(n, NAT),
                                     "特困", tekun_amount, cal))
    spells.append(_temporary_assistance(rng, persons, shocks, cal))
    spells += _disability_subsidies(rng, persons, disabilities, entries, cal)
    spells += _children_allowances(rng, persons, risk, cal)
    spells = pd.concat(spells, ignore_index=True)
    spells = spells[spells["start_date"] <= last]
    spells = spells.drop_duplicates(["person", "program", "start_date"]).reset_index(drop=True)
    spells["id_number"] = persons.id_number[spells["person"].to_numpy()]
    spells["household_id"] = households.household_id[
        persons.household[spells["person"].to_numpy()]]
    return spells


def income_assessments(rng: np.random.Generator, x: np.ndarray, households: Households,
                       risk: HouseholdRisk, entries: Entries, cal: Calendar) -> pd.DataFrame:
    """A yearly assessment per household, and one before each new 低保 or 边缘 entry."""
    n, months = x.shape
    first_month = rng.integers(0, 12, n)
    yearly_month = (first_month[:, None] + 12 * np.arange(months // 12 + 1)[None, :]).ravel()
    yearly_household = np.repeat(np.arange(n), months // 12 + 1)
    keep = yearly_month < months
    household = np.concatenate([yearly_household[keep], np.flatnonzero(entries.new_dibao),
                                np.flatnonzero(entries.new_edge)])
    month = np.concatenate([yearly_month[keep],
                            (entries.dibao_month + entries.dibao_lag - 1)[entries.new_dibao],
                            (entries.edge_month + entries.edge_lag - 1)[entries.new_edge]])
    month = np.clip(month, 0, months - 1)
    ratio = np.exp(-0.7 * (x[household, month] - DIBAO_THRESHOLD) - 0.15
                   + rng.normal(0, 0.17, len(household)))
    day = day_in_month(rng, month, cal)
    per_capita_year = ratio * dibao_standard(day) * 12
    employment_cost = np.where(
        rng.random(len(household)) < 0.5,
        np.round(risk.migrants[household] * rng.uniform(1200, 3600, len(household)), -1), 0)
    annual = np.round(per_capita_year * households.size.astype(float)[household]
                      + employment_cost, -1)
    return pd.DataFrame({"hh": household, "assess_date": day, "annual_income": annual,
                         "employment_cost": employment_cost})


def revitalization(rng: np.random.Generator, x: np.ndarray, risk: HouseholdRisk,
                   shocks: Shocks, cal: Calendar) -> pd.DataFrame:
    """脱贫户 and monitored households (不稳定, 边缘易致贫, 突发严重困难), with their dates."""
    n, months = x.shape
    tuopin = risk.tuopin
    tuopin_since = np.datetime64("2014-06-01") + rng.integers(0, 6.5 * 365, n) * DAY
    at_start = x[:, 0] > MONITORING_THRESHOLD
    cross = first_true(x > MONITORING_THRESHOLD + 0.1)
    lag = rng.integers(0, 2, n)
    monitored = (at_start & (rng.random(n) < np.where(tuopin, 0.5, 0.15))) | (
        (cross >= 0) & (rng.random(n) < np.where(tuopin, 0.35, 0.1)))
    since = np.where(at_start, _before_start(rng, n, cal, "2021-03-01"),
                     _month_day(rng, cross + lag, cal))
    since = np.where(since > cal.last_day, cal.last_day, since)
    status = np.where(tuopin, "脱贫不稳定户", "边缘易致贫户")
    sudden = (shocks.total.max(axis=1) > 1.6) & (rng.random(n) < 0.15) & ~monitored
    sudden_day = _month_day(rng, shocks.total.argmax(axis=1) + 1, cal)
    status = np.where(sudden, "突发严重困难户", status)
    since = np.where(sudden, sudden_day, since)
    monitored |= sudden
    since_month = np.clip(month_of(since, cal), 0, months - 1)
    removed_month = first_true((x < MONITORING_THRESHOLD - 0.45)
                               & (np.arange(months)[None, :] >= since_month[:, None] + 6))
    removed = np.where(removed_month >= 0, _month_day(rng, removed_month + 2, cal), NAT)
    frame = pd.DataFrame({
        "hh": np.arange(n), "tuopin": tuopin, "tuopin_since": tuopin_since,
        "monitored": monitored, "status": status, "since": since, "removed": removed,
    })
    return frame[frame["tuopin"] | frame["monitored"]]
