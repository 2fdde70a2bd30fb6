"""The household file (一户一档): `monitor household` on a planted household.

One household is planted in a small sample with a fact of every kind, the
nightly run lists it, the township answers one verification warning and one
visit roster entry, and the next night takes the answers in. The file must
show each fact with its value, the rules the run listed, the episode closed
by the answer with its 经办人, the visit, and never a full id number or phone.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from rich.cells import cell_len
from screenshot import find_chromium, screenshot
from typer.testing import CliRunner

from monitor.cli import app
from monitor.validation.idcard import make_id_numbers, mask_id_numbers

FIRST, SECOND = dt.date(2026, 6, 30), dt.date(2026, 7, 1)
PLANTED = "000000999001"
VILLAGE = "500101001212"
#: 18-character id numbers and 11-digit mobile numbers, as they would appear in any text.
FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
HEAD, SPOUSE, SON, GRANDDAUGHTER = make_id_numbers(
    np.array(["500101"] * 4),
    pd.to_datetime(["1950-03-15", "1952-08-02", "1985-05-20", "2012-09-01"]),
    np.array([11, 22, 31, 42])).tolist()
PHONES = ["13812345678", "13987654321", "15011112222", ""]
NAMES = ["王老汉", "李桂英", "王建国", "王小花"]


def _plant(home: Path, source: str, day: dt.date, rows: dict) -> None:
    folder = home / "landing" / source / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "planted.csv", index=False, encoding="utf-8-sig")


def _plant_household(home: Path) -> None:
    """One household with a fact of every kind, in the sample's latest deliveries."""
    _plant(home, "registry", FIRST, {
        "id_number": [HEAD, SPOUSE, SON, GRANDDAUGHTER], "name": NAMES,
        "household_id": PLANTED, "relation": ["户主", "配偶", "子女", "孙子女"],
        "region_code": VILLAGE, "status": ["正常", "死亡", "正常", "正常"],
        "status_date": ["", "2025-11-02", "", ""], "phone": PHONES})
    _plant(home, "assistance", FIRST, {
        "id_number": [SPOUSE, HEAD], "household_id": PLANTED, "program": ["低保", "临时救助"],
        "start_date": ["2024-01-01", "2026-05-01"], "end_date": ["", "2026-05-31"],
        "monthly_amount": ["500", "800"]})
    _plant(home, "income", dt.date(2025, 12, 30), {
        "household_id": [PLANTED], "assess_date": ["2024-09-01"], "annual_income": ["12000"],
        "employment_cost": ["0"]})
    _plant(home, "income", FIRST, {
        "household_id": [PLANTED], "assess_date": ["2025-09-10"], "annual_income": ["9600"],
        "employment_cost": ["1200"]})
    _plant(home, "rural_revitalization", FIRST, {
        "household_id": [PLANTED], "status": ["脱贫户"], "since": ["2016-01-01"],
        "risk_removed": ["否"]})
    _plant(home, "medical", FIRST, {
        "claim_id": ["PLANTED-C1", "PLANTED-C2", "PLANTED-C3"], "id_number": HEAD,
        "settle_date": ["2026-05-10", "2026-06-01", "2024-01-05"],
        "total_cost": ["1000", "50000", "300"], "out_of_pocket": ["400", "15000", "100"],
        "category": ["普通", "重特大疾病", "普通"], "inpatient": ["否", "是", "否"]})
    _plant(home, "disability", FIRST, {
        "id_number": [HEAD], "disability_type": ["肢体"], "disability_level": ["2"],
        "issue_date": ["2020-01-01"], "self_care": ["半失能"]})
    _plant(home, "employment", FIRST, {
        "id_number": [SON], "event_date": ["2026-03-01"], "event_type": ["外出务工"]})
    _plant(home, "education", FIRST, {
        "id_number": [GRANDDAUGHTER], "event_date": ["2026-04-10"], "status": ["辍学"]})
    _plant(home, "housing", FIRST, {
        "household_id": [PLANTED], "assess_date": ["2026-02-01"], "rating": ["C"]})
    _plant(home, "disaster", FIRST, {
        "event_id": ["PLANTED-D1"], "household_id": PLANTED, "event_date": ["2026-06-10"],
        "disaster_type": ["洪涝"], "loss_amount": ["3000"]})
    _plant(home, "assets", FIRST, {
        "id_number": [HEAD, HEAD, SON], "asset_type": ["机动车", "金融资产", "金融资产"],
        "asset_ref": ["渝A12345", "ACC-1", "ACC-2"], "value": ["30000", "5000", "2000"],
        "record_date": ["2025-01-01", "2025-01-01", "2025-06-01"]})


def _invoke(*arguments: str):
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


def _run(home: Path, day: dt.date) -> None:
    result = _invoke("run", "--home", home, "--date", day.isoformat())
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def household_home(tmp_path_factory, prefect_server):
    """The planted household after two nights, the township's answers taken in between."""
    from conftest import _built_once

    from monitor.io.sample_writer import write_sample

    def build(home: Path) -> None:
        write_sample(home, 40, 5, FIRST, places=("500101001",), monthly=False)
        _plant_household(home)
        _run(home, FIRST)
        listed = pd.read_parquet(home / "out" / FIRST.isoformat() / "warnings.parquet")
        listed = listed[listed["household_id"] == PLANTED].set_index("rule")["warning_id"]
        _plant(home, "feedback", SECOND, {
            "warning_id": [listed["DECEASED_RECIPIENT"], listed["LEFT_BEHIND_ELDER"]],
            "household_id": PLANTED, "verified": ["属实", "属实"],
            "action": ["调整或停发", "定期探访"], "closed_date": SECOND.isoformat(),
            "caseworker": ["张主任", "李探访"]})
        _run(home, SECOND)

    return _built_once(tmp_path_factory, "household-home", build)


@pytest.fixture(scope="module")
def planted(household_home) -> dict:
    """The planted household's file, as JSON (the test reads values, not layout)."""
    result = _invoke("household", "--home", household_home, "--id", PLANTED,
                     "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _rows(document: dict, table: str) -> list[dict]:
    return document["tables"][table]


def test_members_place_and_income_against_the_standard(planted):
    summary = planted["summary"]
    assert (summary["as_of"], summary["run_date"]) == (SECOND.isoformat(), SECOND.isoformat())
    assert (summary["county_name"], summary["township_name"]) == ("万州区", "高笋塘街道")
    assert summary["head_name"] == "王老汉"
    assert (summary["members"], summary["living_members"]) == (4, 3)
    assert summary["revitalization_status"] == "脱贫户"
    # (9,600 − 1,200) / 12 months / 3 living members, the assessment of 2025-09-10.
    assert summary["per_capita_income"] == pytest.approx(8400 / 12 / 3)
    assert summary["income_assess_date"] == "2025-09-10"
    assert summary["dibao_standard"] > 0
    assert summary["edge_standard"] > summary["dibao_standard"]
    members = {row["name"]: row for row in _rows(planted, "members")}
    assert set(members) == set(NAMES)
    assert members["王老汉"]["age"] == 76 and members["王老汉"]["relation"] == "户主"
    assert members["李桂英"]["status"] == "死亡"
    assert members["李桂英"]["status_date"] == "2025-11-02"
    assert members["王老汉"]["id_number_masked"] == mask_id_numbers(pd.Series([HEAD]))[0]
    assert members["王老汉"]["disability"] == "肢体2级"
    assert members["王建国"]["employment"] == "外出务工"
    assert members["王小花"]["schooling"] == "辍学"
    income = _rows(planted, "income")
    assert [(row["assess_date"], row["annual_income"]) for row in income] == [
        ("2024-09-01", 12000), ("2025-09-10", 9600)]


def test_programs_claims_and_every_department_s_facts(planted):
    programs = {row["program"]: row for row in _rows(planted, "programs")}
    assert programs["低保"]["name"] == "李桂英" and programs["低保"]["active"] is True
    assert programs["临时救助"]["end_date"] == "2026-05-31"
    assert programs["临时救助"]["active"] is False
    # The claim of 2024 is outside the window; the other two are totalled by category.
    medical = {row["category"]: row for row in _rows(planted, "medical")}
    assert set(medical) == {"普通", "重特大疾病"}
    assert (medical["普通"]["claims"], medical["普通"]["total_cost"],
            medical["普通"]["out_of_pocket"], medical["普通"]["inpatient"]) == (1, 1000, 400, 0)
    major = medical["重特大疾病"]
    assert (major["out_of_pocket"], major["inpatient"]) == (15000, 1)
    [disability] = _rows(planted, "disability")
    assert (disability["name"], disability["disability_type"], disability["disability_level"],
            disability["self_care"]) == ("王老汉", "肢体", 2, "半失能")
    assert [(row["name"], row["event_type"]) for row in _rows(planted, "employment")] == [
        ("王建国", "外出务工")]
    assert [(row["name"], row["status"]) for row in _rows(planted, "schooling")] == [
        ("王小花", "辍学")]
    assert [(row["rated_on"], row["rating"]) for row in _rows(planted, "housing")] == [
        ("2026-02-01", "C")]
    assert [(row["disaster_type"], row["loss_amount"]) for row in _rows(planted, "disasters")
            ] == [("洪涝", 3000)]
    assets = {row["asset_type"]: row for row in _rows(planted, "assets")}
    assert {kind: row["count"] for kind, row in assets.items()} == {"机动车": 1, "金融资产": 2}


def test_rules_are_those_the_run_listed_with_their_reasons(planted, household_home):
    rules = _rows(planted, "rules")
    listed = pd.read_parquet(household_home / "out" / SECOND.isoformat() / "warnings.parquet")
    listed = listed[listed["household_id"] == PLANTED]
    assert {row["rule"] for row in rules} == set(listed["rule"])
    assert {"DECEASED_RECIPIENT", "SCHOOL_DROPOUT", "LEFT_BEHIND_ELDER"} <= {
        row["rule"] for row in rules}
    by_rule = {row["rule"]: row for row in rules}
    assert by_rule["SCHOOL_DROPOUT"]["reason"] == listed.set_index("rule").loc[
        "SCHOOL_DROPOUT", "reason"]
    assert by_rule["SCHOOL_DROPOUT"]["rule_name"]
    # No model in this home: the rules' score, said so.
    assert planted["summary"]["risk_score"] > 0
    assert "规则" in planted["summary"]["risk_source"] and planted["risk_factors"] == []


def test_the_answer_closes_an_episode_with_its_caseworker_and_records_the_visit(planted):
    episodes = {row["rule"]: row for row in _rows(planted, "episodes")}
    closed = episodes["DECEASED_RECIPIENT"]
    assert (closed["episode"], closed["opened"], closed["closed"], closed["closed_by"]) == (
        1, FIRST.isoformat(), SECOND.isoformat(), "feedback")
    assert (closed["verified"], closed["action"], closed["caseworker"]) == (
        "属实", "调整或停发", "张主任")
    # Every verification warning of the household is settled by the one answer.
    assert episodes["SCHOOL_DROPOUT"]["closed_by"] == "feedback"
    assert episodes["LEFT_BEHIND_ELDER"]["closed"] is None  # a roster entry stays open
    feedback = {row["caseworker"]: row for row in _rows(planted, "feedback")}
    assert feedback["张主任"]["rule"] == "DECEASED_RECIPIENT"
    assert feedback["张主任"]["closed_date"] == SECOND.isoformat()
    [visit] = _rows(planted, "visits")
    assert (visit["rule"], visit["date"], visit["caseworker"]) == (
        "LEFT_BEHIND_ELDER", SECOND.isoformat(), "李探访")
    warnings = {row["rule"]: row for row in _rows(planted, "warnings")}
    assert warnings["DECEASED_RECIPIENT"]["status"] == "closed"
    assert warnings["LEFT_BEHIND_ELDER"]["last_visit_date"] == SECOND.isoformat()


def test_an_earlier_date_shows_the_household_before_the_answer(household_home):
    result = _invoke("household", "--home", household_home, "--id", PLANTED, "--date",
                     FIRST.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["summary"]["run_date"] == FIRST.isoformat()
    assert all(row["closed"] is None for row in document["tables"]["episodes"])
    assert document["tables"]["visits"] == []


@pytest.mark.parametrize("output_format", ["text", "json", "html"])
def test_no_full_id_number_or_phone_in_any_format(household_home, output_format):
    result = _invoke("household", "--home", household_home, "--id", PLANTED,
                     "--format", output_format)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "王老汉" in text
    assert not FULL_ID.findall(text) and not PHONE.findall(text)
    for secret in [HEAD, SPOUSE, SON, GRANDDAUGHTER, *filter(None, PHONES)]:
        assert secret not in text
    assert "渝A12345" not in text  # an asset is shown by type and count, not its number


def test_text_fits_80_columns_and_names_every_part(household_home):
    result = _invoke("household", "--home", household_home, "--id", PLANTED)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(cell_len, lines)) <= 80
    for heading in ("家庭成员", "救助与补贴", "医疗费用", "今日命中的预警规则", "预警经过",
                    "定期探访记录"):
        assert any(heading in line for line in lines), heading
    # A line breaks between fields, never inside one: each masked id is whole on a line.
    assert mask_id_numbers(pd.Series([HEAD]))[0] in result.stdout
    assert "经办人：张主任" in result.stdout


def test_an_id_as_the_list_shows_it_finds_the_household(household_home):
    result = _invoke("household", "--home", household_home, "--id", f"'{PLANTED}",
                     "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["household_id"] == PLANTED


def test_an_unknown_household_is_one_line_and_exit_1(household_home):
    result = _invoke("household", "--home", household_home, "--id", "999999999999")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "999999999999" in result.stderr and "registry" in result.stderr


def test_a_home_without_a_run_needs_a_date(tmp_path):
    result = _invoke("household", "--home", tmp_path, "--id", PLANTED)
    assert result.exit_code == 1
    assert "--date" in result.stderr and result.stderr.count("\n") == 1


def test_the_file_agrees_with_the_night_for_every_listed_household(household_home):
    """Read with filters, one household at a time, the facts give the run's very hits."""
    from monitor.io.config import load_parameters, load_rule_definitions, load_scoring
    from monitor.io.household import read_household
    from monitor.policy.rules import parse_rules
    from monitor.policy.scoring import RulesOnlyScore
    from monitor.reports.household import household_file

    listed = pd.read_parquet(household_home / "out" / FIRST.isoformat() / "warnings.parquet")
    params = load_parameters(household_home, FIRST)
    rules = parse_rules(load_rule_definitions())
    scoring = RulesOnlyScore.from_definition(load_scoring())
    households = sorted(set(listed["household_id"]))
    assert len(households) > 10
    for household in households:
        rows = read_household(household_home, household, FIRST)
        file = household_file(household, rows.sources, rows.income_history, rows.state,
                              rows.events, FIRST, rows.run_date, params, rules, scoring)
        mine = file.tables["rules"].set_index("rule")["reason"].sort_index()
        theirs = listed[listed["household_id"] == household].set_index("rule")[
            "reason"].sort_index()
        assert mine.to_dict() == theirs.to_dict(), household


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed")
def test_the_printed_page_shows_chinese_glyphs_not_boxes(household_home, tmp_path):
    page = tmp_path / "household.html"
    result = _invoke("household", "--home", household_home, "--id", PLANTED, "--format",
                     "html", "--output", page)
    assert result.exit_code == 0, result.output
    assert "@font-face" in page.read_text(encoding="utf-8")
    png = tmp_path / "household.png"
    screenshot(page, png, width=1000, height=700)
    image = matplotlib.image.imread(png)[..., :3]
    # The title starts 一户一档: 一 is one stroke, 档 many. Drawn as boxes (no glyphs) the
    # four would leave the same ink; as glyphs, 档 leaves several times 一's.
    dark = image[25:80].mean(axis=2) < 0.5
    inked = dark.any(axis=0)
    starts = np.flatnonzero(inked[1:] & ~inked[:-1]) + 1
    ends = np.flatnonzero(~inked[1:] & inked[:-1]) + 1
    glyphs = [int(dark[:, start:end].sum()) for start, end in zip(starts, ends, strict=False)]
    assert len(glyphs) >= 4
    first_yi, dang = glyphs[0], glyphs[3]
    assert dang > 3 * first_yi
