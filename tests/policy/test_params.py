"""Dated regional parameters: lookup, both sides of a change, overrides and their errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml
from deliveries import good_frame, write_delivery
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.config import load_parameters, load_rule_definitions
from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_as_of
from monitor.policy.facts import SOURCE_COLUMNS, build_facts
from monitor.policy.params import (
    CONTRACT_PARAMETERS,
    ParameterError,
    Parameters,
    parse_parameter_file,
)
from monitor.policy.rules import evaluate, parse_rules


def test_shipped_file_defines_every_contract_parameter_with_a_source():
    params = load_parameters()
    assert set(CONTRACT_PARAMETERS) <= set(params.names)
    assert params.table["source"].str.len().min() > 0
    params.check_in_force(dt.date(2021, 4, 11))


@pytest.mark.parametrize(("day", "age"), [(dt.date(2021, 4, 11), 16), (dt.date(2021, 4, 12), 18)])
def test_tekun_minor_age_rises_from_16_to_18_on_2021_04_12(day, age):
    assert load_parameters().value("tekun_minor_age", day, "500101001201") == age


def test_longest_region_prefix_wins_then_latest_from_date():
    table = parse_parameter_file({"dibao_standard": [
        {"region": "50", "from": dt.date(2021, 1, 1), "value": 600},
        {"region": "50", "from": dt.date(2024, 1, 1), "value": 650},
        {"region": "500238", "from": dt.date(2023, 1, 1), "value": 640},
    ]}, "test")
    params = Parameters(table)
    regions = pd.Series(["500238100201", "500101001201", "500238100201"])
    assert params.lookup("dibao_standard", regions, dt.date(2024, 6, 30)).tolist() == [
        640, 650, 640]
    assert params.lookup("dibao_standard", regions, dt.date(2022, 6, 30)).tolist() == [
        600, 600, 600]


def test_home_override_replaces_only_the_parameters_it_names(home):
    home.mkdir()
    (home / "parameters.yaml").write_text(
        'dibao_standard:\n  - {region: "500101", from: 2024-01-01, value: 777}\n',
        encoding="utf-8")
    params = load_parameters(home)
    assert params.value("dibao_standard", dt.date(2024, 6, 30), "500101001201") == 777
    assert params.value("edge_ratio", dt.date(2024, 6, 30)) == load_parameters().value(
        "edge_ratio", dt.date(2024, 6, 30))
    with pytest.raises(ParameterError, match=r"dibao_standard.*no value in force.*500102"):
        params.lookup("dibao_standard", pd.Series(["500102001201"]), dt.date(2024, 6, 30))


BAD_OVERRIDES = [
    ("dibao_standrad:\n  - {from: 2024-01-01, value: 600}\n", "dibao_standrad", "unknown name"),
    ("edge_ratio:\n  - {value: 1.5}\n", "edge_ratio", "'from' must be a date"),
    ("edge_ratio:\n  - {from: 2024-01-01, value: high}\n", "edge_ratio",
     "'value' must be a number"),
    ("edge_ratio:\n  - {from: 2024-01-01, value: 1.5, regoin: '50'}\n", "edge_ratio",
     "unknown keys"),
    ("edge_ratio: 1.5\n", "edge_ratio", "expected a list of entries"),
    ("edge_ratio:\n  - {region: 重庆, from: 2024-01-01, value: 1.5}\n", "edge_ratio",
     "region-code prefix"),
    ("edge_ratio:\n  - {from: 2030-01-01, value: 1.5}\n", "edge_ratio", "no value in force"),
    ('dibao_standard:\n  - {region: "500238", from: 2020-01-01, value: 700}\n', "dibao_standard",
     "no value in force on 2024-06-30 for region '500101001000'"),
    # Nonsense values: each parameter's valid range (rules/parameters.yaml, beside its unit).
    ('dibao_standard:\n  - {region: "50", from: 2020-01-01, value: -640}\n', "dibao_standard",
     "value -640 (region 50, from 2020-01-01) is outside its valid range 100 to 5000 "
     "yuan/person/month"),
    ("edge_ratio:\n  - {from: 2020-01-01, value: 0}\n", "edge_ratio",
     "value 0 (from 2020-01-01) is outside its valid range 1 to 3 ratio"),
    ("model_threshold:\n  - {from: 2020-01-01, value: 150}\n", "model_threshold",
     "outside its valid range 0 to 100 score 0-100"),
    ("working_age_until:\n  - {from: 2020-01-01, value: 6}\n", "working_age_until",
     "outside its valid range 40 to 80 years"),
]


@pytest.mark.parametrize(("text", "parameter", "problem"), BAD_OVERRIDES,
                         ids=[problem for _, _, problem in BAD_OVERRIDES])
def test_a_malformed_override_names_file_parameter_and_problem(home, text, parameter, problem):
    home.mkdir()
    (home / "parameters.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError) as raised:
        load_parameters(home, dt.date(2024, 6, 30))
    message = str(raised.value)
    assert str(home / "parameters.yaml") in message
    assert f"'{parameter}'" in message and problem in message
    # The command line stops with the same message and a non-zero status.
    result = CliRunner().invoke(app, ["rules", "--home", str(home), "--date", "2024-06-30"])
    assert result.exit_code == 1
    assert problem in result.output.replace("\n", "")


def test_an_override_that_is_not_yaml_is_named(home):
    home.mkdir()
    (home / "parameters.yaml").write_text("edge_ratio: [\n", encoding="utf-8")
    with pytest.raises(ParameterError, match=r"parameters\.yaml: not valid YAML"):
        load_parameters(home)


def test_an_override_file_changes_a_runs_result(home):
    as_of = dt.date(2024, 6, 30)
    registry = good_frame("registry")
    income = good_frame("income")
    income.loc[0, "annual_income"] = "9000"  # 0001: one living member, 750 a month; 0002: 667
    income.loc[0, "employment_cost"] = "0"
    write_delivery(home, "registry", registry)
    write_delivery(home, "income", income)
    ingest_landing(home, as_of)
    rules = parse_rules(load_rule_definitions())

    def dibao_gap_households() -> list[str]:
        params = load_parameters(home, as_of)
        facts = build_facts(read_as_of(home, as_of, columns=SOURCE_COLUMNS), as_of, params)
        hits = evaluate(rules, facts, params)
        return sorted(hits.loc[hits["rule"] == "DIBAO_GAP", "household_id"])

    assert dibao_gap_households() == []
    (home / "parameters.yaml").write_text(yaml.safe_dump(
        {"dibao_standard": [{"region": "50", "from": dt.date(2020, 1, 1), "value": 800}]}),
        encoding="utf-8")
    assert dibao_gap_households() == ["0001", "0002"]


def test_rules_command_lists_rules_and_parameters_with_sources():
    result = CliRunner().invoke(app, ["rules", "--date", "2021-04-12", "--region", "500101"])
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", "")
    for expected in ("DIBAO_GAP", "MODEL_RISK", "tekun_minor_age", "渝民〔2021〕69号"):
        assert expected in text


BILLION_LAUGHS = "\n".join([
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    *(f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join([f'*{chr(97 + k)}'] * 9)}]" for k in range(8)),
    "edge_ratio: *i", ""])


def test_a_parameter_file_of_nested_aliases_is_refused_at_once(home):
    # A few hundred bytes that expand to 9**9 strings: read as YAML, they ran out of memory.
    home.mkdir()
    (home / "parameters.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    assert len(BILLION_LAUGHS) < 1000
    with pytest.raises(ParameterError, match=r"parameters\.yaml: line 2: a YAML alias \(\*a\)"):
        load_parameters(home, dt.date(2024, 6, 30))
    result = CliRunner().invoke(app, ["run", "--home", str(home), "--date", "2024-06-30"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "run not started:" in result.stderr
    assert not (home / "lake").exists()  # stopped before anything was ingested


def test_a_parameter_file_far_larger_than_any_is_refused_unread(home):
    home.mkdir()
    (home / "parameters.yaml").write_text("# padding\n" * 200_000, encoding="utf-8")
    with pytest.raises(ParameterError, match=r"more than a configuration file holds"):
        load_parameters(home)


def test_a_shipped_range_that_is_not_low_high_is_an_error():
    from monitor.policy.params import parse_ranges

    with pytest.raises(ParameterError, match=r"'edge_ratio': range must be \[low, high\]"):
        parse_ranges({"edge_ratio": {"unit": "ratio", "range": [3, 1]}}, "rules/parameters.yaml")
    assert str(parse_ranges({"x": {"unit": "days", "range": [1, 365]}}, "f")["x"]) == (
        "1 to 365 days")


def test_work_costs_above_the_income_leave_a_per_capita_income_of_nothing_not_less(home):
    as_of = dt.date(2024, 6, 30)
    income = good_frame("income")
    income.loc[0, "annual_income"] = "1000"
    income.loc[0, "employment_cost"] = "3000"  # more than the income: nothing left
    write_delivery(home, "registry", good_frame("registry"))
    write_delivery(home, "income", income)
    ingest_landing(home, as_of)
    params = load_parameters(home, as_of)
    facts = build_facts(read_as_of(home, as_of, columns=SOURCE_COLUMNS), as_of, params)
    assert facts.households.loc["0001", "per_capita_income"] == 0
    hits = evaluate(parse_rules(load_rule_definitions()), facts, params)
    reasons = hits.loc[hits["household_id"] == "0001", "reason"]
    assert reasons.str.contains("月人均收入0元").any()
    assert not reasons.str.contains(r"(?<![0-9])-[0-9]").any()  # no negative amount
