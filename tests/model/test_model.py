"""The risk model's pieces: features see only the past, labels, capacity, training, reasons.

Pure functions are called directly. The lake of the small synthetic county
that ``monitor train`` was run on (the ``trained_home`` fixture) gives the
rows the training tests use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from casebook import parameters_for, sources_for

from monitor.io.config import (
    load_model_settings,
    load_parameters,
    load_rule_definitions,
    load_scoring,
)
from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_as_of, read_source
from monitor.model.features import FEATURE_NAMES, model_features
from monitor.model.labels import outcome_labels
from monitor.model.metrics import at_capacity, select_at_capacity
from monitor.model.risk import ModelSettings, ModelSettingsError
from monitor.model.training import (
    CALIBRATION,
    TRAINING,
    VALIDATION,
    combine_rows,
    separate,
    snapshot_rows,
    township_roles,
    train_model,
    training_plan,
)
from monitor.policy.facts import build_facts
from monitor.policy.rules import parse_rules
from monitor.policy.scoring import RulesOnlyScore
from tests.deliveries import PERSON_IDS, good_frame, write_delivery

AS_OF = dt.date(2024, 6, 30)
SETTINGS = load_model_settings()
#: Smaller and quicker than the shipped settings; the same code paths.
QUICK = dataclasses.replace(
    SETTINGS, snapshots=3, capacity=5,
    gradient_boosting={**SETTINGS.gradient_boosting, "max_iter": 30})


def household(**extra) -> dict:
    """A quiet two-person household as of AS_OF, in casebook form."""
    members = [{"relation": "户主", "born": "1975-03-15"},
               {"relation": "配偶", "born": "1977-08-20"}]
    return {"date": AS_OF.isoformat(), "name": "model",
            "household": {"income": {"annual": 30000, "date": "2024-03-01"},
                          "members": members, **extra}}


def features_of(case: dict, as_of: dt.date = AS_OF) -> pd.Series:
    sources = sources_for(case)
    return model_features(build_facts(sources, as_of, parameters_for(case)),
                          parameters_for(case)).iloc[0]


# --------------------------------------------------------------------------- no look-ahead


def test_events_dated_after_the_as_of_date_do_not_move_any_feature():
    case = household()
    before = features_of(case)
    later = pd.Timestamp(AS_OF) + pd.Timedelta(days=5)
    members = case["household"]["members"]
    members[0]["medical"] = [{"date": later, "out_of_pocket": 90000, "category": "重特大疾病"}]
    members[0]["employment"] = [{"date": later, "type": "失业登记"}]
    members[1]["programs"] = [{"program": "低保", "start": later}]
    members[1]["programs"].append({"program": "临时救助", "start": later})
    case["household"]["disasters"] = [{"date": later, "loss": 50000}]
    planted = features_of(case)
    pd.testing.assert_series_equal(planted, before)

    # The same facts dated on the as-of date do move the features: the test can fail.
    for source in (members[0]["medical"], members[0]["employment"], members[1]["programs"],
                   case["household"]["disasters"]):
        for entry in source:
            entry["date" if "date" in entry else "start"] = pd.Timestamp(AS_OF)
    moved = features_of(case)
    changed = {name for name in FEATURE_NAMES if not np.isclose(moved[name], before[name],
                                                                equal_nan=True)}
    assert {"medical_out_of_pocket", "recent_medical_out_of_pocket", "disaster_loss",
            "working_age_unemployed", "in_dibao", "temporary_aid_active"} <= changed


def test_a_delivery_after_the_as_of_date_is_not_read(home):
    """Facts dated before the as-of date but delivered after it were not known then."""
    params = load_parameters()
    household_id = "0001"
    write_delivery(home, "registry", good_frame("registry"), AS_OF - dt.timedelta(days=30))
    write_delivery(home, "income", pd.DataFrame({
        "household_id": [household_id], "assess_date": ["2024-03-01"],
        "annual_income": ["60000"], "employment_cost": ["0"]}), AS_OF - dt.timedelta(days=30))
    # Delivered ten days after the as-of date, about days before it: a claim and a
    # reassessment of income (a new snapshot).
    delivered = AS_OF + dt.timedelta(days=10)
    before = (AS_OF - dt.timedelta(days=5)).isoformat()
    write_delivery(home, "medical", pd.DataFrame({
        "claim_id": ["PLANTED-1"], "id_number": [PERSON_IDS[0]], "settle_date": [before],
        "total_cost": ["90000"], "out_of_pocket": ["60000"], "category": ["重特大疾病"],
        "inpatient": ["是"]}), delivered)
    write_delivery(home, "income", pd.DataFrame({
        "household_id": [household_id], "assess_date": [before], "annual_income": ["3000"],
        "employment_cost": ["0"]}), delivered)
    ingest_landing(home, delivered)

    def features(on: dt.date) -> pd.Series:
        facts = build_facts(read_as_of(home, on), on, params)
        return model_features(facts, params).loc[household_id]

    known, later = features(AS_OF), features(delivered)
    assert known["medical_out_of_pocket"] == 0
    assert later["medical_out_of_pocket"] == 60000
    # One living member (the other died): 60000 a year is 5000 a month, 3000 is 250.
    assert known["per_capita_income_ratio"] * 600 == pytest.approx(5000, rel=0.2)
    assert later["per_capita_income_ratio"] < known["per_capita_income_ratio"] / 10


# --------------------------------------------------------------------------- labels


def label_of(programs_at_start: list[dict], spells: list[tuple[str, str]],
             feedback: list[tuple[str, str]] = ()) -> bool:
    """The label of a household as of AS_OF with a six-month horizon."""
    case = household()
    case["household"]["members"][0]["programs"] = programs_at_start
    sources = sources_for(case)
    facts = build_facts(sources, AS_OF, parameters_for(case))
    head = sources["registry"]["id_number"].iloc[0]
    assistance = pd.DataFrame({"id_number": [head] * len(spells),
                               "program": [program for program, _ in spells],
                               "start_date": pd.to_datetime([day for _, day in spells])})
    answers = pd.DataFrame({"household_id": ["H1"] * len(feedback),
                            "verified": [verified for verified, _ in feedback],
                            "closed_date": pd.to_datetime([day for _, day in feedback])})
    end = dt.date(2024, 12, 30)
    return bool(outcome_labels(facts, assistance, answers, end, SETTINGS.label)["label"].iloc[0])


@pytest.mark.parametrize(("spells", "expected"), [
    ([("低保", "2024-07-01")], True),
    ([("低保", "2024-06-30")], False),          # began on the as-of date: known, not foreseen
    ([("低保边缘", "2024-12-30")], True),       # the horizon's last day
    ([("特困", "2024-12-31")], False),          # just past it
    ([("残疾人护理补贴", "2024-08-01")], False),  # not a program the label counts
    ([], False),
])
def test_a_program_entered_within_the_horizon_is_positive(spells, expected):
    assert label_of([], spells) is expected


def test_only_an_entry_above_the_households_standing_is_news():
    in_dibao = [{"program": "低保", "start": "2023-01-01"}]
    assert label_of(in_dibao, [("低保", "2024-08-01")]) is False
    assert label_of(in_dibao, [("低保边缘", "2024-08-01")]) is False  # a step out
    assert label_of(in_dibao, [("特困", "2024-08-01")]) is True
    assert label_of(in_dibao, [("临时救助", "2024-08-01")]) is True
    in_edge = [{"program": "低保边缘", "start": "2023-01-01"}]
    assert label_of(in_edge, [("低保", "2024-08-01")]) is True
    ended = [{"program": "低保", "start": "2022-01-01", "end": "2023-01-01"}]
    assert label_of(ended, [("低保", "2024-08-01")]) is True


def test_a_member_who_died_before_the_as_of_date_does_not_label_the_household():
    case = household()
    case["household"]["members"][1].update(status="死亡", died="2024-01-10")
    sources = sources_for(case)
    facts = build_facts(sources, AS_OF, parameters_for(case))
    spouse = sources["registry"]["id_number"].iloc[1]
    assistance = pd.DataFrame({"id_number": [spouse], "program": ["临时救助"],
                               "start_date": pd.to_datetime(["2024-08-01"])})
    no_feedback = pd.DataFrame({"household_id": pd.Series(dtype="string"),
                                "verified": pd.Series(dtype="string"),
                                "closed_date": pd.Series(dtype="datetime64[ns]")})
    labels = outcome_labels(facts, assistance, no_feedback, dt.date(2024, 12, 30),
                            SETTINGS.label)
    assert not labels["label"].any()


@pytest.mark.parametrize(("feedback", "expected"), [
    ([("属实", "2024-09-01")], True),
    ([("不属实", "2024-09-01")], False),
    ([("属实", "2024-06-30")], False),
    ([("属实", "2025-01-02")], False),
])
def test_verified_feedback_within_the_horizon_is_positive(feedback, expected):
    assert label_of([], [], feedback) is expected


# --------------------------------------------------------------------------- capacity


def test_capacity_counts_only_eligible_households_and_breaks_ties_stably():
    towns = pd.Series(["a"] * 4 + ["b"] * 2, index=[f"h{n}" for n in range(6)])
    score = np.array([40, 40, 40, 0, 60, 60])
    eligible = score > 0
    chosen = select_at_capacity(towns, score, 2, eligible)
    assert chosen[:3].sum() == 2 and not chosen[3] and chosen[4:].all()
    shuffled = [5, 2, 0, 4, 1, 3]
    again = select_at_capacity(towns.iloc[shuffled], score[shuffled], 2, eligible[shuffled])
    assert dict(zip(towns.index[shuffled], again, strict=True)) == dict(
        zip(towns.index, chosen, strict=True))
    # A township with fewer eligible households than the capacity lists only those.
    assert select_at_capacity(towns, score, 10, eligible).sum() == 5
    figures = at_capacity(np.array([1, 0, 0, 1, 1, 0]), chosen)
    assert figures["recall"] == pytest.approx(figures["true_positives"] / 3)


# --------------------------------------------------------------------------- training


def test_the_plan_splits_by_time():
    plan = training_plan(dt.date(2026, 6, 30), SETTINGS)
    validation = [snapshot for snapshot in plan if snapshot.role == VALIDATION]
    assert [snapshot.as_of for snapshot in validation] == [dt.date(2025, 12, 30)]
    assert validation[0].end == dt.date(2026, 6, 30)
    earlier = [snapshot for snapshot in plan if snapshot.role == TRAINING]
    assert len(earlier) == len(plan) - 1 == SETTINGS.snapshots
    # Every training outcome is known by the validation date, one month apart.
    assert max(snapshot.end for snapshot in earlier) == validation[0].as_of
    assert sorted(snapshot.as_of.month for snapshot in earlier) == [1, 2, 3, 4, 5, 6]


@pytest.fixture(scope="module")
def rows(trained_home) -> pd.DataFrame:
    """Training rows of the small trained county's lake (quick settings)."""
    home, train_date = trained_home
    params = load_parameters()
    rules = parse_rules(load_rule_definitions())
    scoring = RulesOnlyScore.from_definition(load_scoring())
    frames = []
    for snapshot in training_plan(train_date, QUICK):
        sources = read_as_of(home, snapshot.as_of)
        assistance = read_source(home, "assistance", snapshot.end)
        feedback = read_source(home, "feedback", snapshot.end)
        baseline = (rules, scoring) if snapshot.role == VALIDATION else (None, None)
        frames.append(snapshot_rows(sources, assistance, feedback, snapshot, params, QUICK,
                                    *baseline))
    return combine_rows(frames)


def test_validation_and_calibration_rows_come_from_their_own_townships(rows):
    roles = township_roles(rows["township_code"], QUICK)
    assert (rows["role"].to_numpy() == roles).all()
    assert set(rows["role"]) == {TRAINING, CALIBRATION, VALIDATION}
    assert set(rows.loc[rows["role"] == VALIDATION, "as_of"]) == {pd.Timestamp("2025-12-30")}
    training_dates = set(rows.loc[rows["role"] == TRAINING, "as_of"])
    assert set(rows.loc[rows["role"] == CALIBRATION, "as_of"]) == training_dates
    assert max(training_dates) == pd.Timestamp("2025-06-30")


def test_a_household_that_moved_is_kept_only_in_its_latest_role(rows):
    """One household seen in fitting, calibration and validation townships (it moved)."""
    fitting = rows.index[rows["role"] == TRAINING]
    calibration = rows.index[rows["role"] == CALIBRATION]
    validation = rows.index[rows["role"] == VALIDATION]
    mover, settled = validation[0], calibration[0]
    renamed = pd.Series(rows.index, index=rows.index)
    # Give two fitting households' rows the mover's and the settled one's ids.
    renamed[renamed.isin([fitting[0]])] = mover
    renamed[renamed.isin([fitting[1]])] = settled
    moved = rows.set_axis(pd.Index(renamed.to_numpy(), name=rows.index.name))
    kept_validation, kept_calibration, kept_fitting = separate(moved)
    assert mover in kept_validation.index
    assert mover not in kept_calibration.index and mover not in kept_fitting.index
    assert settled in kept_calibration.index and settled not in kept_fitting.index
    assert len(kept_fitting) == (rows["role"] == TRAINING).sum() - (
        rows.index.isin([fitting[0], fitting[1]]) & (rows["role"] == TRAINING)).sum()


def test_training_is_deterministic_for_a_seed(rows):
    first = train_model(rows, QUICK, dt.date(2026, 6, 30))
    second = train_model(rows, QUICK, dt.date(2026, 6, 30))
    assert first.model.version == second.model.version
    assert first.candidates == second.candidates
    np.testing.assert_array_equal(first.validation["probability"],
                                  second.validation["probability"])
    # With fitting rows sampled, the seed draws the sample: the same seed, the same model;
    # another seed, another one.
    sampled = dataclasses.replace(QUICK, max_training_rows=len(rows) // 3)
    again = [train_model(rows, sampled, dt.date(2026, 6, 30)) for _ in range(2)]
    assert again[0].candidates == again[1].candidates
    other = train_model(rows, dataclasses.replace(sampled, seed=sampled.seed + 1),
                        dt.date(2026, 6, 30))
    assert other.candidates != again[0].candidates


@pytest.fixture(scope="module")
def model(rows):
    return train_model(rows, QUICK, dt.date(2026, 6, 30)).model


def test_a_reason_names_a_feature_that_really_moved_the_score(model, rows):
    """Set the first named feature to the reference household's value: the 风险评分 falls."""
    features = rows.loc[rows["role"] == VALIDATION, list(FEATURE_NAMES)].astype("float64")
    scores = model.scores(features)
    top = features[(scores >= scores.quantile(0.98)).to_numpy()]
    reasons = model.reasons(top)
    first = reasons.str.extract(r"^([^；]+)（\+(\d+)分）")
    named = first[0].notna().to_numpy()
    assert named.mean() > 0.5
    strongest = np.argmax(model.contributions(top), axis=1)
    for row in np.flatnonzero(named):
        name = FEATURE_NAMES[strongest[row]]
        phrase = model.phrases[name]
        said = first.iloc[row, 0]
        assert said == phrase.absent or said.startswith(phrase.phrase.split("{")[0]), (
            name, said)
        perturbed = top.iloc[[row]].copy()
        perturbed[name] = model.reference[strongest[row]]
        drop = int(model.scores(top.iloc[[row]]).iloc[0] - model.scores(perturbed).iloc[0])
        # The published score moves by the points the reason shows (rounding aside).
        assert drop >= model.minimum_points
        assert abs(drop - int(first.iloc[row, 1])) <= 1, (said, first.iloc[row, 1], drop)


class _OneFeature:
    """A stand-in classifier whose probability rises with recent medical cost only."""

    def predict_proba(self, matrix):
        recent = matrix[:, FEATURE_NAMES.index("recent_medical_out_of_pocket")]
        probability = np.clip(recent / 10_000, 0, 1) * 0.5
        return np.column_stack([1 - probability, probability])


def test_reasons_name_only_what_the_model_uses(model, rows):
    stub = dataclasses.replace(model, estimator=_OneFeature(),
                               reference=np.zeros(len(FEATURE_NAMES)))
    features = rows.loc[rows["role"] == VALIDATION, list(FEATURE_NAMES)].astype("float64")
    features = features.iloc[:50].assign(recent_medical_out_of_pocket=np.linspace(0, 9000, 50))
    reasons = stub.reasons(features)
    expected = ("近期医疗自付" + features["recent_medical_out_of_pocket"].round().astype(int)
                .astype(str) + "元（+" + (features["recent_medical_out_of_pocket"] / 200)
                .round().astype(int).astype(str) + "分）")
    named = (features["recent_medical_out_of_pocket"] / 200).round() >= stub.minimum_points
    assert (reasons[named] == expected[named]).all()
    assert (reasons[~named] == stub.no_single_reason).all()


def test_reasons_are_chinese_phrases_with_points(model, rows):
    features = rows.loc[rows["role"] == VALIDATION, list(FEATURE_NAMES)].astype("float64")
    reasons = model.reasons(features.iloc[:200])
    named = reasons.str.fullmatch(r"[^；]+（\+\d+分）(；[^；]+（\+\d+分）){0,2}")
    assert named.any()
    assert set(reasons[~named]) <= {model.no_single_reason}
    assert not reasons.str.contains("{value}|nan", regex=True).any()


def test_model_settings_name_the_file_and_the_problem():
    document = {"label": {}, "training": {}, "capacity": {}, "fairness": {},
                "explanation": {}, "features": {}}
    with pytest.raises(ModelSettingsError, match=r"model.yaml: missing 'horizon_months'"):
        ModelSettings.from_definition(document, "rules/model.yaml")
    import yaml

    from monitor.io.config import RULES_DIR
    shipped = yaml.safe_load((RULES_DIR / "model.yaml").read_text(encoding="utf-8"))
    del shipped["features"]["head_age"]
    with pytest.raises(ModelSettingsError, match=r"features: missing \['head_age'\]"):
        ModelSettings.from_definition(shipped, "rules/model.yaml")


def test_models_saved_under_the_earlier_module_names_still_unpickle():
    # A model trained before the stage packages names monitor.model.RiskModel, and a
    # logistic regression monitor.training.log_amounts: an upgrade must still read it.
    import pickle
    import sys

    from monitor.io.models import _earlier_module_names
    from monitor.model.risk import FeaturePhrase, RiskModel
    from monitor.model.training import log_amounts

    assert pickle.loads(b"cmonitor.model\nRiskModel\n.") is RiskModel
    assert pickle.loads(b"cmonitor.model\nFeaturePhrase\n.") is FeaturePhrase
    with _earlier_module_names():
        assert pickle.loads(b"cmonitor.training\nlog_amounts\n.") is log_amounts
    assert "monitor.training" not in sys.modules
