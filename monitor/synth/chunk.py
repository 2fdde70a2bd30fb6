"""One chunk of the synthetic population, simulated whole: the generator's entry point.

Pure. :func:`generate_chunk` draws, in a fixed order from one generator per
chunk, the households and persons (:mod:`monitor.synth.population`), their
shocks and latent hardship, the programs they enter
(:mod:`monitor.synth.programs`), their houses and assets
(:mod:`monitor.synth.holdings`) and their events
(:mod:`monitor.synth.events`); :mod:`monitor.synth.deliveries` turns the
result into what each department delivers on a date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor.synth import events, holdings, population, programs
from monitor.synth.calendar import calendar
from monitor.synth.deliveries import EVENT_DATE


@dataclass
class Population:
    """The full simulated history of one chunk of households.

    Snapshot tables hold every version with its validity (see
    :func:`monitor.synth.deliveries.snapshot`); events tables hold every event with its date.
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
    homes = population.place_households(rng, households, first_household, places)
    people = population.make_persons(rng, homes, cal, taken_ids)
    disabilities = population.make_disabilities(rng, people, cal)
    risk = population.household_risk(rng, homes, people, disabilities, cal)
    shocks = population.make_shocks(rng, seed, homes, people, risk, cal)
    hardship = population.latent_hardship(rng, shocks, risk)
    entries = programs.program_entries(rng, hardship, homes, risk, cal)
    spells = programs.assistance_spells(rng, homes, people, disabilities, risk, shocks,
                                        entries, cal)
    incomes = programs.income_assessments(rng, hardship, homes, risk, entries, cal)
    revitalization = programs.revitalization(rng, hardship, risk, shocks, cal)
    housing = holdings.housing_ratings(rng, hardship, risk, cal)
    assets = holdings.household_assets(rng, hardship, people.first_member, people.id_number,
                                       cal)
    household = people.household
    happened = {
        "medical": events.medical_claims(rng, cal, chunk_index, household, people.age_start,
                                         hardship, shocks.ill, people.birth, people.death,
                                         people.id_number),
        "employment": events.employment_events(rng, cal, household, people.migrant,
                                               people.working, shocks.jobloss,
                                               people.id_number, people.birth),
        "education": events.school_events(rng, cal, household, people.birth, people.death,
                                          hardship, people.id_number),
        "disaster": events.disaster_events(shocks.disasters, shocks.loss, homes.household_id,
                                           cal),
        "feedback": events.township_feedback(rng, cal, spells, household, homes.household_id,
                                             homes.global_index, homes.count),
    }
    for name, frame in happened.items():
        happened[name] = frame[(frame[EVENT_DATE[name]] <= cal.last_day).to_numpy()
                               ].reset_index(drop=True)
    return Population(
        households=_household_frame(homes, entries, risk), persons=_person_frame(homes, people),
        spells=spells, incomes=incomes, revitalization=revitalization,
        disability=disabilities.frame, housing=housing, assets=assets, events=happened,
        hardship=hardship, new_ids=np.sort(people.id_values),
    )


def _household_frame(homes: population.Households, entries: programs.Entries,
                     risk: population.HouseholdRisk) -> pd.DataFrame:
    return pd.DataFrame({
        "household_id": homes.household_id, "region_code": homes.region,
        "county_code": homes.county, "township": homes.township, "size": homes.size,
        "in_dibao": entries.in_dibao, "dibao_start": entries.dibao_start,
        "in_edge": entries.in_edge, "edge_start": entries.edge_start, "tuopin": risk.tuopin,
    })


def _person_frame(homes: population.Households, people: population.Persons) -> pd.DataFrame:
    return pd.DataFrame({
        "id_number": people.id_number, "name": people.names,
        "household_id": homes.household_id[people.household], "relation": people.relation,
        "region_code": homes.region[people.household], "birth": people.birth,
        "male": people.male, "death": people.death, "moved": people.move,
        "phone": people.phone, "migrant": people.migrant, "hh": people.household,
    })
