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

from monitor.contract import regions
from monitor.contract.keys import MISSING, id_positions_in_many, key_codes, positions_in_many
from monitor.policy.catalogue import CATALOGUE, EVERY_SOURCE, facts_from_source
from monitor.policy.params import Parameters

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
FACT_PARAMETERS = ["medical_window_days", "sudden_window_days", "recent_window_days",
                   "working_age_from", "working_age_until", "severe_disability_level"]


@dataclass
class Facts:
    """Facts as of a date: ``households`` indexed by household_id, ``persons`` in registry order."""

    as_of: dt.date
    households: pd.DataFrame
    persons: pd.DataFrame
    #: Each person's household as a row number of ``households``.
    person_household: np.ndarray


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


def _row_for(count: int, positions: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """For each of ``count`` targets, the source row pointing at it (-1: none).

    When several rows point at one target the last in ``order`` (then in
    position) wins: the latest event, or the later-delivered row.
    """
    rows = np.arange(len(positions))
    valid = positions >= 0
    sort_keys = (rows[valid],) if order is None else (rows[valid], order[valid])
    ranked = rows[valid][np.lexsort((*sort_keys, positions[valid]))]
    targets = positions[ranked]
    is_last = np.append(targets[1:] != targets[:-1], True) if len(targets) else targets
    chosen = np.full(count, MISSING, dtype=np.int64)
    chosen[targets[is_last]] = ranked[is_last]
    return chosen


def _gather(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """``values`` taken at ``rows``; missing where a row is -1."""
    return pd.Series(values.array.take(rows, allow_fill=True))


def _in_window(dates: pd.Series, window_days: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Dates within the last ``window_days`` days up to ``as_of`` (as_of − window excluded)."""
    start = as_of - pd.to_timedelta(window_days, unit="D")
    return (dates > start) & (dates <= as_of)


#: The columns each source contributes to the facts (the rest need not be read).
SOURCE_COLUMNS = {
    "registry": ["id_number", "name", "household_id", "relation", "region_code", "status",
                 "status_date", "birth_date", "sex"],
    "assistance": ["id_number", "program", "start_date", "end_date", "monthly_amount"],
    "income": ["household_id", "assess_date", "annual_income", "employment_cost"],
    "rural_revitalization": ["household_id", "status", "since", "risk_removed"],
    "medical": ["id_number", "settle_date", "out_of_pocket", "category"],
    "disability": ["id_number", "disability_type", "disability_level", "self_care"],
    "employment": ["id_number", "event_date", "event_type"],
    "education": ["id_number", "event_date", "status"],
    "housing": ["household_id", "assess_date", "rating"],
    "disaster": ["household_id", "event_date", "loss_amount"],
    "assets": ["id_number", "asset_type", "value"],
}


#: The facts each source feeds, the registry's aside: every fact rests on the registry (who
#: lives in the household, their ages), and the model's score on every source. A rule that
#: names one of these facts reads the source (:func:`monitor.triage.deliveries.rules_reading`
#: names the rules of a stale source from it); from the catalogue, and
#: ``tests/triage/test_deliveries.py`` checks it against what the builders do.
FACTS_FROM_SOURCE: dict[str, frozenset[str]] = facts_from_source()
#: Facts that change by the passing of time alone (a birthday): a settled warning does not
#: come back when only these moved (:func:`monitor.triage.lifecycle.evidence_hashes`).
TICKING_FACTS = ("age",)
#: Facts that every source may move (the model's score reads them all).
FACTS_FROM_EVERY_SOURCE = frozenset(fact.name for fact in CATALOGUE if fact.source == EVERY_SOURCE)


#: Events the facts look at only within a window: source -> (date column, window parameter).
WINDOWED_SOURCES = {"medical": ("settle_date", "medical_window_days"),
                    "disaster": ("event_date", "sudden_window_days")}


def history_needed(params: Parameters, as_of: dt.date) -> dict[str, tuple[str, dt.date]]:
    """How far back each windowed events source must be read (the longest window in force)."""
    needed = {}
    for source, (column, parameter) in WINDOWED_SOURCES.items():
        entries = params.table[(params.table["name"] == parameter)
                               & (params.table["from"] <= pd.Timestamp(as_of))]
        longest = int(entries["value"].max()) if len(entries) else 0
        needed[source] = (column, as_of - dt.timedelta(days=longest))
    return needed


def _flag(values: pd.Series, wanted: object) -> np.ndarray:
    """Where a text column equals (or is one of) ``wanted``; missing is false."""
    match = values.isin(wanted) if isinstance(wanted, tuple) else values == wanted
    return match.fillna(False).to_numpy(dtype=bool)


def _days(dates: pd.Series) -> np.ndarray:
    """Dates as int64 nanoseconds, for ordering."""
    return dates.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _active_spells(spells: pd.DataFrame, on: pd.Timestamp) -> pd.DataFrame:
    """Program spells active on a date: started on or before it, not ended by it."""
    active = (spells["start_date"] <= on) & (spells["end_date"].isna() | (spells["end_date"] > on))
    return spells[active.to_numpy(dtype=bool)]


def _by_person(sources: dict[str, pd.DataFrame], ids: pd.Series, on: pd.Timestamp
               ) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Each person-keyed source (as the facts use it) with each row's person position.

    All id numbers are hashed together once.
    """
    frames = {
        "assistance": _active_spells(sources["assistance"], on),
        "disability": sources["disability"],
        "employment": sources["employment"][(sources["employment"]["event_date"] <= on)
                                            .to_numpy(dtype=bool)],
        "education": sources["education"][(sources["education"]["event_date"] <= on)
                                          .to_numpy(dtype=bool)],
        "medical": sources["medical"],
        "assets": sources["assets"],
    }
    positions = id_positions_in_many([frame["id_number"] for frame in frames.values()], ids)
    return {name: (frame, where) for (name, frame), where in zip(
        frames.items(), positions, strict=True)}


def person_facts(sources: dict[str, pd.DataFrame], as_of: dt.date,
                 by_person: dict[str, tuple[pd.DataFrame, np.ndarray]] | None = None
                 ) -> pd.DataFrame:
    """One row per person of the registry snapshot, with their own facts."""
    on = pd.Timestamp(as_of)
    registry = sources["registry"]
    region = registry["region_code"].astype("string")
    persons = pd.DataFrame({
        "id_number": registry["id_number"].astype("string"),
        "name": registry["name"].astype("string"),
        "household_id": registry["household_id"].astype("string"),
        "relation": registry["relation"].astype("string"),
        "region_code": region,
        "county_code": regions.county_of(region),
        "township_code": regions.township_of(region),
        "status": registry["status"].astype("string"),
        "status_date": registry["status_date"].astype("datetime64[ns]"),
        "birth_date": registry["birth_date"].astype("datetime64[ns]"),
        # From the id number at ingest (a pseudonymised number no longer tells it).
        "sex": registry["sex"].astype("string"),
    }).reset_index(drop=True)
    count = len(persons)
    persons["age"] = whole_years(persons["birth_date"], on)
    persons["is_living"] = _flag(persons["status"], LIVING)
    persons["is_deceased"] = _flag(persons["status"], DECEASED)
    persons["is_child_of_head"] = _flag(persons["relation"], CHILD)
    persons["age_at_death"] = whole_years(persons["birth_date"], persons["status_date"]).where(
        persons["is_deceased"])
    if by_person is None:
        by_person = _by_person(sources, persons["id_number"], on)

    active, holder = by_person["assistance"]
    known = holder >= 0
    for program, flag in PROGRAM_FLAGS.items():
        chosen = holder[known & _flag(active["program"], program)]
        persons[flag] = np.bincount(chosen, minlength=count) > 0
    persons["any_program_active"] = np.bincount(holder[known], minlength=count) > 0
    tekun = known & _flag(active["program"], "特困")
    amounts = pd.Series(active["monthly_amount"].to_numpy(dtype="float64")[tekun]).groupby(
        holder[tekun]).min()
    persons["tekun_monthly_amount"] = amounts.reindex(range(count)).to_numpy()

    disability, where = by_person["disability"]
    rows = _row_for(count, where)
    persons["disability_type"] = _gather(disability["disability_type"].astype("string"), rows)
    persons["disability_level"] = _gather(disability["disability_level"].astype("float64"), rows)
    persons["self_care"] = _gather(disability["self_care"].astype("string"), rows)
    persons["is_disabled"] = persons["disability_level"].notna().to_numpy()
    persons["is_intellectual_or_mental"] = _flag(persons["disability_type"],
                                                 INTELLECTUAL_OR_MENTAL)
    persons["is_dependent"] = _flag(persons["self_care"], DEPENDENT)

    employment, where = by_person["employment"]
    rows = _row_for(count, where, _days(employment["event_date"]))
    persons["latest_employment_event"] = _gather(employment["event_type"].astype("string"), rows)
    persons["latest_employment_date"] = _gather(
        employment["event_date"].astype("datetime64[ns]"), rows)
    persons["is_away_for_work"] = _flag(persons["latest_employment_event"], AWAY_FOR_WORK)
    persons["is_unemployed"] = _flag(persons["latest_employment_event"], UNEMPLOYED)

    education, where = by_person["education"]
    rows = _row_for(count, where, _days(education["event_date"]))
    persons["school_status"] = _gather(education["status"].astype("string"), rows)
    persons["school_status_date"] = _gather(education["event_date"].astype("datetime64[ns]"),
                                            rows)
    persons["is_school_dropout"] = _flag(persons["school_status"], DROPPED_OUT)
    return persons


@dataclass
class _Households:
    """What each household topic's facts are built from (see :func:`build_facts`)."""

    on: pd.Timestamp
    sources: dict[str, pd.DataFrame]
    persons: pd.DataFrame
    frame: pd.DataFrame
    #: Each person's household, as a row of ``frame``.
    position: np.ndarray
    #: The fact parameters in force for each household's region.
    params: pd.DataFrame
    #: Each household-keyed source's rows as household rows.
    keyed: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        return len(self.frame)

    def per_person(self, name: str) -> np.ndarray:
        """A parameter's value for each person (that of the person's household)."""
        return self.params[name].to_numpy()[self.position]

    def members(self, mask: np.ndarray) -> np.ndarray:
        """How many members of each household ``mask`` holds for."""
        return np.bincount(self.position[mask], minlength=self.count)

    def latest_row(self, name: str, order: str | None = None) -> np.ndarray:
        """Each household's row of a household-keyed source (the latest by ``order``)."""
        return _row_for(self.count, self.keyed[name],
                        None if order is None else _days(self.sources[name][order]))


def _medical_facts(houses: _Households, claims: pd.DataFrame, claim_person: np.ndarray
                   ) -> None:
    """Out-of-pocket costs and major-illness claims in each household's windows, per person."""
    persons, on = houses.persons, houses.on
    known = claim_person >= 0
    claim_person = claim_person[known]
    window = pd.Series(houses.per_person("medical_window_days")[claim_person])
    settled = pd.Series(claims["settle_date"].to_numpy(dtype="datetime64[ns]")[known])
    in_window = _in_window(settled, window, on).to_numpy()
    claim_person = claim_person[in_window]
    paid = np.nan_to_num(claims["out_of_pocket"].to_numpy(dtype="float64")[known][in_window])
    major = _flag(claims["category"], MAJOR_ILLNESS)[known][in_window]
    # The last few weeks' costs too: a recent illness weighs more on what comes next.
    recent = _in_window(settled[in_window].reset_index(drop=True),
                        pd.Series(houses.per_person("recent_window_days")[claim_person]),
                        on).to_numpy()
    persons["recent_medical_out_of_pocket"] = np.bincount(
        claim_person[recent], minlength=len(persons), weights=paid[recent])
    persons["medical_out_of_pocket"] = np.bincount(claim_person, minlength=len(persons),
                                                   weights=paid)
    persons["major_illness_claims"] = np.bincount(claim_person[major], minlength=len(persons))


def _composition_facts(houses: _Households) -> None:
    """Who lives in each household: living, working age, at home or away, recent deaths."""
    persons, households, members = houses.persons, houses.frame, houses.members
    age = persons["age"].to_numpy()
    working_from, working_until = (houses.per_person("working_age_from"),
                                   houses.per_person("working_age_until"))
    working_age = (age >= working_from) & (age < working_until)
    severely_disabled = persons["disability_level"].to_numpy() <= houses.per_person(
        "severe_disability_level")
    persons["is_severely_disabled"] = severely_disabled
    living = persons["is_living"].to_numpy()
    died_in_window = persons["is_deceased"].to_numpy() & _in_window(
        persons["status_date"], pd.Series(houses.per_person("sudden_window_days")),
        houses.on).to_numpy()
    age_at_death = persons["age_at_death"].to_numpy()
    died_working_age = (died_in_window & (age_at_death >= working_from)
                        & (age_at_death < working_until))
    head_couple = _flag(persons["relation"], (HEAD, SPOUSE))
    away = persons["is_away_for_work"].to_numpy()
    households["living_members"] = members(living)
    for person_flag, household_flag in HOUSEHOLD_PROGRAMS.items():
        households[household_flag] = members(living & persons[person_flag].to_numpy()) > 0
    households["working_age_living"] = members(living & working_age)
    households["working_age_able"] = members(living & working_age & ~severely_disabled)
    households["working_age_at_home"] = members(living & working_age & ~away)
    households["working_age_away"] = members(living & working_age & away)
    households["working_age_unemployed"] = members(
        living & working_age & persons["is_unemployed"].to_numpy())
    households["head_couple_living"] = members(living & head_couple)
    households["head_couple_away"] = members(living & head_couple & away)
    households["working_age_deaths"] = members(died_working_age)
    households["latest_working_age_death"] = _gather(
        persons["status_date"], _row_for(houses.count, np.where(
            died_working_age, houses.position, MISSING), _days(persons["status_date"]))
    ).to_numpy()
    for name in ("medical_out_of_pocket", "recent_medical_out_of_pocket"):
        households[name] = np.bincount(houses.position, weights=persons[name].to_numpy(),
                                       minlength=houses.count)
    households["major_illness_claims"] = np.bincount(
        houses.position, weights=persons["major_illness_claims"].to_numpy(),
        minlength=houses.count).astype(np.int64)


def _living_members(houses: _Households) -> np.ndarray:
    """Living members as a divisor: missing where nobody lives (no per-capita value)."""
    living_members = houses.frame["living_members"].to_numpy(dtype="float64")
    living_members[living_members == 0] = np.nan
    return living_members


def _income_facts(houses: _Households) -> None:
    """The latest income assessment, and the per-capita monthly income after work costs."""
    households, income = houses.frame, houses.sources["income"]
    rows = houses.latest_row("income", "assess_date")
    households["annual_income"] = _gather(income["annual_income"].astype("float64"), rows
                                          ).to_numpy()
    households["employment_cost"] = _gather(income["employment_cost"].astype("float64"), rows
                                            ).fillna(0.0).to_numpy()
    households["income_assess_date"] = _gather(income["assess_date"].astype("datetime64[ns]"),
                                               rows).to_numpy()
    # Necessary work costs above the income leave nothing to live on, not a negative income
    # (which a 预警原因 would print as such).
    households["per_capita_income"] = ((households["annual_income"] - households[
        "employment_cost"]) / MONTHS_PER_YEAR / _living_members(houses)).clip(lower=0.0)


def _disaster_facts(houses: _Households) -> None:
    """Disaster losses within each household's window, and the latest disaster's date."""
    households, disasters = houses.frame, houses.sources["disaster"]
    where = houses.keyed["disaster"]
    known = where >= 0
    happened = pd.Series(disasters["event_date"].to_numpy(dtype="datetime64[ns]")[known])
    window = pd.Series(houses.params["sudden_window_days"].to_numpy()[where[known]])
    recent = _in_window(happened, window, houses.on).to_numpy()
    households["disaster_loss"] = np.bincount(
        where[known][recent], minlength=houses.count,
        weights=np.nan_to_num(disasters["loss_amount"].to_numpy(dtype="float64")[known][recent]))
    latest = _row_for(houses.count, where[known][recent], _days(happened[recent]))
    households["latest_disaster_date"] = _gather(happened[recent].reset_index(drop=True),
                                                 latest).to_numpy()


def _asset_facts(houses: _Households, assets: pd.DataFrame, owner: np.ndarray) -> None:
    """Vehicles, flats and businesses counted; financial assets totalled and per capita."""
    households = houses.frame
    known = owner >= 0
    owner_household = houses.position[owner[known]]
    asset_type = assets["asset_type"][known]
    for name, kind in (("vehicles", VEHICLE), ("properties", PROPERTY), ("businesses", BUSINESS)):
        households[name] = np.bincount(owner_household[_flag(asset_type, kind)],
                                       minlength=houses.count)
    financial = _flag(asset_type, FINANCIAL)
    households["financial_assets"] = np.bincount(
        owner_household[financial], minlength=houses.count,
        weights=np.nan_to_num(assets["value"].to_numpy(dtype="float64")[known][financial]))
    households["financial_assets_per_capita"] = (households["financial_assets"]
                                                 / _living_members(houses))


def _housing_and_revitalization_facts(houses: _Households) -> None:
    """The latest housing rating, and the household's 脱贫 or monitoring status."""
    households, housing = houses.frame, houses.sources["housing"]
    rows = houses.latest_row("housing", "assess_date")
    households["housing_rating"] = _gather(housing["rating"].astype("string"), rows).array
    households["housing_assess_date"] = _gather(housing["assess_date"].astype("datetime64[ns]"),
                                                rows).to_numpy()
    households["housing_unsafe"] = _flag(households["housing_rating"], UNSAFE_RATINGS)
    revitalization = houses.sources["rural_revitalization"]
    rows = houses.latest_row("rural_revitalization")
    status = _gather(revitalization["status"].astype("string"), rows)
    risk_removed = _gather(revitalization["risk_removed"].astype("boolean"), rows)
    households["revitalization_status"] = status.array
    households["revitalization_since"] = _gather(
        revitalization["since"].astype("datetime64[ns]"), rows).to_numpy()
    households["is_monitored_for_relapse"] = _flag(status, MONITORED_TYPES) & ~(
        risk_removed.fillna(False).to_numpy(dtype=bool))


def build_facts(sources: dict[str, pd.DataFrame], as_of: dt.date, params: Parameters
                ) -> Facts:
    """Person and household facts as of ``as_of`` (windows and age bands from ``params``).

    One builder per topic; their columns are the facts of
    :data:`monitor.policy.catalogue.CATALOGUE`.
    """
    on = pd.Timestamp(as_of)
    registry_ids = sources["registry"]["id_number"].astype("string").reset_index(drop=True)
    by_person = _by_person(sources, registry_ids, on)
    persons = person_facts(sources, as_of, by_person)
    households, position = _household_frame(persons)
    household_ids = pd.Series(households.index, dtype="string")
    keyed = ("income", "housing", "rural_revitalization", "disaster")
    houses = _Households(
        on, sources, persons, households, position,
        params.frame(households["region_code"], as_of, FACT_PARAMETERS),
        dict(zip(keyed, positions_in_many([sources[name]["household_id"] for name in keyed],
                                          household_ids), strict=True)))
    _medical_facts(houses, *by_person["medical"])
    _composition_facts(houses)
    _income_facts(houses)
    _disaster_facts(houses)
    _asset_facts(houses, *by_person["assets"])
    _housing_and_revitalization_facts(houses)
    # The model's 风险评分 is not a fact built here: the rules are given it beside the facts
    # (monitor.policy.rules.evaluate), when a model scores the households.
    return Facts(as_of, households, persons, position)


def _household_frame(persons: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per household (its place and its head, 户主) and each person's household row."""
    codes = key_codes(persons, ["household_id"])
    household_count = int(codes.max()) + 1 if len(codes) else 0
    first_member = _row_for(household_count, codes, -np.arange(len(codes)))
    is_head = _flag(persons["relation"], HEAD)
    head = _row_for(household_count, np.where(is_head, codes, MISSING), -np.arange(len(codes)))
    speaker = np.where(head >= 0, head, first_member)

    def at(column: str, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
        # Arrow-backed strings stay Arrow: no round trip through Python objects.
        return persons[column].astype("string").array.take(rows, allow_fill=True)

    households = pd.DataFrame({
        "region_code": at("region_code", speaker),
        "county_code": at("county_code", speaker),
        "township_code": at("township_code", speaker),
        "head_name": at("name", head),
        "head_id_number": at("id_number", head),
        "head_sex": at("sex", head),
        "head_age": np.where(head >= 0, persons["age"].to_numpy(dtype="float64",
                                                                na_value=np.nan)[head], np.nan),
        "members": np.bincount(codes, minlength=household_count),
    }, index=pd.Index(at("household_id", first_member), name="household_id"))
    return households, codes
