"""Visit rosters (定期探访): a visit answers the roster for a while, and only the roster.

LEFT_BEHIND_ELDER and LEFT_BEHIND_CHILD are rosters: a household meeting one
is due a visit when never visited, or last visited ``visit_cadence_days``
(30) or more before the night; a visit makes it due again after the
cadence and never closes it while the household meets the rule. An answer
to a roster row records only the visit; an answer to a verification row
closes only verification warnings.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from monitor.io.config import load_parameters, load_rule_definitions
from monitor.policy.rules import parse_rules
from monitor.triage.lifecycle import CONTINUING, NEW, SETTLED, empty_state, track, warning_ids
from monitor.triage.referrals import EVERY, ROSTER, VERIFICATION, triage
from monitor.validation.idcard import make_id_numbers

DAY = dt.date(2026, 7, 1)
RULES = parse_rules(load_rule_definitions())
ROSTERS = frozenset(rule.code for rule in RULES if rule.roster)
PARAMS = load_parameters(None, DAY)
CADENCE = int(PARAMS.value("visit_cadence_days", DAY, "500101001201"))
HOUSEHOLDS = pd.DataFrame({
    "region_code": ["500101001201", "500101001202"], "county_code": ["500101"] * 2,
    "township_code": ["500101001"] * 2, "head_name": ["张三", "李四"],
    "head_id_number": make_id_numbers(pd.Series(["500101"] * 2),
                                      pd.to_datetime(["1940-01-01", "1950-01-01"]),
                                      pd.Series([11, 13])).tolist(),
    "living_members": [1, 2], "risk_score": [40, 60],
}, index=pd.Index(["h1", "h2"], name="household_id"))


def day(offset: int) -> dt.date:
    return DAY + dt.timedelta(days=offset)


def hits(*rules: tuple[str, str], age: int = 80) -> pd.DataFrame:
    """Today's hits as (household, rule), the elder's age in the evidence."""
    rows = pd.DataFrame(rules, columns=["household_id", "rule"])
    levels = {rule.code: rule.level for rule in RULES}
    return rows.assign(level=rows["rule"].map(levels), reason="事实",
                       evidence=f'{{"age": {age}, "elder_age": 60}}', county_code="500101",
                       township_code="500101001").astype("string")


def answer(household: str, rule: str, on: dt.date, action: str = "定期探访") -> pd.DataFrame:
    return pd.DataFrame({
        "warning_id": warning_ids(pd.Series([household]), pd.Series([rule])),
        "household_id": [household], "verified": ["属实"], "action": [action],
        "closed_date": [pd.Timestamp(on)]}).astype({"closed_date": "datetime64[ns]"})


NO_ANSWERS = answer("h1", "DIBAO_GAP", DAY).iloc[:0]


def night(state: pd.DataFrame, today: pd.DataFrame, feedback: pd.DataFrame, on: dt.date,
          kind: str = EVERY):
    lifecycle = track(state, today, feedback, on, ROSTERS)
    return lifecycle, triage(lifecycle.hits, HOUSEHOLDS, RULES, PARAMS, on, kind=kind)


def visited_on_day_one() -> tuple[pd.DataFrame, pd.DataFrame]:
    """h1 listed on DAY for its elder and its income; visited the next day."""
    today = hits(("h1", "LEFT_BEHIND_ELDER"), ("h1", "DIBAO_GAP"))
    first, rows = night(empty_state(), today, NO_ANSWERS, DAY)
    assert rows["触发规则"].tolist() == ["DIBAO_GAP;LEFT_BEHIND_ELDER"]
    # The row's id is the verification warning's: an answer quoting it closes that one.
    assert rows["预警编号"].iloc[0] == warning_ids(pd.Series(["h1"]), pd.Series(["DIBAO_GAP"]))[0]
    return first.state, today


def test_a_visit_makes_the_roster_due_again_after_the_cadence_and_not_before():
    state, today = visited_on_day_one()
    visit = answer("h1", "LEFT_BEHIND_ELDER", day(1))
    lifecycle, rows = night(state, today, visit, day(1), ROSTER)
    assert rows.empty
    assert lifecycle.state.set_index("rule").loc["LEFT_BEHIND_ELDER", "status"] == "open"
    visited = lifecycle.events[lifecycle.events["event"] == "visited"]
    assert visited["rule"].tolist() == ["LEFT_BEHIND_ELDER"] and visited["action"].tolist() == [
        "定期探访"]
    for offset in range(2, CADENCE + 1):  # day(1) + 1 … day(1) + cadence - 1
        lifecycle, rows = night(lifecycle.state, today, visit, day(offset), ROSTER)
        assert rows.empty, offset
    assert lifecycle.events[lifecycle.events["event"] == "visited"].empty  # recorded once
    lifecycle, rows = night(lifecycle.state, today, visit, day(1 + CADENCE), ROSTER)
    assert rows["户编号"].tolist() == ["h1"]
    assert rows[["上次探访日期", "应探访日期"]].iloc[0].tolist() == [
        day(1).isoformat(), day(1 + CADENCE).isoformat()]
    assert rows["状态"].tolist() == [CONTINUING]


def test_the_cadence_boundary_pair_in_the_referral_file():
    state, today = visited_on_day_one()
    lifecycle, _ = night(state, today, answer("h1", "LEFT_BEHIND_ELDER", day(1)), day(1))
    _, before = night(lifecycle.state, today, NO_ANSWERS, day(CADENCE))
    _, due = night(lifecycle.state, today, NO_ANSWERS, day(1 + CADENCE))
    assert before["触发规则"].tolist() == ["DIBAO_GAP"]          # visited 29 days ago
    assert due["触发规则"].tolist() == ["DIBAO_GAP;LEFT_BEHIND_ELDER"]  # 30 days


def test_a_roster_answer_leaves_the_households_verification_warning_open():
    state, today = visited_on_day_one()
    lifecycle, rows = night(state, today, answer("h1", "LEFT_BEHIND_ELDER", day(1)), day(1))
    assert lifecycle.state.set_index("rule").loc["DIBAO_GAP", "status"] == "open"
    assert rows["触发规则"].tolist() == ["DIBAO_GAP"]
    assert (lifecycle.events["event"] == "closed_by_feedback").sum() == 0


def test_a_verification_answer_closes_only_the_verification_warnings():
    state, today = visited_on_day_one()
    answered = answer("h1", "DIBAO_GAP", day(1), action="纳入低保")
    lifecycle, rows = night(state, today, answered, day(1))
    by_rule = lifecycle.state.set_index("rule")
    assert by_rule.loc["DIBAO_GAP", "closed_by"] == "feedback"
    assert by_rule.loc["LEFT_BEHIND_ELDER", "status"] == "open"
    assert pd.isna(by_rule.loc["LEFT_BEHIND_ELDER", "last_visit_date"])
    # Never visited: still due, listed for its visit alone.
    assert rows["触发规则"].tolist() == ["LEFT_BEHIND_ELDER"]
    assert night(state, today, answered, day(1), VERIFICATION)[1].empty


def test_a_household_that_no_longer_meets_the_rule_leaves_the_roster():
    state, today = visited_on_day_one()
    lifecycle, _ = night(state, today, NO_ANSWERS, day(1))
    gone, rows = night(lifecycle.state, hits(("h1", "DIBAO_GAP")), NO_ANSWERS, day(2))
    assert gone.state.set_index("rule").loc["LEFT_BEHIND_ELDER", "status"] == "closed"
    assert rows["触发规则"].tolist() == ["DIBAO_GAP"]
    # Meeting it again later, it is a new entry, due at once.
    _, rows = night(gone.state, today, NO_ANSWERS, day(3), ROSTER)
    assert rows["状态"].tolist() == [NEW] and rows["上次探访日期"].tolist() == [""]


@pytest.mark.parametrize("rule", ["SCHOOL_DROPOUT", "TEKUN_MINOR"])
def test_a_settled_warning_is_not_relisted_when_only_an_age_ticks_over(rule):
    first = track(empty_state(), hits(("h2", rule), age=15), NO_ANSWERS, DAY, ROSTERS)
    settled = track(first.state, hits(("h2", rule), age=15),
                    answer("h2", rule, day(1), "转介其他部门"), day(1), ROSTERS)
    older = track(settled.state, hits(("h2", rule), age=16), NO_ANSWERS, day(2), ROSTERS)
    assert older.hits["status"].tolist() == [SETTLED]
    # Evidence that bears on the decision still brings it back.
    changed = hits(("h2", rule), age=16).assign(evidence='{"age": 16, "elder_age": 61}')
    assert track(older.state, changed, NO_ANSWERS, day(3), ROSTERS).hits["status"].tolist() \
        == [NEW]


def test_a_warning_settled_before_ages_were_left_out_still_counts_as_settled():
    # The state of an earlier version fingerprinted the evidence with its ages.
    from monitor.triage.lifecycle import evidence_hashes

    first = track(empty_state(), hits(("h2", "SCHOOL_DROPOUT"), age=15), NO_ANSWERS, DAY,
                  ROSTERS)
    settled = track(first.state, hits(("h2", "SCHOOL_DROPOUT"), age=15),
                    answer("h2", "SCHOOL_DROPOUT", day(1), "转介其他部门"), day(1), ROSTERS)
    old_style = settled.state.assign(evidence_hash=evidence_hashes(
        pd.Series(['{"age": 15, "elder_age": 60}']), ages=True))
    again = track(old_style, hits(("h2", "SCHOOL_DROPOUT"), age=15), NO_ANSWERS, day(2),
                  ROSTERS)
    assert again.hits["status"].tolist() == [SETTLED]
    # And from then on the next birthday does not bring it back either.
    older = track(again.state, hits(("h2", "SCHOOL_DROPOUT"), age=16), NO_ANSWERS, day(3),
                  ROSTERS)
    assert older.hits["status"].tolist() == [SETTLED]


def test_a_corrected_answer_replaces_the_outcome_of_the_row_it_corrects():
    today = hits(("h2", "DIBAO_GAP"), ("h2", "EDGE_GAP"))
    first = track(empty_state(), today, NO_ANSWERS, DAY, ROSTERS)
    answered = answer("h2", "DIBAO_GAP", day(1), "纳入低保")
    settled = track(first.state, today, answered, day(1), ROSTERS)
    corrected = answered.assign(verified="不属实", action="无需救助")
    again = track(settled.state, today, corrected, day(2), ROSTERS)
    by_rule = again.state.set_index("rule")
    # Both warnings were settled by that row: both take the corrected outcome.
    assert by_rule["verified"].tolist() == ["不属实", "不属实"]
    assert by_rule["action"].tolist() == ["无需救助", "无需救助"]
    assert (again.events["event"] == "closed_by_feedback").sum() == 2
    # Given again unchanged, it changes nothing more.
    quiet = track(again.state, today, corrected, day(3), ROSTERS)
    assert quiet.events[quiet.events["event"] == "closed_by_feedback"].empty
    assert quiet.state["verified"].tolist() == ["不属实", "不属实"]
