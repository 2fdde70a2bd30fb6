"""The household file (一户一档): one household's whole story as of a date.

Pure: takes what the lake and the runs hold of one household (its rows of
every source, read by :func:`monitor.io.household.read_household`), the
parameters, rules and model, and puts together what a caseworker asks on the
phone: who lives there, what they receive, what each department says of
them, which rules fire today and why, the 风险评分 and what raised it, and
every warning the runs have raised, with its episodes and the township's
answers. The facts, hits and score are worked out by the same functions as
the nightly run's, so the file and the night's list cannot disagree.

No full id number or phone number is carried: members are shown by masked
id (:func:`monitor.validation.idcard.mask_id_numbers`), and the phone is never read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.model.features import model_features
from monitor.model.risk import REASON_SEPARATOR, RiskModel
from monitor.policy.facts import Facts, build_facts
from monitor.policy.params import Parameters
from monitor.policy.rules import Rule, evaluate
from monitor.policy.scoring import RulesOnlyScore
from monitor.triage.evaluation import score_households
from monitor.triage.lifecycle import FEEDBACK_EVENT, OPENED, VISITED_EVENT
from monitor.validation.idcard import mask_id_numbers

#: The events of a warning that end its episode.
_ENDING = ("closed", FEEDBACK_EVENT)
_FEEDBACK_BY = "feedback "


@dataclass
class HouseholdFile:
    """One household as of a date: a summary and one table per kind of fact.

    Every table has English column names (the JSON form's keys); the text and
    HTML forms (:mod:`monitor.reports.household_views`) show them in Chinese.
    """

    household_id: str
    as_of: dt.date
    #: Place, head, members, income against the standard, 风险评分 and its source.
    summary: dict
    #: The score's top factors, each a phrase with the points it added (a model only).
    risk_factors: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _names_by_id(registry: pd.DataFrame) -> pd.Series:
    return pd.Series(registry["name"].astype("string").to_numpy(),
                     index=registry["id_number"].astype("string").to_numpy())


def _with_name(frame: pd.DataFrame, names: pd.Series, columns: list[str]) -> pd.DataFrame:
    """The rows with each person's name in front of ``columns``, in date order if dated."""
    shown = frame.assign(name=names.reindex(frame["id_number"].astype("string")).to_numpy())
    return shown[["name", *columns]].reset_index(drop=True)


def _members(facts_persons: pd.DataFrame) -> pd.DataFrame:
    persons = facts_persons
    return pd.DataFrame({
        "name": persons["name"], "relation": persons["relation"], "sex": persons["sex"],
        "age": persons["age"].astype("Int64"), "status": persons["status"],
        "status_date": persons["status_date"],
        "id_number_masked": mask_id_numbers(persons["id_number"]).to_numpy(),
        "disability": (persons["disability_type"] + persons["disability_level"].astype(
            "Int64").astype("string") + "级").to_numpy(),
        "employment": persons["latest_employment_event"],
        "schooling": persons["school_status"],
    }).reset_index(drop=True)


def _programs(assistance: pd.DataFrame, names: pd.Series, as_of: dt.date) -> pd.DataFrame:
    day = pd.Timestamp(as_of)
    shown = _with_name(assistance.sort_values("start_date", kind="stable"), names,
                       ["program", "start_date", "end_date", "monthly_amount"])
    shown["active"] = ((shown["start_date"] <= day)
                       & (shown["end_date"].isna() | (shown["end_date"] >= day))).to_numpy(
                           dtype=bool)
    return shown


def _income(history: pd.DataFrame) -> pd.DataFrame:
    """Each assessment once (the latest delivery's row for each date), oldest first."""
    rows = history.sort_values(["assess_date", "_delivery_date"], kind="stable")
    rows = rows.drop_duplicates("assess_date", keep="last")
    return pd.DataFrame({
        "assess_date": rows["assess_date"], "annual_income": rows["annual_income"],
        "employment_cost": rows["employment_cost"],
        "delivery_date": rows["_delivery_date"]}).reset_index(drop=True)


def _medical(claims: pd.DataFrame, as_of: dt.date, window_days: int) -> pd.DataFrame:
    """Claims settled in the window, totalled by category (病种类别; 未分类 when empty)."""
    day = pd.Timestamp(as_of)
    recent = claims[(claims["settle_date"] > day - pd.Timedelta(days=window_days))
                    & (claims["settle_date"] <= day)]
    category = recent["category"].astype("string").fillna("未分类")
    totals = pd.DataFrame({
        "category": category.to_numpy(),
        "claims": 1,
        "inpatient": recent["inpatient"].fillna(False).astype(bool).to_numpy(),
        "total_cost": recent["total_cost"].to_numpy(dtype="float64"),
        "out_of_pocket": recent["out_of_pocket"].to_numpy(dtype="float64"),
    }).groupby("category", sort=True).sum()
    return totals.astype({"claims": "int64", "inpatient": "int64"}).reset_index()


def _assets(assets: pd.DataFrame) -> pd.DataFrame:
    """Asset types and counts (and the value on record); never the asset's own number."""
    return assets.groupby("asset_type", sort=True).agg(
        count=("asset_type", "size"), value=("value", "sum")).reset_index()


def _episodes(events: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Each warning's episodes: opened, how and when it ended, the answer and 经办人."""
    events = events.sort_values(["warning_id", "run_date", "date"], kind="stable")
    number = (events["event"] == OPENED).groupby(events["warning_id"]).cumsum()
    events = events.assign(episode=number.to_numpy())
    opened = events[events["event"] == OPENED].set_index(["warning_id", "episode"])
    ended = events[events["event"].isin(_ENDING)].drop_duplicates(
        ["warning_id", "episode"], keep="last").set_index(["warning_id", "episode"])
    episodes = pd.DataFrame({"rule": opened["rule"], "opened": opened["date"]})
    episodes["closed"] = ended["date"].reindex(episodes.index)
    episodes["closed_by"] = ended["by"].reindex(episodes.index).str.split(" ").str[0]
    episodes["verified"] = ended["verified"].reindex(episodes.index)
    episodes["action"] = ended["action"].reindex(episodes.index)
    answer = ended["by"].reindex(episodes.index).str.removeprefix(_FEEDBACK_BY)
    episodes["caseworker"] = feedback["caseworker"].reindex(answer.to_numpy()).to_numpy()
    return episodes.reset_index()


def _answers(feedback: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
    """The township's answers (处置反馈) about the household, by the warning each quotes."""
    rules = pd.Series(state["rule"].to_numpy(), index=state["warning_id"].to_numpy())
    rows = feedback.reset_index()
    return pd.DataFrame({
        "warning_id": rows["warning_id"],
        "rule": rules.reindex(rows["warning_id"]).to_numpy(),
        "verified": rows["verified"], "action": rows["action"],
        "closed_date": rows["closed_date"], "caseworker": rows["caseworker"],
        "delivery_date": rows["_delivery_date"]}).sort_values(
            ["closed_date", "warning_id"], kind="stable").reset_index(drop=True)


def _visits(events: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Visits recorded on the household's roster warnings (定期探访), oldest first."""
    visited = events[events["event"] == VISITED_EVENT].sort_values("date", kind="stable")
    answer = visited["by"].str.removeprefix(_FEEDBACK_BY)
    return pd.DataFrame({
        "warning_id": visited["warning_id"], "rule": visited["rule"], "date": visited["date"],
        "verified": visited["verified"], "action": visited["action"],
        "caseworker": feedback["caseworker"].reindex(answer.to_numpy()).to_numpy()},
    ).reset_index(drop=True)


def _risk(hits: pd.DataFrame, scored: pd.DataFrame | None, features: pd.DataFrame | None,
          model: RiskModel | None, scoring: RulesOnlyScore) -> tuple[int, str, list[str]]:
    """The 风险评分, what it is, and its top factors (a model's reasons; none by rules alone)."""
    if model is not None:
        reasons = model.reasons(features).iloc[0]
        return (int(scored["risk_score"].iloc[0]), f"模型 {model.version}",
                str(reasons).split(REASON_SEPARATOR))
    scores = scoring.scores(hits)
    return (int(scores.iloc[0]) if len(scores) else 0, "规则计分（未训练模型）", [])


def _summary(household_id: str, as_of: dt.date, run_date: dt.date | None, house: pd.Series,
             members: int, params: Parameters, risk: tuple[int, str, list[str]]) -> dict:
    """Place, people, income against the standards in force, and the score (no NaN: None)."""
    region = str(house["region_code"])
    dibao = params.value("dibao_standard", as_of, region)
    summary = {
        "household_id": household_id, "as_of": as_of.isoformat(),
        "run_date": None if run_date is None else run_date.isoformat(),
        "county_code": str(house["county_code"]),
        "county_name": regions.county_names().get(str(house["county_code"])),
        "township_code": str(house["township_code"]),
        "township_name": regions.township_names().get(str(house["township_code"])),
        "region_code": region, "head_name": house["head_name"],
        "members": members, "living_members": int(house["living_members"]),
        "revitalization_status": house["revitalization_status"],
        "per_capita_income": house["per_capita_income"],
        "income_assess_date": house["income_assess_date"],
        "dibao_standard": dibao,
        "edge_standard": dibao * params.value("edge_ratio", as_of, region),
        "risk_score": risk[0], "risk_source": risk[1],
    }
    return {key: (None if value is pd.NA or value is pd.NaT
                  or (isinstance(value, float) and np.isnan(value)) else value)
            for key, value in summary.items()}


def _department_tables(sources: dict[str, pd.DataFrame], income_history: pd.DataFrame,
                       facts: Facts, as_of: dt.date, params: Parameters) -> dict[str, pd.DataFrame]:
    """What each department says of the household: members, programs, claims, and so on."""
    names = _names_by_id(sources["registry"])
    region = str(facts.households.iloc[0]["region_code"])
    window = int(params.value("medical_window_days", as_of, region))
    return {
        "members": _members(facts.persons),
        "programs": _programs(sources["assistance"], names, as_of),
        "income": _income(income_history),
        "medical": _medical(sources["medical"], as_of, window),
        "disability": _with_name(sources["disability"], names,
                                 ["disability_type", "disability_level", "self_care",
                                  "issue_date"]),
        "employment": _with_name(sources["employment"].sort_values("event_date", kind="stable"),
                                 names, ["event_date", "event_type"]),
        "schooling": _with_name(sources["education"].sort_values("event_date", kind="stable"),
                                names, ["event_date", "status"]),
        "housing": sources["housing"][["assess_date", "rating"]].rename(
            columns={"assess_date": "rated_on"}).reset_index(drop=True),
        "disasters": sources["disaster"].sort_values("event_date", kind="stable")[
            ["event_date", "disaster_type", "loss_amount"]].reset_index(drop=True),
        "assets": _assets(sources["assets"]),
    }


def _warning_tables(hits: pd.DataFrame, state: pd.DataFrame, events: pd.DataFrame,
                    answers: pd.DataFrame, rules: list[Rule]) -> dict[str, pd.DataFrame]:
    """Today's rules, and the history: warnings, episodes, the township's answers, visits."""
    rule_names = {rule.code: rule.name for rule in rules}
    feedback = answers.drop_duplicates("warning_id", keep="last").set_index("warning_id")
    hit_rows = hits.assign(rule_name=hits["rule"].map(rule_names),
                           person_id_masked=mask_id_numbers(hits["person_id_number"]))
    tables = {
        "rules": hit_rows[["rule", "rule_name", "level", "reason", "person_id_masked"]
                          ].reset_index(drop=True),
        "warnings": state.assign(rule_name=state["rule"].map(rule_names))[
            ["warning_id", "rule", "rule_name", "level", "status", "first_warning_date",
             "last_seen_date", "closed_date", "closed_by", "verified", "action",
             "last_visit_date"]].sort_values("first_warning_date", kind="stable"
                                             ).reset_index(drop=True),
        "episodes": _episodes(events, feedback),
        "feedback": _answers(feedback, state),
        "visits": _visits(events, feedback),
    }
    for name in ("episodes", "feedback", "visits"):
        table = tables[name]
        table.insert(table.columns.get_loc("rule") + 1, "rule_name", table["rule"].map(
            rule_names))
    return tables


def household_file(household_id: str, sources: dict[str, pd.DataFrame],
                   income_history: pd.DataFrame, state: pd.DataFrame, events: pd.DataFrame,
                   as_of: dt.date, run_date: dt.date | None, params: Parameters,
                   rules: list[Rule], scoring: RulesOnlyScore, model: RiskModel | None = None
                   ) -> HouseholdFile:
    """The household file of one household as of ``as_of``.

    Parameters
    ----------
    household_id : str
        The 户编号.
    sources : dict of str to pandas.DataFrame
        The household's rows of every source as of ``as_of``, as a county's
        read gives them (its registry rows: one county's).
    income_history : pandas.DataFrame
        Every income assessment of the household delivered up to ``as_of``.
    state, events : pandas.DataFrame
        The household's warnings as the latest run on or before ``as_of``
        left them, and every state change of them up to that run.
    as_of : datetime.date
        The date of the facts and rules.
    run_date : datetime.date or None
        The date of that run (None: no run yet).
    params, rules, scoring, model
        As the nightly run loads them; ``model`` None scores by the rules.
    """
    facts = build_facts(sources, as_of, params)
    scored = features = None
    if model is not None:
        scored = score_households(facts, params, model)
        features = model_features(facts, params)
    hits = evaluate(rules, facts, params, scored)
    risk = _risk(hits, scored, features, model, scoring)
    summary = _summary(household_id, as_of, run_date, facts.households.iloc[0],
                       len(sources["registry"]), params, risk)
    tables = {**_department_tables(sources, income_history, facts, as_of, params),
              **_warning_tables(hits, state, events, sources["feedback"], rules)}
    return HouseholdFile(household_id, as_of, summary, risk[2], tables)
