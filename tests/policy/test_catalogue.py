"""The catalogue of facts: what the builders make, what the rules may name, what analysts read."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.config import load_parameters, load_rule_definitions
from monitor.io.lake import counties_as_of, read_as_of
from monitor.policy.catalogue import CATALOGUE, HOUSEHOLD, PERSON, missing_or_unlisted
from monitor.policy.facts import SOURCE_COLUMNS, build_facts, history_needed
from monitor.policy.rules import RuleError, parse_rules

DAY = dt.date(2026, 6, 30)
DOCS = Path(__file__).parents[2] / "docs" / "facts.md"


def test_the_builders_make_every_catalogued_fact_and_nothing_else(night_home):
    params = load_parameters(night_home, DAY)
    county = counties_as_of(night_home, DAY)[0]
    sources = read_as_of(night_home, DAY, county=county, columns=SOURCE_COLUMNS,
                         since=history_needed(params, DAY))
    facts = build_facts(sources, DAY, params)
    assert len(facts.households) > 10
    assert missing_or_unlisted(HOUSEHOLD, list(facts.households.columns)) == ([], [])
    assert missing_or_unlisted(PERSON, list(facts.persons.columns)) == ([], [])
    # A fact's parameters are parameters.
    used = {name for fact in CATALOGUE for name in fact.parameters}
    assert used <= set(params.names)


def _with_condition(code: str, condition: str) -> list[dict]:
    definitions = load_rule_definitions()
    for entry in definitions:
        if entry["code"] == code:
            entry["condition"] = condition
    return definitions


def test_a_misspelt_fact_is_refused_when_the_rules_load():
    names = load_parameters(None, DAY).names
    assert len(parse_rules(load_rule_definitions(), parameters=names)) == 20
    definitions = _with_condition("DIBAO_GAP", "per_capita_incme < dibao_standard")
    with pytest.raises(RuleError, match=r"DIBAO_GAP: unknown names \['per_capita_incme'\]"):
        parse_rules(definitions, parameters=names)


def test_a_household_rule_may_not_name_a_person_fact_and_a_parameter_must_exist():
    names = load_parameters(None, DAY).names
    with pytest.raises(RuleError, match=r"JOBLESS: unknown names \['age'\].*household fact"):
        parse_rules(_with_condition("JOBLESS", "age > 60"), parameters=names)
    with pytest.raises(RuleError, match=r"unknown names \['dibao_standrd'\]"):
        parse_rules(_with_condition("DIBAO_GAP", "per_capita_income < dibao_standrd"),
                    parameters=names)
    # A person rule may name its household's facts.
    rules = parse_rules(_with_condition("SCHOOL_DROPOUT", "is_school_dropout and in_dibao"),
                        parameters=names)
    assert len(rules) == 20


def test_rules_facts_as_csv_and_json_hold_every_fact():
    result = CliRunner().invoke(app, ["rules", "--facts", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["name"], row["entity"]) for row in rows] == [
        (fact.name, fact.entity) for fact in CATALOGUE]
    labels = {row["name"]: row["label"] for row in rows}
    assert labels["per_capita_income"] == "家庭月人均收入（扣除就业成本）"
    result = CliRunner().invoke(app, ["rules", "--facts", "--format", "json"])
    assert len(json.loads(result.stdout)["facts"]) == len(CATALOGUE)


def test_the_analysts_page_lists_the_catalogue_as_it_is():
    result = CliRunner().invoke(app, ["rules", "--facts", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout in DOCS.read_text(encoding="utf-8")
