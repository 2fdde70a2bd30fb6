"""Every rule's YAML cases (tests/policy/rules/cases): triggers, the boundary, just past it."""

from __future__ import annotations

import pytest
from casebook import RULES, hits_for, load_cases

CASES = load_cases()


@pytest.mark.parametrize("case", [case for _, case in CASES], ids=[name for name, _ in CASES])
def test_rule_case(case):
    hits = hits_for(case)
    fired = set(hits["rule"])
    for code, expected in case["output"].items():
        assert (code in fired) is expected, (
            f"{code} expected {'to fire' if expected else 'not to fire'}; fired: {sorted(fired)}; "
            f"reasons: {hits.set_index('rule')['reason'].to_dict()}")
    for code, text in case.get("reason_contains", {}).items():
        reason = hits.loc[hits["rule"] == code, "reason"].item()
        assert text in reason, reason


def test_every_rule_has_a_firing_case_and_a_boundary_that_does_not():
    outcomes: dict[str, set[bool]] = {}
    counts: dict[str, int] = {}
    for _, case in CASES:
        for code, expected in case["output"].items():
            outcomes.setdefault(code, set()).add(expected)
            counts[code] = counts.get(code, 0) + 1
    for rule in RULES:
        assert outcomes.get(rule.code) == {True, False}, f"{rule.code} lacks a case"
        assert counts[rule.code] >= 3, f"{rule.code} needs trigger, boundary and past cases"
