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

from monitor.facts import build_facts
from monitor.features import FEATURE_NAMES, model_features
from monitor.io.config import (
    load_model_settings,
    load_parameters,
    load_rule_definitions,
    load_scoring,
)
from monitor.io.lake import ingest_landing, read_as_of, read_source
from monitor.labels import outcome_labels
from monitor.metrics import at_capacity, select_at_capacity
from monitor.model import ModelSettings, ModelSettingsError
from monitor.rules import parse_rules
from monitor.scoring import RulesOnlyScore
from monitor.training import (
    CALIBRATION,
    TRAINING,
    VALIDATION,
    combine_rows,
    snapshot_rows,
    train_model,
    training_plan,
)
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
    """A claim delivered after the as-of date changes nothing then, and counts once it is due."""
    write_delivery(home, "registry", good_frame("registry"), AS_OF)
    params = load_parameters()
    head, household_id = PERSON_IDS[0], "0001"
    delivered = AS_OF + dt.timedelta(days=10)
    claim = pd.DataFrame({"claim_id": ["PLANTED-1"], "id_number": [head],
                          "settle_date": [delivered.isoformat()], "total_cost": ["90000"],
                          "out_of_pocket": ["60000"], "category": ["重特大疾病"],
                          "inpatient": ["是"]})
    write_delivery(home, "medical", claim, delivered)
    ingest_landing(home, delivered)

    def cost(on: dt.date) -> float:
        facts = build_facts(read_as_of(home, on), on, params)
        return float(model_features(facts, params).loc[household_id, "medical_out_of_pocket"])

    assert "PLANTED-1" in set(read_source(home, "medical", delivered)["claim_id"])
    assert cost(AS_OF) == 0
    assert cost(delivered) == 60000


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


def test_entering_a_program_the_household_is_already_in_is_not_news():
    in_dibao = [{"program": "低保", "start": "2023-01-01"}]
    assert label_of(in_dibao, [("低保", "2024-08-01")]) is False
    assert label_of(in_dibao, [("临时救助", "2024-08-01")]) is True


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
    earlier = [snapshot for snapshot in plan if snapshot.role in (TRAINING, CALIBRATION)]
    assert len(earlier) == SETTINGS.snapshots
    # Every training outcome is known by the validation date.
    assert max(snapshot.end for snapshot in earlier) == validation[0].as_of
    calibration = [snapshot for snapshot in earlier if snapshot.role == CALIBRATION]
    assert calibration[0].as_of == max(snapshot.as_of for snapshot in earlier)


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


def test_no_household_is_in_both_training_and_validation(rows):
    validation = set(rows.index[rows["role"] == VALIDATION])
    result = train_model(rows, QUICK, dt.date(2026, 6, 30))
    assert validation and result.rows["validation"] == len(validation)
    trained = rows[(rows["role"] != VALIDATION) & ~rows.index.isin(sorted(validation))]
    assert result.rows["training"] + result.rows["calibration"] == len(trained)


def test_training_is_deterministic_for_a_seed(rows):
    first = train_model(rows, QUICK, dt.date(2026, 6, 30))
    second = train_model(rows, QUICK, dt.date(2026, 6, 30))
    assert first.model.version == second.model.version
    assert first.candidates == second.candidates
    np.testing.assert_array_equal(first.validation["probability"],
                                  second.validation["probability"])
    # Another seed draws another boosting model: the seed is what fixes it.
    other = train_model(rows, dataclasses.replace(
        QUICK, seed=QUICK.seed + 1, max_training_rows=len(rows) // 3), dt.date(2026, 6, 30))
    assert other.candidates != first.candidates


@pytest.fixture(scope="module")
def model(rows):
    return train_model(rows, QUICK, dt.date(2026, 6, 30)).model


def test_a_reason_names_a_feature_that_really_moved_the_score(model, rows):
    features = rows.loc[rows["role"] == VALIDATION, list(FEATURE_NAMES)].astype("float64")
    scores = model.probabilities(features) * 100
    top = features.iloc[np.argsort(-scores)[:20]]
    points = model.contributions(top)
    reasons = model.reasons(top)
    assert reasons.notna().all()
    for row in range(len(top)):
        named = int(np.argmax(points[row]))
        assert model.phrases[FEATURE_NAMES[named]].phrase.split("{")[0] in reasons.iloc[row]
        # Put the named feature back to the reference household's value: the score falls by
        # the points the reason gave it.
        perturbed = top.iloc[[row]].copy()
        perturbed.iloc[0, named] = model.reference[named]
        drop = (model.probabilities(top.iloc[[row]]) - model.probabilities(perturbed))[0] * 100
        assert drop == pytest.approx(points[row, named]) and drop >= model.minimum_points
        # A feature the reason did not name moved it less.
        unnamed = int(np.argmin(np.abs(points[row])))
        assert abs(points[row, unnamed]) < drop


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
