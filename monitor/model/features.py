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
    households = facts.households
    persons = facts.persons
    position = facts.person_household
    count = len(households)
    in_force = params.frame(households["region_code"], facts.as_of, FEATURE_PARAMETERS)
    standard = in_force["dibao_standard"].to_numpy(dtype="float64")

    living = persons["is_living"].to_numpy(dtype=bool)
    age = persons["age"].to_numpy(dtype="float64")

    def members(mask: np.ndarray) -> np.ndarray:
        return np.bincount(position[living & mask], minlength=count).astype("float64")

    def household(name: str) -> np.ndarray:
        return pd.to_numeric(households[name]).to_numpy(dtype="float64", na_value=np.nan)

    def flag(name: str) -> np.ndarray:
        return households[name].fillna(False).to_numpy(dtype="float64")

    as_of = pd.Timestamp(facts.as_of)
    assessed = households["income_assess_date"]
    annual_income = household("annual_income")
    medical = household("medical_out_of_pocket")
    with np.errstate(divide="ignore", invalid="ignore"):
        burden = np.where(annual_income > 0, medical / annual_income, np.nan)
    features = {
        "per_capita_income_ratio": household("per_capita_income") / standard,
        "income_assessment_age_months": ((as_of - assessed).dt.days / DAYS_PER_MONTH
                                         ).to_numpy(dtype="float64", na_value=np.nan),
        "income_unknown": assessed.isna().to_numpy(dtype="float64"),
        "living_members": household("living_members"),
        "single_person": (household("living_members") == 1).astype("float64"),
        "head_age": household("head_age"),
        "elderly_members": members(age >= in_force["elder_age"].to_numpy()[position]),
        "minor_members": members(age < in_force["adult_age"].to_numpy()[position]),
        "working_age_members": household("working_age_living"),
        "working_age_away": household("working_age_away"),
        "working_age_at_home": household("working_age_at_home"),
        "working_age_unemployed": household("working_age_unemployed"),
        "disabled_members": members(persons["is_disabled"].to_numpy(dtype=bool)),
        "severely_disabled_members": members(persons["is_severely_disabled"].to_numpy(
            dtype=bool)),
        "dependent_members": members(persons["is_dependent"].to_numpy(dtype=bool)),
        "school_dropouts": members(persons["is_school_dropout"].to_numpy(dtype=bool)),
        "medical_out_of_pocket": medical,
        "recent_medical_out_of_pocket": household("recent_medical_out_of_pocket"),
        "medical_burden_ratio": burden,
        "major_illness_claims": household("major_illness_claims"),
        "disaster_loss": household("disaster_loss"),
        "working_age_deaths": household("working_age_deaths"),
        "in_dibao": flag("in_dibao"),
        "in_tekun": flag("in_tekun"),
        "in_edge": flag("in_edge"),
        "temporary_aid_active": members(persons["person_in_temporary_aid"].to_numpy(
            dtype=bool)) > 0,
        "lifted_from_poverty": households["revitalization_status"].isin(LIFTED).fillna(
            False).to_numpy(dtype="float64"),
        "monitored_for_relapse": flag("is_monitored_for_relapse"),
        "housing_unsafe": flag("housing_unsafe"),
        "financial_assets_months": household("financial_assets_per_capita") / standard,
        "vehicles": household("vehicles"),
        "properties": household("properties"),
    }
    frame = pd.DataFrame({name: np.asarray(features[name], dtype="float64")
                          for name in FEATURE_NAMES}, index=households.index)
    return frame


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
