"""The risk model's features: one numeric row per household, from the nightly facts.

Pure and vectorised. The features are computed from
:func:`monitor.policy.facts.build_facts` output, the same code the nightly rules
read, so that training (on past as-of dates) and scoring (tonight) cannot
drift apart, and nothing known only after the as-of date can enter: the facts
see only deliveries up to that date and events dated up to it.

The feature names are the keys of ``features`` in ``rules/model.yaml``, where
each has the Chinese phrase a caseworker reads. The sex of the household head
is not a feature; it is kept in :func:`audit_groups` for the fairness audit.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from monitor.policy.facts import Facts
from monitor.policy.params import Parameters

DAYS_PER_MONTH = 365.25 / 12
#: 乡村振兴 household types that were lifted out of poverty (the others are monitored only).
LIFTED = ("脱贫户", "脱贫不稳定户")
#: Parameters the features read (thresholds of age bands, the standard they are scaled by).
FEATURE_PARAMETERS = ["dibao_standard", "elder_age", "adult_age"]
FEATURE_NAMES = (
    "per_capita_income_ratio", "income_assessment_age_months", "income_unknown",
    "living_members", "single_person", "head_age", "elderly_members", "minor_members",
    "working_age_members", "working_age_away", "working_age_at_home", "working_age_unemployed",
    "disabled_members",
    "severely_disabled_members", "dependent_members", "school_dropouts",
    "medical_out_of_pocket", "recent_medical_out_of_pocket", "medical_burden_ratio",
    "major_illness_claims", "disaster_loss", "working_age_deaths", "in_dibao", "in_tekun",
    "in_edge", "temporary_aid_active", "lifted_from_poverty", "monitored_for_relapse",
    "housing_unsafe", "financial_assets_months", "vehicles", "properties",
)


def model_features(facts: Facts, params: Parameters) -> pd.DataFrame:
    """The model's features for every household of ``facts``, indexed by household_id.

    Parameters
    ----------
    facts : Facts
        Facts as of a date (:func:`monitor.policy.facts.build_facts`).
    params : Parameters
        The parameters; the dibao standard and age bands in force on the facts'
        date for each household's region.

    Returns
    -------
    pandas.DataFrame
        One float64 column per name of :data:`FEATURE_NAMES`; a value unknown
        to the facts (no income assessment) is NaN.
    """
    columns = _Columns(facts, params.frame(facts.households["region_code"], facts.as_of,
                                           FEATURE_PARAMETERS))
    features = {**_income_and_health(columns), **_members_and_holdings(columns)}
    return pd.DataFrame({name: np.asarray(features[name], dtype="float64")
                         for name in FEATURE_NAMES}, index=facts.households.index)


class _Columns:
    """The facts as the features read them: household columns, members counted, flags."""

    def __init__(self, facts: Facts, in_force: pd.DataFrame) -> None:
        self.facts, self.in_force = facts, in_force
        self.standard = in_force["dibao_standard"].to_numpy(dtype="float64")
        self.living = facts.persons["is_living"].to_numpy(dtype=bool)

    def members(self, mask: np.ndarray) -> np.ndarray:
        """Living members for whom ``mask`` holds, per household."""
        return np.bincount(self.facts.person_household[self.living & mask],
                           minlength=len(self.facts.households)).astype("float64")

    def person_flag(self, name: str) -> np.ndarray:
        return self.facts.persons[name].to_numpy(dtype=bool)

    def household(self, name: str) -> np.ndarray:
        return pd.to_numeric(self.facts.households[name]).to_numpy(dtype="float64",
                                                                   na_value=np.nan)

    def flag(self, name: str) -> np.ndarray:
        return self.facts.households[name].fillna(False).to_numpy(dtype="float64")


def _income_and_health(columns: _Columns) -> dict[str, np.ndarray]:
    """Income against the standard, its age, medical costs, disasters, deaths."""
    household = columns.household
    assessed = columns.facts.households["income_assess_date"]
    annual_income = household("annual_income")
    medical = household("medical_out_of_pocket")
    with np.errstate(divide="ignore", invalid="ignore"):
        burden = np.where(annual_income > 0, medical / annual_income, np.nan)
    return {
        "per_capita_income_ratio": household("per_capita_income") / columns.standard,
        "income_assessment_age_months": ((pd.Timestamp(columns.facts.as_of) - assessed).dt.days
                                         / DAYS_PER_MONTH).to_numpy(dtype="float64",
                                                                    na_value=np.nan),
        "income_unknown": assessed.isna().to_numpy(dtype="float64"),
        "medical_out_of_pocket": medical,
        "recent_medical_out_of_pocket": household("recent_medical_out_of_pocket"),
        "medical_burden_ratio": burden,
        "major_illness_claims": household("major_illness_claims"),
        "disaster_loss": household("disaster_loss"),
        "working_age_deaths": household("working_age_deaths"),
    }


def _members_and_holdings(columns: _Columns) -> dict[str, np.ndarray]:
    """Who lives there, the programs they are in, their house and assets."""
    household, members, flag = columns.household, columns.members, columns.flag
    position = columns.facts.person_household
    age = columns.facts.persons["age"].to_numpy(dtype="float64")
    return {
        "living_members": household("living_members"),
        "single_person": (household("living_members") == 1).astype("float64"),
        "head_age": household("head_age"),
        "elderly_members": members(age >= columns.in_force["elder_age"].to_numpy()[position]),
        "minor_members": members(age < columns.in_force["adult_age"].to_numpy()[position]),
        "working_age_members": household("working_age_living"),
        "working_age_away": household("working_age_away"),
        "working_age_at_home": household("working_age_at_home"),
        "working_age_unemployed": household("working_age_unemployed"),
        "disabled_members": members(columns.person_flag("is_disabled")),
        "severely_disabled_members": members(columns.person_flag("is_severely_disabled")),
        "dependent_members": members(columns.person_flag("is_dependent")),
        "school_dropouts": members(columns.person_flag("is_school_dropout")),
        "in_dibao": flag("in_dibao"),
        "in_tekun": flag("in_tekun"),
        "in_edge": flag("in_edge"),
        "temporary_aid_active": members(columns.person_flag("person_in_temporary_aid")) > 0,
        "lifted_from_poverty": columns.facts.households["revitalization_status"].isin(
            LIFTED).fillna(False).to_numpy(dtype="float64"),
        "monitored_for_relapse": flag("is_monitored_for_relapse"),
        "housing_unsafe": flag("housing_unsafe"),
        "financial_assets_months": household("financial_assets_per_capita") / columns.standard,
        "vehicles": household("vehicles"),
        "properties": household("properties"),
    }


def audit_groups(facts: Facts, age_bands: list[int]) -> pd.DataFrame:
    """County, township, sex and age band of the head: the groups capacity and fairness use.

    Examples
    --------
    >>> pd.cut(pd.Series([39.0, 40.0, 75.0]), [0, 40, 60, 75, np.inf], right=False,
    ...        labels=_band_labels([0, 40, 60, 75])).astype(str).tolist()
    ['0-39', '40-59', '75+']
    """
    households = facts.households
    head_sex = households["head_sex"].astype("string")
    band = pd.cut(pd.Series(households["head_age"].to_numpy()), [*age_bands, np.inf],
                  right=False, labels=_band_labels(age_bands))
    # Categories: a few distinct values over millions of rows of training history.
    return pd.DataFrame({
        "county_code": households["county_code"].astype("string").to_numpy(),
        "township_code": households["township_code"].astype("string").to_numpy(),
        "head_sex": head_sex.fillna("未知").to_numpy(),
        "head_age_band": band.astype("string").fillna("未知").to_numpy(),
    }, index=households.index).astype("category")


def _band_labels(bounds: list[int]) -> list[str]:
    """``0-39``, ``40-59``, …, ``75+`` from lower bounds."""
    labels = [f"{low}-{high - 1}" for low, high in itertools.pairwise(bounds)]
    return [*labels, f"{bounds[-1]}+"]
