"""What departments deliver of the synthetic population: snapshots on a date, events by month.

Pure. A snapshot source is a view of the full history as of its delivery
date (persons born later absent, deaths and moves after it not yet
recorded, spells starting later absent, end dates after it empty); an
events source is its events grouped by monthly delivery. :func:`as_text`
writes a delivery's values as the strings of a file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from monitor.contract.sources import SOURCES
from monitor.synth.calendar import NAT, Calendar, as_day, event_delivery_index

if TYPE_CHECKING:
    from monitor.synth.chunk import Population

SNAPSHOT_SOURCES = (
    "registry", "assistance", "income", "rural_revitalization", "disability", "housing", "assets",
)
EVENT_SOURCES = ("medical", "employment", "education", "disaster", "feedback")
# How the generator writes each contract column, read off the schemas: ids and
# dates and money get their own text form and faults; the rest is plain text.
_WRITTEN_AS = {"id": "id", "code": "code", "date": "date", "money": "money"}
#: Columns per source: (name, kind) with kind id, date, money, code or text.
COLUMNS = {
    name: [(spec.name, _WRITTEN_AS.get(spec.parse, "text")) for spec in source.columns]
    for name, source in SOURCES.items()
}
#: The date column by which an events source is delivered.
EVENT_DATE = {"medical": "settle_date", "employment": "event_date", "education": "event_date",
              "disaster": "event_date", "feedback": "closed_date"}


def _registry(pop: Population, day: np.datetime64) -> pd.DataFrame:
    persons = pop.persons
    persons = persons[persons["birth"].to_numpy() <= day]
    death, moved = persons["death"].to_numpy(), persons["moved"].to_numpy()
    dead = death <= day
    gone = ~dead & (moved <= day)
    return pd.DataFrame({
        "id_number": persons["id_number"].to_numpy(),
        "name": persons["name"].to_numpy(),
        "household_id": persons["household_id"].to_numpy(),
        "relation": persons["relation"].to_numpy(),
        "region_code": persons["region_code"].to_numpy(),
        "status": np.where(dead, "死亡", np.where(gone, "迁出", "正常")),
        "status_date": np.where(dead, death, np.where(gone, moved, NAT)),
        "phone": persons["phone"].to_numpy(),
    })


def _assistance(pop: Population, day: np.datetime64) -> pd.DataFrame:
    spells = pop.spells[pop.spells["start_date"].to_numpy() <= day]
    end = spells["end_date"].to_numpy()
    return pd.DataFrame({
        "id_number": spells["id_number"].to_numpy(),
        "household_id": spells["household_id"].to_numpy(),
        "program": spells["program"].to_numpy(),
        "start_date": spells["start_date"].to_numpy(),
        "end_date": np.where(end <= day, end, NAT),
        "monthly_amount": spells["monthly_amount"].to_numpy(),
    })


def _latest(frame: pd.DataFrame, date_column: str, day: np.datetime64) -> pd.DataFrame:
    """Each household's latest row dated on or before ``day``."""
    frame = frame[frame[date_column].to_numpy() <= day]
    return frame.sort_values(["hh", date_column], kind="stable").drop_duplicates("hh",
                                                                               keep="last")


def _income(pop: Population, day: np.datetime64) -> pd.DataFrame:
    income = _latest(pop.incomes, "assess_date", day)
    return pd.DataFrame({
        "household_id": pop.households["household_id"].to_numpy()[income["hh"].to_numpy()],
        "assess_date": income["assess_date"].to_numpy(),
        "annual_income": income["annual_income"].to_numpy(),
        "employment_cost": income["employment_cost"].to_numpy(),
    })


def _rural_revitalization(pop: Population, day: np.datetime64) -> pd.DataFrame:
    households = pop.revitalization
    monitored = households["monitored"].to_numpy() & (households["since"].to_numpy() <= day)
    tuopin = households["tuopin"].to_numpy() & (households["tuopin_since"].to_numpy() <= day)
    removed = households["removed"].to_numpy() <= day
    out = pd.DataFrame({
        "household_id": pop.households["household_id"].to_numpy()[households["hh"].to_numpy()],
        "status": np.where(monitored, households["status"].to_numpy(), "脱贫户"),
        "since": np.where(monitored, households["since"].to_numpy(),
                          households["tuopin_since"].to_numpy()),
        "risk_removed": np.where(monitored, np.where(removed, "是", "否"), ""),
    })
    return out[monitored | tuopin].reset_index(drop=True)


def _disability(pop: Population, day: np.datetime64) -> pd.DataFrame:
    certificates = pop.disability[pop.disability["issue_date"].to_numpy() <= day]
    return certificates[["id_number", "disability_type", "disability_level", "issue_date",
                         "self_care"]].reset_index(drop=True)


def _housing(pop: Population, day: np.datetime64) -> pd.DataFrame:
    ratings = _latest(pop.housing, "assess_date", day)
    return pd.DataFrame({
        "household_id": pop.households["household_id"].to_numpy()[ratings["hh"].to_numpy()],
        "assess_date": ratings["assess_date"].to_numpy(),
        "rating": ratings["rating"].to_numpy(),
    })


def _assets(pop: Population, day: np.datetime64) -> pd.DataFrame:
    assets = pop.assets[pop.assets["record_date"].to_numpy() <= day]
    return assets[["id_number", "asset_type", "asset_ref", "value", "record_date"]].reset_index(
        drop=True)


_SNAPSHOTS = {"registry": _registry, "assistance": _assistance, "income": _income,
              "rural_revitalization": _rural_revitalization, "disability": _disability,
              "housing": _housing, "assets": _assets}


def snapshot(pop: Population, source: str, on: dt.date) -> pd.DataFrame:
    """The state of a snapshot source as a department would deliver it on ``on``.

    Persons born later are absent, deaths and moves after ``on`` not yet
    recorded, spells starting later absent and end dates after ``on`` empty.
    Columns are the contract's, typed (dates ``datetime64``, money float).
    """
    if source not in _SNAPSHOTS:
        raise ValueError(f"not a snapshot source: {source}")
    return _SNAPSHOTS[source](pop, as_day(on))


def event_deliveries(pop: Population, source: str, cal: Calendar) -> dict[int, pd.DataFrame]:
    """An events source split by delivery: ``{index into cal.event_months: rows}``."""
    frame = pop.events[source]
    columns = [name for name, _ in COLUMNS[source]]
    index = event_delivery_index(frame[EVENT_DATE[source]].to_numpy(), cal)
    return {int(k): frame.loc[index == k, columns].reset_index(drop=True)
            for k in np.unique(index)}


def date_text(values: np.ndarray) -> np.ndarray:
    """Dates as ``YYYY-MM-DD`` strings, empty where missing."""
    text = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)
    text[np.isnat(values.astype("datetime64[D]"))] = ""
    return text


def money_text(values: np.ndarray) -> np.ndarray:
    """Amounts as a department writes them: whole yuan without decimals, else two."""
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
            out[name] = date_text(values)
        elif kind == "money":
            out[name] = money_text(values)
        elif values.dtype == object:
            out[name] = values.copy()  # faults edit in place: never the population's own
        else:
            out[name] = np.asarray(values).astype(str).astype(object)
    return out
