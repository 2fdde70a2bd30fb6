"""Household and person facts as of a run date: the one table the rules read.

Pure and vectorised: takes the sources as of the run date (as
:func:`monitor.io.lake.read_as_of` returns them), the parameters and the date,
and returns one row per person of the registry snapshot and one row per
household. Contract definitions (section 5): a program is *active* for a
person on the run date when it started on or before it and has no end date or
ends after it; a household is *in* a program when a living member has it
active; *living* means 人口状态 正常; a member is *away for work* when their
latest employment event is 外出务工.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor import regions
from monitor.params import Parameters

MONTHS_PER_YEAR = 12
LIVING, DECEASED = "正常", "死亡"
HEAD, SPOUSE, CHILD = "户主", "配偶", "子女"
#: Person-level flag for each assistance program.
PROGRAM_FLAGS = {
    "低保": "person_in_dibao", "特困": "person_in_tekun", "低保边缘": "person_in_edge",
    "临时救助": "person_in_temporary_aid", "残疾人生活补贴": "has_living_subsidy",
    "残疾人护理补贴": "has_care_subsidy", "孤儿基本生活费": "has_orphan_support",
    "事实无人抚养儿童生活补贴": "has_unsupported_child_support",
}
#: Household-level flags: a living member has the program active.
HOUSEHOLD_PROGRAMS = {"person_in_dibao": "in_dibao", "person_in_tekun": "in_tekun",
                      "person_in_edge": "in_edge"}
MAJOR_ILLNESS = "重特大疾病"
INTELLECTUAL_OR_MENTAL = ("智力", "精神")
DEPENDENT = ("失能", "半失能")
AWAY_FOR_WORK, UNEMPLOYED = "外出务工", "失业登记"
DROPPED_OUT = "辍学"
UNSAFE_RATINGS = ("C", "D")
MONITORED_TYPES = ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户")
VEHICLE, PROPERTY, BUSINESS, FINANCIAL = "机动车", "商品房", "工商登记", "金融资产"
#: Parameters the facts themselves depend on (windows and age bands).
FACT_PARAMETERS = ["medical_window_days", "sudden_window_days", "working_age_from",
                   "working_age_until", "severe_disability_level"]


@dataclass
class Facts:
    """Facts as of a date: ``households`` indexed by household_id, ``persons`` in registry order."""

    as_of: dt.date
    households: pd.DataFrame
    persons: pd.DataFrame


def whole_years(born: pd.Series, on: pd.Series | pd.Timestamp) -> pd.Series:
    """Age in whole years on a date (a birthday on the date counts).

    Examples
    --------
    >>> born = pd.Series(pd.to_datetime(["2006-06-30", "2006-07-01", "2008-02-29"]))
    >>> whole_years(born, pd.Timestamp("2024-06-30")).tolist()
    [18.0, 17.0, 16.0]
    """
    on_year = on.dt.year if isinstance(on, pd.Series) else on.year
    on_day = (on.dt.month * 100 + on.dt.day) if isinstance(on, pd.Series) else (
        on.month * 100 + on.day)
    birthday_passed = (born.dt.month * 100 + born.dt.day) <= on_day
    years = on_year - born.dt.year - (~birthday_passed).astype("int64")
    return years.astype("float64").where(born.notna())


def _latest(events: pd.DataFrame, key: str, date: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The latest event per key on or before ``as_of`` (ties: the later-delivered row)."""
    known = events[events[date] <= as_of]
    return known.sort_values(date, kind="stable").drop_duplicates(key, keep="last").set_index(key)


def _in_window(dates: pd.Series, window_days: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Dates within the last ``window_days`` days up to ``as_of`` (as_of − window excluded)."""
    start = as_of - pd.to_timedelta(window_days, unit="D")
    return (dates > start) & (dates <= as_of)


def person_facts(sources: dict[str, pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """One row per person of the registry snapshot, with their own facts."""
    on = pd.Timestamp(as_of)
    registry = sources["registry"]
    persons = pd.DataFrame({
        "id_number": registry["id_number"].astype("string"),
        "name": registry["name"].astype("string"),
        "household_id": registry["household_id"].astype("string"),
        "relation": registry["relation"].astype("string"),
        "region_code": registry["region_code"].astype("string"),
        "county_code": regions.county_of(registry["region_code"]),
        "township_code": regions.township_of(registry["region_code"]),
        "status": registry["status"].astype("string"),
        "status_date": registry["status_date"],
        "birth_date": registry["birth_date"],
    })
    persons["age"] = whole_years(persons["birth_date"], on)
    persons["is_living"] = (persons["status"] == LIVING).to_numpy(dtype=bool)
    persons["is_deceased"] = (persons["status"] == DECEASED).to_numpy(dtype=bool)
    persons["age_at_death"] = whole_years(persons["birth_date"], persons["status_date"]).where(
        persons["is_deceased"])
    person_index = pd.Index(persons["id_number"])

    spells = sources["assistance"]
    active = spells[(spells["start_date"] <= on)
                    & (spells["end_date"].isna() | (spells["end_date"] > on))]
    for program, flag in PROGRAM_FLAGS.items():
        holders = active.loc[active["program"] == program, "id_number"]
        persons[flag] = person_index.isin(holders)
    persons["any_program_active"] = person_index.isin(active["id_number"])
    tekun_amounts = active[active["program"] == "特困"].groupby("id_number")["monthly_amount"].min()
    persons["tekun_monthly_amount"] = persons["id_number"].map(tekun_amounts).astype("float64")

    disability = sources["disability"].drop_duplicates("id_number", keep="last").set_index(
        "id_number")
    persons["disability_type"] = persons["id_number"].map(disability["disability_type"])
    persons["disability_level"] = persons["id_number"].map(
        disability["disability_level"]).astype("float64")
    persons["self_care"] = persons["id_number"].map(disability["self_care"])
    persons["is_disabled"] = persons["disability_level"].notna().to_numpy()
    persons["is_intellectual_or_mental"] = persons["disability_type"].isin(
        INTELLECTUAL_OR_MENTAL).fillna(False).to_numpy(dtype=bool)
    persons["is_dependent"] = persons["self_care"].isin(DEPENDENT).fillna(False).to_numpy(
        dtype=bool)

    employment = _latest(sources["employment"], "id_number", "event_date", on)
    persons["latest_employment_event"] = persons["id_number"].map(employment["event_type"])
    persons["latest_employment_date"] = persons["id_number"].map(employment["event_date"])
    persons["is_away_for_work"] = (persons["latest_employment_event"] == AWAY_FOR_WORK).fillna(
        False).to_numpy(dtype=bool)
    persons["is_unemployed"] = (persons["latest_employment_event"] == UNEMPLOYED).fillna(
        False).to_numpy(dtype=bool)

    education = _latest(sources["education"], "id_number", "event_date", on)
    persons["school_status"] = persons["id_number"].map(education["status"])
    persons["school_status_date"] = persons["id_number"].map(education["event_date"])
    persons["is_school_dropout"] = (persons["school_status"] == DROPPED_OUT).fillna(
        False).to_numpy(dtype=bool)
    return persons


def build_facts(sources: dict[str, pd.DataFrame], as_of: dt.date, params: Parameters
                ) -> Facts:
    """Person and household facts as of ``as_of`` (windows and age bands from ``params``)."""
    on = pd.Timestamp(as_of)
    persons = person_facts(sources, as_of)
    households = _household_frame(persons)
    household_params = params.frame(households["region_code"], as_of, FACT_PARAMETERS)
    position = households.index.get_indexer(persons["household_id"])

    def per_person(name: str) -> np.ndarray:
        return household_params[name].to_numpy()[position]

    # Medical costs in each household's window, by person then household.
    claims = sources["medical"]
    claim_person = pd.Index(persons["id_number"]).get_indexer(claims["id_number"])
    known = claim_person >= 0
    claims = claims[known]
    claim_person = claim_person[known]
    window = pd.Series(per_person("medical_window_days")[claim_person], index=claims.index)
    in_window = _in_window(claims["settle_date"], window, on).to_numpy()
    claims = claims[in_window]
    claim_person = claim_person[in_window]
    out_of_pocket = np.bincount(claim_person, weights=claims["out_of_pocket"].fillna(0),
                                minlength=len(persons))
    major = (claims["category"] == MAJOR_ILLNESS).fillna(False).to_numpy(dtype=bool)
    persons["medical_out_of_pocket"] = out_of_pocket
    persons["major_illness_claims"] = np.bincount(claim_person[major], minlength=len(persons))

    working_age = ((persons["age"] >= per_person("working_age_from"))
                   & (persons["age"] < per_person("working_age_until"))).to_numpy()
    severely_disabled = (persons["disability_level"] <= per_person(
        "severe_disability_level")).to_numpy()
    persons["is_severely_disabled"] = severely_disabled
    living = persons["is_living"].to_numpy()
    died_in_window = _in_window(persons["status_date"],
                                pd.Series(per_person("sudden_window_days"), index=persons.index),
                                on).to_numpy() & persons["is_deceased"].to_numpy()
    died_working_age = died_in_window & (
        (persons["age_at_death"] >= per_person("working_age_from"))
        & (persons["age_at_death"] < per_person("working_age_until"))).to_numpy()
    head_couple = persons["relation"].isin([HEAD, SPOUSE]).fillna(False).to_numpy(dtype=bool)
    away = persons["is_away_for_work"].to_numpy()

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(position[mask], minlength=len(households))

    households["living_members"] = count(living)
    for person_flag, household_flag in HOUSEHOLD_PROGRAMS.items():
        households[household_flag] = count(living & persons[person_flag].to_numpy()) > 0
    households["working_age_living"] = count(living & working_age)
    households["working_age_able"] = count(living & working_age & ~severely_disabled)
    households["working_age_at_home"] = count(living & working_age & ~away)
    households["working_age_unemployed"] = count(
        living & working_age & persons["is_unemployed"].to_numpy())
    households["head_couple_living"] = count(living & head_couple)
    households["head_couple_away"] = count(living & head_couple & away)
    households["working_age_deaths"] = count(died_working_age)
    death_dates = persons.loc[died_working_age, ["household_id", "status_date"]]
    households["latest_working_age_death"] = death_dates.groupby("household_id")[
        "status_date"].max().reindex(households.index)
    households["medical_out_of_pocket"] = np.bincount(
        position, weights=out_of_pocket, minlength=len(households))
    households["major_illness_claims"] = np.bincount(
        position, weights=persons["major_illness_claims"].to_numpy(),
        minlength=len(households)).astype("int64")

    income = sources["income"].drop_duplicates("household_id", keep="last").set_index(
        "household_id").reindex(households.index)
    households["annual_income"] = income["annual_income"].astype("float64")
    households["employment_cost"] = income["employment_cost"].astype("float64").fillna(0.0)
    households["income_assess_date"] = income["assess_date"]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_capita = ((households["annual_income"] - households["employment_cost"])
                      / MONTHS_PER_YEAR / households["living_members"].replace(0, np.nan))
    households["per_capita_income"] = per_capita.astype("float64")

    disasters = sources["disaster"]
    disaster_household = households.index.get_indexer(disasters["household_id"])
    disasters = disasters[disaster_household >= 0].assign(
        _window=household_params["sudden_window_days"].to_numpy()[
            disaster_household[disaster_household >= 0]])
    recent = disasters[_in_window(disasters["event_date"], disasters["_window"], on)]
    losses = recent.groupby("household_id").agg(
        disaster_loss=("loss_amount", "sum"), latest_disaster_date=("event_date", "max"))
    households["disaster_loss"] = losses["disaster_loss"].reindex(households.index).fillna(0.0)
    households["latest_disaster_date"] = losses["latest_disaster_date"].reindex(households.index)

    assets = sources["assets"]
    asset_household = pd.Series(persons["household_id"].to_numpy(),
                                index=persons["id_number"].to_numpy())
    asset_household = asset_household[~asset_household.index.duplicated()]
    assets = assets.assign(household_id=assets["id_number"].map(asset_household))
    assets = assets[assets["household_id"].notna()]
    by_type = assets.groupby(["household_id", "asset_type"]).agg(
        count=("value", "size"), value=("value", "sum"))
    for name, asset_type in (("vehicles", VEHICLE), ("properties", PROPERTY),
                             ("businesses", BUSINESS)):
        counts = by_type["count"].xs(asset_type, level="asset_type") if asset_type in set(
            assets["asset_type"]) else pd.Series(dtype="int64")
        households[name] = counts.reindex(households.index).fillna(0).astype("int64")
    financial = by_type["value"].xs(FINANCIAL, level="asset_type") if FINANCIAL in set(
        assets["asset_type"]) else pd.Series(dtype="float64")
    households["financial_assets"] = financial.reindex(households.index).fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        households["financial_assets_per_capita"] = (
            households["financial_assets"] / households["living_members"].replace(0, np.nan))

    housing = sources["housing"].drop_duplicates("household_id", keep="last").set_index(
        "household_id").reindex(households.index)
    households["housing_rating"] = housing["rating"]
    households["housing_assess_date"] = housing["assess_date"]
    households["housing_unsafe"] = housing["rating"].isin(UNSAFE_RATINGS).fillna(False).to_numpy(
        dtype=bool)

    revitalization = sources["rural_revitalization"].drop_duplicates(
        "household_id", keep="last").set_index("household_id").reindex(households.index)
    households["revitalization_status"] = revitalization["status"]
    households["revitalization_since"] = revitalization["since"]
    risk_removed = revitalization["risk_removed"].astype("boolean").fillna(False).to_numpy(
        dtype=bool)
    households["is_monitored_for_relapse"] = revitalization["status"].isin(
        MONITORED_TYPES).fillna(False).to_numpy(dtype=bool) & ~risk_removed
    households["risk_score"] = np.nan
    return Facts(as_of, households, persons)


def _household_frame(persons: pd.DataFrame) -> pd.DataFrame:
    """One row per household: its place and its head (户主), from the registry."""
    heads_first = persons.assign(_not_head=(persons["relation"] != HEAD).to_numpy())
    heads_first = heads_first.sort_values(["household_id", "_not_head"], kind="stable")
    first = heads_first.drop_duplicates("household_id", keep="first").set_index("household_id")
    households = pd.DataFrame({
        "region_code": first["region_code"],
        "county_code": first["county_code"],
        "township_code": first["township_code"],
        "head_name": first["name"].where(~first["_not_head"]),
        "head_id_number": first["id_number"].where(~first["_not_head"]),
        "members": persons.groupby("household_id").size(),
    })
    households.index.name = "household_id"
    return households
