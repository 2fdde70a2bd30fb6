"""Triage and the referral file format (DATA_CONTRACT.md section 4)."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest

from monitor.io.config import load_parameters, load_rule_definitions, load_scoring
from monitor.policy.rules import RuleError, parse_rules
from monitor.policy.scoring import RulesOnlyScore
from monitor.triage.lifecycle import CONTINUING, NEW, SETTLED
from monitor.triage.referrals import (
    REFERRAL_HEADERS,
    defuse,
    referral_csv,
    referral_files,
    triage,
    warnings_table,
)

AS_OF = dt.date(2026, 7, 10)
RULES = parse_rules(load_rule_definitions())
PARAMS = load_parameters()
HEAD_ID = "50010119800715001X"


def households(*ids: str, township: str = "500101001") -> pd.DataFrame:
    return pd.DataFrame({
        "region_code": township + "201", "county_code": township[:6], "township_code": township,
        "head_name": "张三", "head_id_number": HEAD_ID, "living_members": 3, "risk_score": 60,
    }, index=pd.Index(list(ids), name="household_id"))


def listed(*rows: tuple[str, str, str, str, str]) -> pd.DataFrame:
    """Hits after the lifecycle: (household, rule, level, status, first warning date)."""
    frame = pd.DataFrame(rows, columns=["household_id", "rule", "level", "status", "first"])
    return frame.assign(
        reason="原因" + frame["rule"], warning_id="YJ" + frame["household_id"] + frame["rule"],
        first_warning_date=pd.to_datetime(frame["first"])).drop(columns="first")


def test_one_row_per_household_with_highest_level_sorted_rules_and_earliest_deadline():
    hits = listed(("h1", "JOBLESS", "黄色", CONTINUING, "2026-07-01"),
                  ("h1", "MEDICAL_BURDEN", "橙色", NEW, "2026-07-10"),
                  ("h1", "DIBAO_GAP", "橙色", NEW, "2026-07-10"),
                  ("h1", "EDGE_GAP", "黄色", SETTLED, "2026-06-01"))
    row = triage(hits, households("h1"), RULES, PARAMS, AS_OF).iloc[0]
    assert row["预警等级"] == "橙色"
    # Codes sorted; the settled EDGE_GAP is not listed.
    assert row["触发规则"] == "DIBAO_GAP;JOBLESS;MEDICAL_BURDEN"
    assert row["预警原因"] == ("【收入低于低保标准未纳入低保】原因DIBAO_GAP；"
                           "【劳动力全部失业】原因JOBLESS；"
                           "【医疗支出负担过重】原因MEDICAL_BURDEN")
    assert row["建议措施"] == "低保审核确认；就业帮扶转介；支出型临时救助/医疗救助"
    assert row["责任科室"] == "社会救助"  # named once
    # Orange due 7 days after 07-10; yellow 15 days after 07-01: the earlier is due first.
    assert row["核实时限"] == "2026-07-16"
    assert row["首次预警日期"] == "2026-07-01"
    assert row["状态"] == CONTINUING
    assert row["预警编号"] == "YJh1JOBLESS"  # the longest-open warning names the row
    assert row["户主身份证号"] == "500101********001X"
    assert list(row.index[:len(REFERRAL_HEADERS)]) == REFERRAL_HEADERS


def test_verification_deadline_at_each_level():
    hits = listed(("h1", "DECEASED_RECIPIENT", "红色", NEW, "2026-07-10"),
                  ("h2", "DIBAO_GAP", "橙色", NEW, "2026-07-10"),
                  ("h3", "JOBLESS", "黄色", NEW, "2026-07-10"))
    rows = triage(hits, households("h1", "h2", "h3"), RULES, PARAMS, AS_OF).set_index("户编号")
    days = {level: PARAMS.value(f"verify_days_{name}", AS_OF, "500101001201")
            for level, name in (("红色", "red"), ("橙色", "orange"), ("黄色", "yellow"))}
    for household, level in (("h1", "红色"), ("h2", "橙色"), ("h3", "黄色")):
        due = dt.date(2026, 7, 10) + dt.timedelta(days=days[level])
        assert rows.loc[household, "核实时限"] == due.isoformat()
        assert rows.loc[household, "状态"] == NEW


def test_rows_are_ordered_by_level_then_score():
    hits = listed(("low", "JOBLESS", "黄色", NEW, "2026-07-10"),
                  ("high", "JOBLESS", "黄色", NEW, "2026-07-10"),
                  ("red", "DECEASED_RECIPIENT", "红色", NEW, "2026-07-10"))
    facts = households("low", "high", "red")
    facts["risk_score"] = [41, 45, 80]
    rows = triage(hits, facts, RULES, PARAMS, AS_OF)
    assert rows["户编号"].tolist() == ["red", "high", "low"]


def test_a_household_with_only_settled_warnings_is_not_listed_and_no_file_is_made():
    hits = listed(("h1", "JOBLESS", "黄色", SETTLED, "2026-07-01"))
    rows = triage(hits, households("h1"), RULES, PARAMS, AS_OF)
    assert rows.empty
    assert list(referral_files(rows)) == []


def test_a_listed_household_without_facts_is_an_error_not_another_households_row():
    hits = listed(("h2", "JOBLESS", "黄色", NEW, "2026-07-10"))
    with pytest.raises(ValueError, match="no household facts"):
        triage(hits, households("h1", "h9"), RULES, PARAMS, AS_OF)


@pytest.mark.parametrize(("text", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+86 138", "'+86 138"),
    ("-1", "'-1"), ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\t=1", "'\t=1"),
    ("张=三", "张=三"), ("500101********001X", "500101********001X"), (" =1", "' =1"),
    ("\r\n@x", "'\r\n@x"),
])
def test_formula_looking_cells_are_defused(text, expected):
    assert defuse(pd.Series([text])).tolist() == [expected]


def test_referral_file_is_utf8_with_bom_crlf_and_the_contract_headers():
    hits = listed(("h1", "JOBLESS", "黄色", NEW, "2026-07-10"))
    facts = households("h1")
    facts["head_name"] = "=1+1"
    facts["region_code"] = "500101001201\r\n"  # a line break never splits a row
    content = referral_csv(triage(hits, facts, RULES, PARAMS, AS_OF))
    assert content.startswith(b"\xef\xbb\xbf")
    lines = content.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ",".join(REFERRAL_HEADERS)
    back = pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", dtype=str)
    assert len(back) == 1
    assert back.loc[0, "户主姓名"] == "'=1+1"
    assert back.loc[0, "户主身份证号"] == "500101********001X"
    assert back.loc[0, "村(社区)"] == "500101001201 "
    starts = back.fillna("").map(lambda cell: cell[:1])
    assert not starts.isin(["=", "+", "-", "@"]).any().any()


def test_warnings_table_spreads_each_rules_evidence_into_columns():
    hits = pd.DataFrame({
        "household_id": ["h1", "h2"], "rule": ["DIBAO_GAP", "JOBLESS"],
        "evidence": ['{"per_capita_income": 500.5, "income_assess_date": "2026-06-01", '
                     '"rule": "x"}', '{"working_age_living": 2, "in_dibao": false}']})
    table = warnings_table(hits).to_pandas()
    assert table.loc[0, "per_capita_income"] == 500.5
    assert pd.isna(table.loc[1, "per_capita_income"])
    assert table.loc[1, "working_age_living"] == 2 and pd.isna(table.loc[0, "working_age_living"])
    assert table.loc[1, "in_dibao"] is False
    assert table.loc[0, "evidence_rule"] == "x"  # a clashing name is prefixed
    assert table.loc[0, "evidence"] == hits.loc[0, "evidence"]


def test_warnings_table_keeps_row_order_and_unifies_a_field_typed_differently_by_two_rules():
    hits = pd.DataFrame({
        "household_id": ["h1", "h2", "h3"], "rule": ["JOBLESS", "DIBAO_GAP", "JOBLESS"],
        "evidence": ['{"amount": 1}', '{"amount": 2.5}', '{"amount": 3}']})
    table = warnings_table(hits).to_pandas()
    assert table["household_id"].tolist() == ["h1", "h2", "h3"]
    assert table["amount"].tolist() == [1.0, 2.5, 3.0]


def test_rules_only_score_is_validated():
    assert RulesOnlyScore.from_definition(load_scoring()).cap == 100
    with pytest.raises(RuleError, match="rules_only_score: base must give a score"):
        RulesOnlyScore.from_definition({"base": {"红色": 80}, "per_further_hit": 5, "cap": 100})
    with pytest.raises(RuleError, match="whole numbers from 0 to 100"):
        RulesOnlyScore.from_definition({"base": {"红色": 80, "橙色": 60, "黄色": 140},
                                        "per_further_hit": 5, "cap": 100})
