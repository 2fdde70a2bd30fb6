"""What a change of parameters would do, before it goes live (``monitor tune``).

Pure. On each as-of date the same sources are evaluated twice, exactly as the
nightly run evaluates them (facts, the model's 风险评分, the rules): under the
parameters in force (*current*) and under a *candidate* set. The two are
compared household by household, and with what history says happened:

- **precision**: of the flagged households whose warnings caseworkers have
  checked (feedback closed within the horizon before the date or since, up
  to the tune date), the share whose latest verdict was 属实; by rule, the
  same over the households the rule flags;
- **recall**: of the households (as of the date) a living member of which
  entered a program afterwards (the model's label, program entries only,
  :mod:`monitor.model.labels`, within the horizon and up to the tune date), the
  share flagged on the date.

Hits are counted as the rules raise them, before the warning lifecycle: a
warning settled by feedback and unchanged counts here, although the nightly
list would not show it again. Every table carries the ``as_of`` date, so a
backtest over several months is one frame per table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.contract.dates import add_months, months_before
from monitor.model.labels import LabelSettings, outcome_labels
from monitor.model.risk import MAXIMUM_SCORE, RiskModel
from monitor.policy.facts import FACT_PARAMETERS, Facts, build_facts, history_needed
from monitor.policy.params import Parameters
from monitor.policy.rules import LEVELS, RULE_CODES, Rule, evaluate, open_to_score, score_rule
from monitor.triage.evaluation import first_county_only, score_households
from monitor.triage.lifecycle import warning_ids
from monitor.triage.referrals import RULE_SEPARATOR, TEXT_SEPARATOR, join_in_groups

CURRENT, CANDIDATE = "current", "candidate"
SIDES = (CURRENT, CANDIDATE)
NEWLY_FLAGGED, DROPPED, RULES_CHANGED = "newly flagged", "dropped", "rules changed"
MODEL_RULE = "MODEL_RISK"
#: Every whole 风险评分 a model threshold can take.
THRESHOLDS = np.arange(MAXIMUM_SCORE + 1)


@dataclass(frozen=True)
class History:
    """What is known at the tune date about what happened after each as-of date."""

    #: Assistance spells known at the tune date: id_number, program, start_date.
    assistance: pd.DataFrame
    #: Feedback known at the tune date: warning_id, household_id, verified, closed_date.
    feedback: pd.DataFrame
    #: The tune date: no outcome after it is known.
    known_until: dt.date
    label: LabelSettings


@dataclass
class CountyComparison:
    """One county's households under both parameter sets, and what happened to them after."""

    county: str
    sides: dict[str, SideEvaluation]
    #: Indexed like the households: ``entered_program`` (the recall's outcome) and
    #: ``label`` (the model's outcome); None when nothing is known after the date yet.
    outcomes: pd.DataFrame | None


@dataclass
class SideEvaluation:
    """One parameter set's evaluation of one as-of date."""

    #: Every household, indexed by household_id: county_code, township_code,
    #: living_members, open_to_model (MODEL_RISK could list it on a high enough score,
    #: :func:`monitor.policy.rules.open_to_score`), probability (NaN without a model),
    #: risk_score, level
    #: (highest among its hits, missing without one), rules (codes joined by ";"),
    #: reasons (【rule name】reason, joined), flagged.
    households: pd.DataFrame
    #: One row per (household, rule) hit: household_id, rule, level, reason.
    hits: pd.DataFrame


def months_back(last: dt.date, first: dt.date) -> list[dt.date]:
    """Monthly as-of dates from the month of ``first`` to ``last`` (oldest first).

    Each is ``last``'s day of the month (month-ends when ``last`` is one), so
    that every month of the range is in, ``first``'s own included.

    Examples
    --------
    >>> [d.isoformat() for d in months_back(dt.date(2026, 6, 30), dt.date(2026, 1, 31))]
    ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31', '2026-06-30']
    >>> [d.isoformat() for d in months_back(dt.date(2026, 6, 15), dt.date(2026, 4, 20))]
    ['2026-04-15', '2026-05-15', '2026-06-15']
    """
    end = pd.Timestamp(last)
    start = pd.Timestamp(first).to_period("M")
    months = (end.to_period("M") - start).n
    if end.is_month_end:
        return [(start + step).to_timestamp(how="end").date() for step in range(months + 1)]
    return [months_before(last, months - step) for step in range(months + 1)]


def history_needed_by_all(parameters: dict[str, Parameters], as_of: dt.date
                          ) -> dict[str, tuple[str, dt.date]]:
    """How far back to read each windowed source for every parameter set (the longest window)."""
    needs = [history_needed(params, as_of) for params in parameters.values()]
    return {source: (needs[0][source][0], min(need[source][1] for need in needs))
            for source in needs[0]}


def evaluate_side(facts: Facts, params: Parameters, rules: list[Rule],
                  model: RiskModel | None) -> SideEvaluation:
    """Score and rule-check every household of ``facts`` under ``params``."""
    households = facts.households
    scored = None if model is None else score_households(facts, params, model)
    probability = (np.full(len(households), np.nan) if scored is None
                   else scored["probability"].to_numpy())
    hits = evaluate(rules, facts, params, scored)
    group = households.index.get_indexer(hits["household_id"])
    count = len(households)
    flagged = np.bincount(group, minlength=count) > 0
    level_rank = hits["level"].map({level: rank for rank, level in enumerate(LEVELS)})
    highest = np.full(count, len(LEVELS))
    np.minimum.at(highest, group, level_rank.to_numpy(dtype="int64"))
    name_of = {rule.code: rule.name for rule in rules}
    every = np.ones(len(hits), dtype=bool)
    # Hits come sorted by household, in the facts' order: joined per household in one pass.
    codes = join_in_groups(hits["rule"], every, group, count, RULE_SEPARATOR)
    said = join_in_groups("【" + hits["rule"].map(name_of) + "】" + hits["reason"], every, group,
                          count, TEXT_SEPARATOR)
    # Who MODEL_RISK could still list, by its own condition: the others' hits counted.
    rule = score_rule(rules)
    others = np.bincount(group[(hits["rule"] != rule.code).to_numpy(dtype=bool)], minlength=count)
    frame = pd.DataFrame({
        "county_code": households["county_code"].to_numpy(),
        "township_code": households["township_code"].to_numpy(),
        "living_members": households["living_members"].to_numpy(dtype="int64"),
        "open_to_model": open_to_score(rule, facts, params, others),
        "probability": probability,
        # A whole number, missing without a model.
        "risk_score": pd.array(scored["risk_score"].to_numpy(dtype="float64")
                               if scored is not None else np.full(count, np.nan)).astype("Int64"),
        "level": pd.array(np.append(np.asarray(LEVELS, dtype=object), None)[highest],
                          dtype="string"),
        "rules": pd.array(codes, dtype="string"),
        "reasons": pd.array(said, dtype="string"),
        "flagged": flagged,
    }, index=households.index)
    # A household with no hit has no rules and no reasons (not empty text).
    for column in ("rules", "reasons"):
        frame[column] = frame[column].where(flagged)
    return SideEvaluation(frame, hits[["household_id", "rule", "level", "reason"]])


def _side_by_side(current: pd.Series, candidate: pd.Series, key: str) -> pd.DataFrame:
    """Two counts aligned on their keys, with the difference (missing keys count 0)."""
    frame = pd.concat({CURRENT: current, CANDIDATE: candidate}, axis=1).fillna(0).astype("int64")
    frame = frame.rename_axis(key).reset_index()
    return frame.assign(difference=frame[CANDIDATE] - frame[CURRENT])


def _counts(sides: dict[str, SideEvaluation], column: str, of: str) -> dict[str, pd.Series]:
    """Flagged households (``of="households"``) or hits per value of ``column``."""
    if of == "hits":
        return {side: evaluation.hits[column].value_counts() for side, evaluation in sides.items()}
    return {side: evaluation.households.loc[evaluation.households["flagged"], column]
            .value_counts() for side, evaluation in sides.items()}


def flagged_tables(sides: dict[str, SideEvaluation], rules: list[Rule], capacity: int
                   ) -> dict[str, pd.DataFrame]:
    """Households flagged by rule, level, county and township, under each parameter set.

    A household counts once per rule it triggers, once at its highest level,
    and once in its county and township. ``capacity`` is the households a
    township's caseworkers can verify; townships listing more are marked.
    """
    county_names, township_names = regions.county_names(), regions.township_names()

    by_rule = _side_by_side(*_counts(sides, "rule", "hits").values(), "rule")
    rule_of = {rule.code: rule for rule in rules}
    by_rule = (by_rule.set_index("rule").reindex([code for code in RULE_CODES if code in rule_of])
               .fillna(0).astype("int64").reset_index())
    by_rule.insert(1, "name", by_rule["rule"].map({code: rule.name for code, rule in
                                                    rule_of.items()}))
    by_rule.insert(2, "level", by_rule["rule"].map({code: rule.level for code, rule in
                                                     rule_of.items()}))

    by_level = _side_by_side(*_counts(sides, "level", "households").values(), "level")
    by_level = (by_level.set_index("level").reindex(list(LEVELS)).fillna(0).astype("int64")
                .reset_index())

    by_county = _side_by_side(*_counts(sides, "county_code", "households").values(),
                              "county_code").sort_values("county_code", ignore_index=True)
    by_county.insert(1, "county_name", by_county["county_code"].map(county_names))

    by_township = _side_by_side(*_counts(sides, "township_code", "households").values(),
                                "township_code").sort_values("township_code", ignore_index=True)
    by_township.insert(0, "county_code", regions.county_of(by_township["township_code"]))
    by_township.insert(1, "county_name", by_township["county_code"].map(county_names))
    by_township.insert(3, "township_name", by_township["township_code"].map(township_names))
    by_township = by_township.assign(
        capacity=capacity,
        current_over_capacity=by_township[CURRENT] > capacity,
        candidate_over_capacity=by_township[CANDIDATE] > capacity)
    return {"flagged_by_rule": by_rule, "flagged_by_level": by_level,
            "flagged_by_county": by_county, "flagged_by_township": by_township}


def changes(sides: dict[str, SideEvaluation]) -> pd.DataFrame:
    """The households whose listing would change: newly flagged, dropped, or other rules.

    Each with its rules, level, 风险评分 and reasons under both parameter sets
    (the reasons of a dropped household are those it is listed for now).
    """
    current, candidate = sides[CURRENT].households, sides[CANDIDATE].households
    was, will = current["flagged"].to_numpy(), candidate["flagged"].to_numpy()
    other_rules = (current["rules"].fillna("") != candidate["rules"].fillna("")).to_numpy()
    change = np.select([will & ~was, was & ~will, was & will & other_rules],
                       [NEWLY_FLAGGED, DROPPED, RULES_CHANGED], "")
    changed = change != ""
    columns = ["rules", "level", "risk_score", "reasons"]
    frame = pd.concat([current.loc[changed, ["county_code", "township_code"]],
                       current.loc[changed, columns].add_suffix(f"_{CURRENT}"),
                       candidate.loc[changed, columns].add_suffix(f"_{CANDIDATE}")], axis=1)
    frame.insert(2, "township_name", frame["township_code"].map(regions.township_names()))
    frame.insert(0, "change", change[changed])
    order = {NEWLY_FLAGGED: 0, DROPPED: 1, RULES_CHANGED: 2}
    frame = frame.rename_axis("household_id").reset_index()
    return frame.sort_values(["change", "township_code", "household_id"],
                             key=lambda values: values.map(order) if values.name == "change"
                             else values, ignore_index=True)


def verdicts(feedback: pd.DataFrame, key: str, start: dt.date, end: dt.date) -> pd.Series:
    """The latest feedback verdict (属实, 不属实) closed in ``(start, end]``, by ``key``.

    ``key`` is ``household_id`` (any warning of the household) or
    ``warning_id`` (one warning: one household and rule).
    """
    closed = feedback["closed_date"]
    known = feedback[((closed > pd.Timestamp(start)) & (closed <= pd.Timestamp(end))
                      & feedback["verified"].notna() & feedback[key].notna())
                     .fillna(False).to_numpy(dtype=bool)]
    return (known.sort_values("closed_date", kind="stable")
            .drop_duplicates(key, keep="last").set_index(key)["verified"].astype("string"))


def horizon_end(as_of: dt.date, history: History) -> tuple[dt.date, bool]:
    """An as-of date's outcome window end (the horizon cut at the tune date), and if whole."""
    whole = add_months(as_of, history.label.horizon_months)
    return min(whole, history.known_until), history.known_until >= whole


def history_tables(as_of: dt.date, sides: dict[str, SideEvaluation],
                   outcomes: pd.DataFrame | None, history: History
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision and recall of each parameter set against history, overall and by rule.

    Precision counts households: a flagged household is *reviewed* when a
    warning of it was checked (feedback closed from one horizon before the
    date up to the tune date), and *verified* when the latest verdict was
    属实. By rule, a hit takes the verdict on its own warning when feedback
    names it, else its household's. Recall counts the households whose member
    entered a program within the horizon (cut at the tune date:
    ``window_complete`` says whether the whole horizon is known); it is missing
    when nothing is known after the date yet.
    """
    end, complete = horizon_end(as_of, history)
    since = months_before(as_of, history.label.horizon_months)
    by_household = verdicts(history.feedback, "household_id", since, history.known_until)
    by_warning = verdicts(history.feedback, "warning_id", since, history.known_until)
    verified_value = history.label.verified_value
    overall, by_rule = [], []
    for side, evaluation in sides.items():
        households, hits = evaluation.households, evaluation.hits
        flagged = households["flagged"].to_numpy()
        verdict = pd.Series(households.index[flagged]).map(by_household)
        reviewed = int(verdict.notna().sum())
        verified = int(verdict.eq(verified_value).sum())
        entered = (outcomes["entered_program"].reindex(households.index).to_numpy(dtype=bool)
                   if outcomes is not None else None)
        positives = int(entered.sum()) if entered is not None else None
        found = int((entered & flagged).sum()) if entered is not None else None
        overall.append({
            "side": side, "window_end": pd.Timestamp(end), "window_complete": complete,
            "hits": len(hits), "households_flagged": int(flagged.sum()),
            "reviewed": reviewed, "reviewed_share": reviewed / flagged.sum() if flagged.any()
            else np.nan, "verified": verified,
            "precision": verified / reviewed if reviewed else np.nan,
            "later_entries": positives, "later_entries_flagged": found,
            "recall": found / positives if positives else np.nan})
        own = warning_ids(hits["household_id"], hits["rule"]).map(by_warning)
        hit_verdict = own.fillna(hits["household_id"].reset_index(drop=True).map(by_household))
        hit_rows = households.index.get_indexer(hits["household_id"])
        per_rule = pd.DataFrame({
            "rule": hits["rule"].to_numpy(), "reviewed": hit_verdict.notna().to_numpy(),
            "verified": hit_verdict.eq(verified_value).fillna(False).to_numpy(dtype=bool),
            "later_entry": entered[hit_rows] if entered is not None else False})
        table = per_rule.groupby("rule", sort=False).agg(
            hits=("reviewed", "size"), reviewed=("reviewed", "sum"),
            verified=("verified", "sum"), later_entries_flagged=("later_entry", "sum"))
        table["later_entries_flagged"] = (table["later_entries_flagged"].astype("Int64")
                                          if entered is not None else pd.NA)
        by_rule.append(table.assign(side=side).reset_index())
    by_rule = pd.concat(by_rule, ignore_index=True)
    by_rule["precision"] = by_rule["verified"] / by_rule["reviewed"].where(by_rule["reviewed"] > 0)
    by_rule["later_entries_flagged"] = by_rule["later_entries_flagged"].astype("Int64")
    order = {code: number for number, code in enumerate(RULE_CODES)}
    by_rule = by_rule.sort_values(["rule", "side"], key=lambda values: values.map(order)
                                  if values.name == "rule" else values, ignore_index=True)
    return (pd.DataFrame(overall).astype({"later_entries": "Int64",
                                          "later_entries_flagged": "Int64"}),
            by_rule[["rule", "side", "hits", "reviewed", "verified", "precision",
                     "later_entries_flagged"]])


def threshold_curve(evaluation: SideEvaluation, label: np.ndarray | None) -> pd.DataFrame:
    """What each model threshold would list, given the other rules' hits.

    For each threshold 0–100: households referred (those with another rule's
    hit, plus those with a living member scoring at or above it, as MODEL_RISK
    lists them), the expected true positives among them (the sum of their
    calibrated probabilities: positives of the model's own outcome, a program
    entered or a warning verified 属实 within the horizon), expected recall
    (that over the expected positives of everyone), and, when later outcomes
    are known, the observed ones (``label``, the same outcome, aligned with
    the households). Empty when no model scored the date.
    """
    households = evaluation.households
    if households["probability"].isna().all():
        return pd.DataFrame({"threshold": pd.Series(dtype="int64"),
                             "referred": pd.Series(dtype="int64"),
                             "model_only": pd.Series(dtype="int64"),
                             **{name: pd.Series(dtype="float64") for name in (
                                 "expected_true_positives", "expected_recall",
                                 "observed_true_positives", "observed_recall")}})
    hits = evaluation.hits
    other = np.zeros(len(households), dtype=bool)
    other[households.index.get_indexer(hits.loc[hits["rule"] != MODEL_RULE,
                                                 "household_id"])] = True
    probability = households["probability"].to_numpy(dtype="float64")
    score = households["risk_score"].to_numpy(dtype="int64", na_value=0)
    open_to_model = households["open_to_model"].to_numpy(dtype=bool)

    def at_or_above(weights: np.ndarray | None) -> np.ndarray:
        """Per threshold, the sum of ``weights`` over model-only households scoring that or more."""
        binned = np.bincount(score[open_to_model], minlength=len(THRESHOLDS),
                             weights=None if weights is None else weights[open_to_model])
        return binned[::-1].cumsum()[::-1][:len(THRESHOLDS)]

    model_only = at_or_above(None).astype("int64")
    expected = at_or_above(probability) + probability[other].sum()
    curve = pd.DataFrame({"threshold": THRESHOLDS, "referred": model_only + int(other.sum()),
                          "model_only": model_only, "expected_true_positives": expected,
                          "expected_recall": expected / probability.sum()})
    if label is None:
        return curve.assign(observed_true_positives=np.nan, observed_recall=np.nan)
    observed = at_or_above(label.astype("float64")) + label[other].sum()
    return curve.assign(observed_true_positives=observed,
                        observed_recall=observed / label.sum() if label.any() else np.nan)


def changed_parameters(current: Parameters, candidate: Parameters, as_of: dt.date
                       ) -> pd.DataFrame:
    """Each parameter whose value in force differs somewhere: both values and how many townships.

    Examples
    --------
    >>> from monitor.policy.params import parse_parameter_file
    >>> shipped = Parameters(parse_parameter_file({"edge_ratio": [
    ...     {"from": dt.date(2021, 1, 1), "value": 1.5}]}, "shipped"))
    >>> candidate = shipped.with_override({"edge_ratio": [
    ...     {"from": dt.date(2021, 1, 1), "value": 1.5},
    ...     {"region": "500101", "from": dt.date(2021, 1, 1), "value": 1.6}]}, "candidate")
    >>> changed_parameters(shipped, candidate, dt.date(2026, 6, 30)).to_dict("records")
    [{'parameter': 'edge_ratio', 'current': 1.5, 'candidate': 1.6, 'townships': 52}]
    """
    places = regions.township_regions()
    before = current.frame(places, as_of)
    after = candidate.frame(places, as_of, list(before.columns))
    rows = []
    for name in before.columns:
        differs = before[name].to_numpy() != after[name].to_numpy()
        if differs.any():
            pairs = pd.DataFrame({"current": before[name][differs],
                                  "candidate": after[name][differs]})
            counted = pairs.value_counts().rename("townships").reset_index()
            rows.append(counted.assign(parameter=name))
    columns = ["parameter", "current", "candidate", "townships"]
    if not rows:
        return pd.DataFrame({"parameter": pd.Series(dtype="string"),
                             "current": pd.Series(dtype="float64"),
                             "candidate": pd.Series(dtype="float64"),
                             "townships": pd.Series(dtype="int64")})
    return pd.concat(rows, ignore_index=True)[columns]


def evaluate_county_sides(county: str, sources: dict[str, pd.DataFrame], as_of: dt.date,
                          parameters: dict[str, Parameters], rules: list[Rule],
                          model: RiskModel | None, history: History) -> CountyComparison:
    """One county's households under each parameter set, as the nightly run evaluates a county.

    ``parameters`` maps :data:`CURRENT` and :data:`CANDIDATE` to their
    parameter sets; ``sources`` are the county's sources as of ``as_of`` (for
    a backtest, as delivered by then); ``model`` is the one the nightly run
    of that date would use, or None.
    """
    sides, outcomes = {}, None
    end, _ = horizon_end(as_of, history)
    built = build_facts(sources, as_of, parameters[CURRENT])
    regions = built.households["region_code"]
    # Facts read parameters only through FACT_PARAMETERS (windows, age limits): when the
    # candidate leaves those alone, its facts are the current side's.
    same_facts = parameters[CANDIDATE].frame(regions, as_of, FACT_PARAMETERS).equals(
        parameters[CURRENT].frame(regions, as_of, FACT_PARAMETERS))
    for side in SIDES:
        if side == CURRENT or same_facts:
            # Each side adds its own scores to the households: a copy each.
            facts = replace(built, households=built.households.copy())
        else:
            facts = build_facts(sources, as_of, parameters[side])
        sides[side] = evaluate_side(facts, parameters[side], rules, model)
        if side == CURRENT and end > as_of:
            labels = outcome_labels(facts, history.assistance, history.feedback, end,
                                    history.label)
            outcomes = labels[["entered_program", "label"]]
    return CountyComparison(county, sides, outcomes)


def combine_counties(counties: list[CountyComparison]
                     ) -> tuple[dict[str, SideEvaluation], pd.DataFrame | None]:
    """Every county's households and hits in county order, as the nightly run combines them.

    A household registered across two counties is evaluated in each; as in
    :func:`monitor.triage.evaluation.combine`, the first county's evaluation is kept.
    """
    ordered = sorted(counties, key=lambda comparison: comparison.county)
    sides = {}
    for side in SIDES:
        households, hits = first_county_only(
            pd.concat([county.sides[side].households for county in ordered]),
            pd.concat([county.sides[side].hits for county in ordered], ignore_index=True))
        sides[side] = SideEvaluation(households, hits)
    known = [county.outcomes for county in ordered if county.outcomes is not None]
    outcomes = None
    if known and len(known) == len(ordered):
        outcomes = pd.concat(known)
        outcomes = outcomes[~outcomes.index.duplicated(keep="first")]
    return sides, outcomes


def compare_date(counties: list[CountyComparison], as_of: dt.date, rules: list[Rule],
                 history: History, capacity: int, model_version: str | None
                 ) -> dict[str, pd.DataFrame]:
    """Every comparison table of one as-of date (each with an ``as_of`` column).

    ``counties`` are :func:`evaluate_county_sides` of every county on the
    date; ``capacity`` the households a township's caseworkers can verify.
    """
    sides, outcomes = combine_counties(counties)
    tables = flagged_tables(sides, rules, capacity)
    tables["changes"] = changes(sides)
    overall, by_rule = history_tables(as_of, sides, outcomes, history)
    tables["history"] = overall
    tables["history_by_rule"] = by_rule
    tables["threshold_curve"] = pd.concat(
        [threshold_curve(sides[side], None if outcomes is None else outcomes["label"].reindex(
            sides[side].households.index).to_numpy(dtype=bool)).assign(side=side)
         for side in SIDES], ignore_index=True)
    tables["summary"] = pd.DataFrame([{
        "side": side, "households_evaluated": len(evaluation.households),
        "households_flagged": int(evaluation.households["flagged"].sum()),
        "hits": len(evaluation.hits),
        "townships_over_capacity": int(tables["flagged_by_township"][f"{side}_over_capacity"]
                                       .sum()),
        "model_version": model_version,
    } for side, evaluation in sides.items()])
    stamp = pd.Timestamp(as_of)
    return {name: table.assign(as_of=stamp)[["as_of", *table.columns]]
            for name, table in tables.items()}


def combine_dates(per_date: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Each table over every as-of date, oldest first."""
    names = list(per_date[0])
    return {name: pd.concat([tables[name] for tables in per_date], ignore_index=True)
            for name in names}
