"""The condition language: what it accepts, what it refuses, how missing values behave."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from casebook import RULES

from monitor.io.config import load_rule_definitions
from monitor.policy.expressions import Expression, ExpressionError
from monitor.policy.rules import RuleError, parse_rules

COLUMNS = {"a": np.array([1.0, 2.0, np.nan]), "b": np.array([2.0, 2.0, 2.0]),
           "flag": np.array([True, False, True])}


@pytest.mark.parametrize(("text", "expected"), [
    ("a < b", [True, False, False]),
    ("a <= b and flag", [True, False, False]),
    ("not flag or a * 2 >= b + 1", [False, True, False]),
    ("1 < b < 3", [True, True, True]),
    ("-a < 0", [True, True, False]),
    ("a / 0 > 1", [True, True, False]),
])
def test_conditions_evaluate_over_whole_columns(text, expected):
    assert Expression(text).evaluate(COLUMNS.__getitem__).tolist() == expected


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "a.real > 0", "a[0] > 0", "'x' == 'x'",
    "(lambda: 1)() > 0", "a if b else flag", "[a] == [b]", "a ** 2 > 1", "a in b",
])
def test_anything_but_names_numbers_comparisons_arithmetic_and_logic_is_refused(text):
    with pytest.raises(ExpressionError):
        Expression(text)


def test_a_syntax_error_is_a_clear_error():
    with pytest.raises(ExpressionError, match="cannot parse"):
        Expression("a < ")


def test_shipped_rules_define_every_contract_code_once():
    assert RULES[0].code == "DIBAO_GAP"
    assert len({rule.code for rule in RULES}) == len(RULES) == 20


def test_a_rule_file_missing_a_code_or_with_a_bad_condition_is_refused():
    definitions = load_rule_definitions()
    with pytest.raises(RuleError, match="missing \\['DIBAO_GAP'\\]"):
        parse_rules(definitions[1:])
    broken = copy.deepcopy(definitions)
    broken[0]["condition"] = "open('x')"
    with pytest.raises(RuleError, match="rule DIBAO_GAP: not allowed in a condition: Call"):
        parse_rules(broken)
    broken = copy.deepcopy(definitions)
    broken[0]["level"] = "紫色"
    with pytest.raises(RuleError, match="rule DIBAO_GAP: level"):
        parse_rules(broken)
