"""One county's evaluation: facts, rule hits and risk scores as of the run date.

Pure: takes the county's sources (as :func:`monitor.io.lake.read_as_of`
returns them), the parameters, the rules and the score definition. Counties
are independent, so a run evaluates them as separate tasks (on a cluster,
on separate workers) and combines the small results.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import pandas as pd

from monitor.model.features import model_features
from monitor.model.risk import RiskModel, to_score
from monitor.policy.facts import Facts, build_facts
from monitor.policy.params import Parameters
from monitor.policy.rules import Rule, evaluate
from monitor.policy.scoring import RulesOnlyScore
from monitor.triage.referrals import HOUSEHOLD_COLUMNS
from monitor.validation.idcard import mask_id_numbers

#: Columns of the hits a county evaluation returns (no full id number among them).
HIT_COLUMNS = ["household_id", "rule", "level", "county_code", "township_code", "reason",
               "evidence", "person_id_masked", "stale_sources"]


@dataclass
class CountyEvaluation:
    """What one county contributes to a run."""

    county: str
    #: One row per (household, rule) hit: :data:`HIT_COLUMNS`.
    hits: pd.DataFrame
    #: The households with hits, indexed by household_id: place, head, members, risk_score.
    households: pd.DataFrame
    households_evaluated: int = 0
    persons_evaluated: int = 0
    #: Seconds spent in each stage (facts, model, rules, score).
    timings: dict[str, float] = field(default_factory=dict)


def score_households(facts: Facts, params: Parameters, model: RiskModel) -> pd.DataFrame:
    """Every household's 风险评分 from the model, for the rules' scope (not written into the facts).

    Returns a frame indexed like ``facts.households``: ``risk_score`` (0–100),
    ``risk_factors`` (the reasons, which MODEL_RISK's 预警原因 quotes, worked
    out for the households at or above the ``model_threshold`` in force; the
    others' are missing) and ``probability`` (calibrated).
    """
    households = facts.households
    features = model_features(facts, params)
    probabilities = model.probabilities(features)
    scores = to_score(probabilities)
    threshold = params.lookup("model_threshold", households["region_code"], facts.as_of)
    # Only households the model would list need their reasons worked out.
    listed = scores >= threshold.to_numpy(dtype="float64")
    return pd.DataFrame({
        "risk_score": scores.astype("float64"),
        "risk_factors": model.reasons(features[listed]).reindex(households.index),
        "probability": probabilities,
    }, index=households.index)


def with_carried(hits: pd.DataFrame, carried: pd.DataFrame, households: pd.Index
                 ) -> pd.DataFrame:
    """Today's hits, and the carried warnings of households here that no rule hits today.

    ``carried`` (:func:`monitor.triage.lifecycle.carried_warnings`) keeps their
    earlier reason and evidence, and names the stale sources they rest on. A
    household no longer in the registry snapshot is not carried: the
    registry says it is gone (and while the registry itself is stale, its
    old snapshot still lists it).
    """
    present = households.get_indexer(carried["household_id"]) >= 0
    already = pd.MultiIndex.from_frame(hits[["household_id", "rule"]].astype("string"))
    wanted = pd.MultiIndex.from_frame(carried[["household_id", "rule"]])
    kept = carried[present & (already.get_indexer(wanted) < 0)]
    if kept.empty:
        return hits
    return pd.concat([hits, kept.reindex(columns=hits.columns)], ignore_index=True)


def evaluate_county(county: str, sources: dict[str, pd.DataFrame], as_of: dt.date,
                    params: Parameters, rules: list[Rule], scoring: RulesOnlyScore,
                    model: RiskModel | None = None, carried: pd.DataFrame | None = None
                    ) -> CountyEvaluation:
    """Facts, rule hits and scores for one county's households as of ``as_of``.

    With a ``model``, every household gets its 风险评分 from the model before
    the rules run (MODEL_RISK reads it), and a household at or above the
    ``model_threshold`` in force gets the reasons for its score
    (``risk_factors``, which MODEL_RISK's 预警原因 quotes). Without one, the
    listed households are scored by the rules alone. ``carried``: the
    county's warnings kept open while a source they rest on is stale
    (:func:`with_carried`).
    """
    timings = {}
    started = time.perf_counter()
    facts = build_facts(sources, as_of, params)
    timings["facts"] = time.perf_counter() - started

    started = time.perf_counter()
    scored = None if model is None else score_households(facts, params, model)
    timings["model"] = time.perf_counter() - started

    started = time.perf_counter()
    hits = evaluate(rules, facts, params, scored)
    timings["rules"] = time.perf_counter() - started

    started = time.perf_counter()
    hits = hits.assign(person_id_masked=mask_id_numbers(hits["person_id_number"]),
                       stale_sources=pd.Series(pd.NA, index=hits.index, dtype="string")
                       ).drop(columns="person_id_number")
    if carried is not None and len(carried):
        hits = with_carried(hits, carried, facts.households.index)
    hit_index = pd.Index(hits["household_id"].unique())
    if model is None:
        scores = scoring.scores(hits)
    else:
        scores = scored["risk_score"].reindex(hit_index).astype("int64")
    hit_households = facts.households.loc[scores.index, HOUSEHOLD_COLUMNS].copy()
    hit_households["risk_score"] = scores
    place = hit_households.loc[hits["household_id"], ["county_code", "township_code"]]
    hits = hits.assign(county_code=place["county_code"].to_numpy(),
                       township_code=place["township_code"].to_numpy())[HIT_COLUMNS]
    timings["score"] = time.perf_counter() - started
    return CountyEvaluation(county, hits, hit_households, len(facts.households),
                            len(facts.persons), timings)


def combine(evaluations: list[CountyEvaluation]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All counties' hits and hit households, in county order."""
    ordered = sorted(evaluations, key=lambda evaluation: evaluation.county)
    if not ordered:
        households = pd.DataFrame({name: pd.Series(dtype="string") for name in
                                   HOUSEHOLD_COLUMNS}).assign(living_members=0, risk_score=0)
        return (pd.DataFrame({name: pd.Series(dtype="string") for name in HIT_COLUMNS}),
                households.rename_axis("household_id"))
    households, hits = first_county_only(
        pd.concat([evaluation.households for evaluation in ordered]),
        pd.concat([evaluation.hits for evaluation in ordered], ignore_index=True))
    return hits, households


def first_county_only(households: pd.DataFrame, hits: pd.DataFrame
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counties' households and hits, concatenated in county order, each household once.

    A household registered across two counties is evaluated in each; its first
    county's evaluation is kept.
    """
    return (households[~households.index.duplicated(keep="first")],
            hits.drop_duplicates(["household_id", "rule"], keep="first", ignore_index=True))
