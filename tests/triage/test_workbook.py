"""The township workbook: a list caseworkers work in a spreadsheet, whose answers come back.

One synthetic population in three townships is run for a night; the
workbooks it writes are read back with openpyxl (sheets, columns, text
cells, drop-downs, protection, print setup), then answered, re-saved by
LibreOffice as a caseworker's spreadsheet would, delivered as feedback, and
the next night's lists, receipt and manifest are checked.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.ingest import ingest_landing
from monitor.io.outputs import warning_history
from monitor.triage.referrals import REFERRAL_HEADERS
from monitor.triage.workbook import (
    ACTIONS,
    ANSWER_HEADERS,
    BEFORE_LISTING,
    DID_NOTHING,
    GUIDE_SHEET,
    RECEIPT_SHEET,
    TOWNSHIP_MARKER,
    UNKNOWN_WARNING,
    VERIFICATIONS,
    VERIFY_COLUMNS,
    VERIFY_SHEET,
    VISIT_COLUMNS,
    VISIT_SHEET,
)

DAY = dt.date(2026, 6, 30)
ANSWER_DAY, NEXT = DAY + dt.timedelta(days=2), DAY + dt.timedelta(days=3)
CODE_COLUMNS = ("预警编号", "村(社区)", "户编号", "户主身份证号")
ROSTERS = {"LEFT_BEHIND_ELDER", "LEFT_BEHIND_CHILD"}
runner = CliRunner()


def run(home: Path, day: dt.date) -> None:
    result = runner.invoke(app, ["run", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output


def referrals(home: Path, day: dt.date) -> Path:
    return home / "out" / day.isoformat() / "referrals"


def csv_rows(home: Path, day: dt.date) -> pd.DataFrame:
    return pd.concat([pd.read_csv(path, dtype=str, encoding="utf-8-sig")
                      for path in sorted(referrals(home, day).glob("*/*.csv"))],
                     ignore_index=True)


def sheet_frame(sheet) -> pd.DataFrame:
    values = list(sheet.iter_rows(values_only=True))
    return pd.DataFrame(values[1:], columns=values[0])


@pytest.fixture
def night(night_home) -> Path:
    """Three townships after the night of DAY (:func:`conftest.night_home`)."""
    return night_home


def test_a_workbook_beside_each_referral_file_with_its_four_sheets(night):
    folder = referrals(night, DAY)
    csvs = sorted(path.with_suffix("") for path in folder.glob("*/*.csv"))
    assert csvs and sorted(path.with_suffix("") for path in folder.glob("*/*.xlsx")) == csvs
    book = openpyxl.load_workbook(folder / "500101" / "500101001.xlsx")
    assert book.sheetnames == [VERIFY_SHEET, VISIT_SHEET, RECEIPT_SHEET, GUIDE_SHEET]
    verify, visit = book[VERIFY_SHEET], book[VISIT_SHEET]
    assert [cell.value for cell in verify[1]] == VERIFY_COLUMNS
    assert len(VERIFY_COLUMNS) == 23 and VERIFY_COLUMNS[:17] == REFERRAL_HEADERS
    assert [cell.value for cell in visit[1]] == VISIT_COLUMNS
    assert {"上次探访日期", "应探访日期"} <= set(VISIT_COLUMNS)


def test_the_sheets_split_the_csv_into_warnings_to_verify_and_visits_due(night):
    csv = csv_rows(night, DAY)
    verify, visit = [], []
    for path in sorted(referrals(night, DAY).glob("*/*.xlsx")):
        book = openpyxl.load_workbook(path)
        verify.append(sheet_frame(book[VERIFY_SHEET]))
        visit.append(sheet_frame(book[VISIT_SHEET]))
    verify, visit = pd.concat(verify), pd.concat(visit)
    assert len(verify) and len(visit)
    assert not verify["触发规则"].str.split(";").map(ROSTERS.intersection).any()
    assert visit["触发规则"].str.split(";").map(lambda codes: set(codes) <= ROSTERS).all()
    # Every household of the CSV is on one sheet or both, and no one else is.
    assert set(verify["户编号"]) | set(visit["户编号"]) == set(csv["户编号"])
    assert (visit["上次探访日期"].isna()).all()  # nobody visited yet: due since first listed
    assert (visit["应探访日期"] == DAY.isoformat()).all()
    assert set(verify["是否逾期"]) <= {"是", "否"}


def test_code_cells_are_text_and_the_answer_cells_are_open_with_drop_downs(night):
    path = referrals(night, DAY) / "500101" / "500101001.xlsx"
    sheet = openpyxl.load_workbook(path)[VERIFY_SHEET]
    header = {cell.value: cell.column for cell in sheet[1]}
    csv = pd.read_csv(path.with_suffix(".csv"), dtype=str, encoding="utf-8-sig")
    rows = sheet.max_row - 1
    visits_only = csv["触发规则"].str.split(";").map(lambda codes: set(codes) <= ROSTERS)
    assert rows == len(csv) - visits_only.sum()
    first = {name: sheet.cell(2, column) for name, column in header.items()}
    for name in CODE_COLUMNS:
        assert first[name].data_type == "s" and isinstance(first[name].value, str), name
    assert first["户编号"].value.startswith("0") and len(first["户编号"].value) == 12
    assert first["户编号"].value in set(csv["户编号"])
    assert first["村(社区)"].value.isdigit() and len(first["村(社区)"].value) == 12
    assert "********" in first["户主身份证号"].value
    assert isinstance(first["家庭人口"].value, int | float)
    # Data cells locked, answer cells open; the sheet protected without a password.
    assert sheet.protection.sheet and not sheet.protection.password
    assert all(first[name].protection.locked for name in REFERRAL_HEADERS)
    # Answer cells take their column's format (open), written or not.
    for name in ANSWER_HEADERS:
        letter = openpyxl.utils.get_column_letter(header[name])
        assert not sheet.column_dimensions[letter].protection.locked, name
    assert first["是否逾期"].protection.locked
    checks = {str(check.sqref): check for check in sheet.data_validations.dataValidation}
    letter = {name: openpyxl.utils.get_column_letter(column) for name, column in header.items()}
    verified = checks[f"{letter['核实结果']}2:{letter['核实结果']}{rows + 1}"]
    assert verified.type == "list" and verified.formula1 == f'"{",".join(VERIFICATIONS)}"'
    action = checks[f"{letter['处置措施']}2:{letter['处置措施']}{rows + 1}"]
    assert action.type == "list" and action.formula1.strip('"').split(",") == list(ACTIONS)
    assert checks[f"{letter['办结日期']}2:{letter['办结日期']}{rows + 1}"].type == "date"


def test_the_list_is_frozen_filtered_and_prints_on_a4_landscape_across_one_page(night):
    sheet = openpyxl.load_workbook(referrals(night, DAY) / "500101" / "500101001.xlsx")[
        VERIFY_SHEET]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:W{sheet.max_row}"
    assert sheet.print_title_rows.replace("$", "") == "1:1"
    setup = sheet.page_setup
    assert setup.orientation == "landscape" and int(setup.paperSize) == 9
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    # fitToWidth left out means 1 (the schema default); 0 pages high means as many as needed.
    assert int(setup.fitToWidth or 1) == 1 and int(setup.fitToHeight) == 0
    assert "&P" in sheet.oddFooter.center.text and "&N" in sheet.oddFooter.center.text
    reason = openpyxl.utils.get_column_letter(VERIFY_COLUMNS.index("预警原因") + 1)
    assert sheet[f"{reason}2"].alignment.wrap_text


def test_the_guide_names_the_township_its_counts_and_every_rule(night):
    guide = openpyxl.load_workbook(referrals(night, DAY) / "500101" / "500101001.xlsx")[
        GUIDE_SHEET]
    cells = {row[0]: row[1] for row in guide.iter_rows(values_only=True) if row[0]}
    assert cells[TOWNSHIP_MARKER] == "500101001" and cells["乡镇(街道)"] == "高笋塘街道"
    assert cells["运行日期"] == DAY.isoformat()
    assert "待核查" in cells["本乡镇名单"] and "到期应探访" in cells["本乡镇名单"]
    assert "低保审核确认" in cells["DIBAO_GAP"] and "社会救助" in cells["DIBAO_GAP"]
    assert "定期探访名单" in cells["LEFT_BEHIND_ELDER"]
    receipt = openpyxl.load_workbook(referrals(night, DAY) / "500101" / "500101001.xlsx")[
        RECEIPT_SHEET]
    assert "未收到" in receipt.cell(2, 1).value


def _answer(path: Path, rows: int, visits: int, copied: list | None = None) -> dict:
    """Fill the first rows of each answer sheet; return the households answered."""
    book = openpyxl.load_workbook(path)
    answered = {}
    for name, count, action in ((VERIFY_SHEET, rows, "纳入低保"),
                                (VISIT_SHEET, visits, "定期探访")):
        sheet = book[name]
        column = {cell.value: cell.column for cell in sheet[1]}
        answered[name] = []
        for row in range(2, 2 + count):
            sheet.cell(row, column["核实结果"], "属实")
            sheet.cell(row, column["处置措施"], action)
            sheet.cell(row, column["办结日期"], dt.datetime.combine(ANSWER_DAY, dt.time()))
            sheet.cell(row, column["经办人"], "李娜")
            answered[name].append(sheet.cell(row, column["户编号"]).value)
    sheet = book[VERIFY_SHEET]
    column = {cell.value: cell.column for cell in sheet[1]}
    # Dated before the household was listed: accepted as a row, but it settles nothing.
    early = 2 + rows
    for name, value in (("核实结果", "属实"), ("处置措施", "无需救助"),
                        ("办结日期", dt.datetime.combine(DAY - dt.timedelta(days=30),
                                                       dt.time()))):
        sheet.cell(early, column[name], value)
    answered["early"] = [sheet.cell(early, column["户编号"]).value]
    # A row with a mistyped warning number: refused as naming no warning.
    unknown = [cell.value for cell in sheet[2]]
    unknown[0] = "YJ000000000000000"
    appended = [unknown] + ([copied] if copied is not None else [])
    for values in appended:
        sheet.append(values)
        for name, value in (("核实结果", "属实"), ("处置措施", "无需救助"),
                            ("办结日期", dt.datetime.combine(ANSWER_DAY, dt.time()))):
            sheet.cell(sheet.max_row, column[name], value)
    book.save(path)
    return answered


def _resave_with_libreoffice(path: Path, target: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed here; .ci/run installs it with "
                    "apt-get install libreoffice-calc-nogui")
    work = path.parent / "resaved"
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{work}/profile",
                    "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(work),
                    str(path)], check=True, capture_output=True, timeout=180)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(work / path.name, target)


def test_a_workbook_answered_and_saved_by_libreoffice_comes_back_by_itself(night, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(night, home)
    township = referrals(home, DAY) / "500101" / "500101001.xlsx"
    other = openpyxl.load_workbook(referrals(home, DAY) / "500102" / "500102001.xlsx")[
        VERIFY_SHEET]
    copied = [cell.value for cell in other[2]]
    work = tmp_path / "caseworker" / "高笋塘 6月核查（已填）.xlsx"
    work.parent.mkdir()
    shutil.copy(township, work)
    answered = _answer(work, rows=2, visits=1, copied=copied)
    delivered = home / "landing" / "feedback" / ANSWER_DAY.isoformat() / "回复.xlsx"
    _resave_with_libreoffice(work, delivered)
    run(home, ANSWER_DAY)

    listed = csv_rows(home, ANSWER_DAY).set_index("户编号")
    before = csv_rows(home, DAY).set_index("户编号")
    history = warning_history(home)
    closed = history[history["event"] == "closed_by_feedback"]
    for household in answered[VERIFY_SHEET]:
        mine = closed[closed["household_id"] == household]
        assert len(mine) and set(mine["verified"]) == {"属实"}
        assert set(mine["action"]) == {"纳入低保"}
        still = listed.loc[household, "触发规则"].split(";") if household in listed.index else []
        assert set(still) <= {"LEFT_BEHIND_ELDER", "LEFT_BEHIND_CHILD"}
    visited = history[history["event"] == "visited"]
    assert set(visited["household_id"]) == set(answered[VISIT_SHEET])
    untouched = set(before.index) - set(answered[VERIFY_SHEET]) - set(answered[VISIT_SHEET])
    assert untouched and (listed.loc[sorted(untouched & set(listed.index)), "状态"] == "持续").all()
    assert copied[4] in listed.index  # the other township's household: unchanged
    assert copied[4] not in set(closed["household_id"])

    manifest = json.loads((home / "out" / ANSWER_DAY.isoformat() / "run_manifest.json")
                          .read_text("utf-8"))
    entry = next(item for item in manifest["inputs"] if item["file"].endswith("回复.xlsx"))
    # The answers, the early one, the mistyped one and the other township's row.
    taken = len(answered[VERIFY_SHEET]) + len(answered[VISIT_SHEET])
    answered_rows = taken + 3
    assert (entry["rows_read"], entry["rows_quarantined"]) == (answered_rows, 1)
    book = openpyxl.load_workbook(township)
    listed_rows = book[VERIFY_SHEET].max_row - 1 + book[VISIT_SHEET].max_row - 1
    assert entry["rows_unanswered"] == listed_rows - (taken + 1)
    quarantine = pd.concat(pd.read_parquet(path) for path in
                           (home / "quarantine" / "feedback").glob("*.parquet"))
    assert quarantine["_reason"].tolist() == ["other_township"]

    receipt = sheet_frame(openpyxl.load_workbook(
        referrals(home, ANSWER_DAY) / "500101" / "500101001.xlsx")[RECEIPT_SHEET])
    assert receipt["结果"].value_counts().to_dict() == {"已采用": taken, "未采用": 3}
    refused = receipt[receipt["结果"] == "未采用"].set_index("户编号")["说明"]
    assert "其他乡镇" in refused[copied[4]]
    # Dated before its warning was listed: refused with that reason, and counted apart.
    assert refused[answered["early"][0]] == (
        f"{BEFORE_LISTING}（{DAY.isoformat()}），未采用：请核对办结日期")
    assert manifest["feedback"]["answers_dated_before_listing"] == 1
    assert manifest["feedback"]["answers_refused"] == 3
    assert (refused == UNKNOWN_WARNING).sum() == 1
    assert (receipt.loc[receipt["结果"] == "未采用", "工作表"] == VERIFY_SHEET).all()
    said = receipt.loc[receipt["结果"] == "已采用", "说明"]
    assert said.str.fullmatch(r"已按核实结果关闭核查预警\d+条|已记录探访").all()
    assert said.str.startswith("已按核实结果关闭").any() and (said == "已记录探访").any()
    assert answered["early"][0] not in set(closed["household_id"])

    # The same workbook again is ingested once.
    again = home / "landing" / "feedback" / NEXT.isoformat() / "again.xlsx"
    again.parent.mkdir(parents=True)
    shutil.copy(delivered, again)
    assert [outcome.status for outcome in ingest_landing(home, NEXT).files] == ["duplicate"]


def test_workbooks_made_in_worker_processes_are_the_bytes_made_in_one(night, tmp_path):
    from monitor.io.config import load_rule_definitions
    from monitor.io.outputs import write_workbooks
    from monitor.policy.rules import parse_rules
    from monitor.triage.workbook import TownshipWorkbooks, feedback_receipts

    rows = csv_rows(night, DAY).astype({"家庭人口": "int64", "风险评分": "int64"})
    rows = rows.assign(overdue=False, 上次探访日期="", 应探访日期=DAY.isoformat(),
                       county_code=rows["村(社区)"].str.slice(0, 6),
                       township_code=rows["村(社区)"].str.slice(0, 9))
    receipts = feedback_receipts(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(
        columns=["warning_id", "township_code", "rule"]), pd.DataFrame(
        columns=["warning_id", "household_id"]), frozenset())
    books = TownshipWorkbooks(rows, rows.iloc[:5], receipts,
                              parse_rules(load_rule_definitions()), DAY)
    one = write_workbooks(tmp_path / "one", books, workers=1)
    many = write_workbooks(tmp_path / "many", books, workers=2, parallel_rows=1)
    assert one == many == len(set(rows["township_code"]))
    files = sorted(path.relative_to(tmp_path / "one") for path in
                   (tmp_path / "one").rglob("*.xlsx"))
    assert files == sorted(path.relative_to(tmp_path / "many") for path in
                           (tmp_path / "many").rglob("*.xlsx"))
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes()


@pytest.mark.parametrize(("marker", "township"), [("500101001", "500101001"),
                                                  ("500101999", None), ("", None)])
def test_a_returned_workbook_reads_only_rows_with_a_verification_and_a_known_township(
        tmp_path, marker, township):
    from monitor.contract.sources import SOURCES
    from monitor.io.landing import _read_township_workbook

    path = tmp_path / "回复.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = VERIFY_SHEET
    sheet.append(VERIFY_COLUMNS)
    column = {name: index for index, name in enumerate(VERIFY_COLUMNS)}
    for verified, caseworker in (("属实", "李娜"), (None, "李娜"), (None, None)):
        row = [None] * len(VERIFY_COLUMNS)
        row[column["预警编号"]], row[column["户编号"]] = "YJ1", "000000000001"
        row[column["核实结果"]], row[column["经办人"]] = verified, caseworker
        sheet.append(row)
    guide = book.create_sheet(GUIDE_SHEET)
    guide.append([TOWNSHIP_MARKER, marker])
    book.save(path)

    raw = _read_township_workbook(path, SOURCES["feedback"], path.name)
    rows = pd.concat(batch.frame for batch in raw.batches)
    # A name written down the 经办人 column ahead of the visits is not an answer.
    assert rows["verified"].tolist() == ["属实"] and raw.unanswered == 2
    # An emptied or edited township cell names no township of the bureau's.
    assert raw.township == township


def test_a_refused_answer_shown_back_masks_the_id_and_phone_numbers_typed_into_it():
    from monitor.triage.workbook import feedback_receipts

    state = pd.DataFrame({"warning_id": ["YJ1"], "household_id": ["000000000001"],
                          "county_code": ["500101"], "township_code": ["500101001"],
                          "rule": ["DIBAO_GAP"]})
    quarantined = pd.DataFrame({
        "warning_id": ["YJ1"], "household_id": ["000000000001"],
        "verified": ["身份证500101199001011234"], "action": ["电话13812345678"],
        "closed_date": ["2026-07-02"], "_reason": ["not_allowed"], "_column": ["verified"],
        "_file": ["feedback/2026-07-02/回复.xlsx"], "_row": [1], "_sheet": [VERIFY_SHEET]})
    receipt = feedback_receipts(pd.DataFrame(), quarantined, state, pd.DataFrame(
        columns=["warning_id", "household_id"]), frozenset())
    row = receipt.iloc[0]
    assert row["核实结果"] == "身份证500101********1234"
    assert row["处置措施"] == "电话138****5678"
    assert row["户编号"] == "000000000001" and row["township_code"] == "500101001"


def test_an_answer_dated_before_its_warning_was_listed_is_refused_with_that_date():
    """A 办结日期 before the listing (a mistyped year, most often) is refused and says so."""
    from monitor.triage.workbook import feedback_receipts

    state = pd.DataFrame({
        "warning_id": ["YJ1", "YJ2", "YJ3"], "household_id": ["000000000001"] * 2 + ["3"],
        "county_code": ["500101"] * 3, "township_code": ["500101001"] * 3,
        "rule": ["DIBAO_GAP", "LEFT_BEHIND_ELDER", "DIBAO_GAP"],
        "first_warning_date": pd.to_datetime(["2026-06-30", "2026-06-30", "2026-06-01"])})
    accepted = pd.DataFrame({
        "warning_id": ["YJ1", "YJ2", "YJ3", "YJ1"], "household_id": ["000000000001"] * 2
        + ["3", "000000000001"], "verified": ["属实"] * 4, "action": ["纳入低保"] * 4,
        # The day before the listing, a visit a year early, and (YJ3) the listing day itself.
        "closed_date": pd.to_datetime(["2026-06-29", "2025-07-02", "2026-06-01",
                                       "2026-06-30"]),
        "_file": ["feedback/2026-07-02/回复.csv"] * 4, "_row": [1, 2, 3, 4]})
    events = pd.DataFrame({"event": ["closed_by_feedback"], "by": ["feedback YJ1"]})
    receipt = feedback_receipts(accepted, pd.DataFrame(), state, pd.DataFrame(
        columns=["warning_id", "household_id"]), frozenset({"LEFT_BEHIND_ELDER"}),
        events.iloc[:0]).set_index("行号")
    early = f"{BEFORE_LISTING}（2026-06-30），未采用：请核对办结日期"
    assert receipt.loc["2", "说明"] == receipt.loc["3", "说明"] == early
    assert receipt.loc["4", "说明"] == DID_NOTHING  # on the listing day: not early
    assert receipt.loc["5", "说明"] == DID_NOTHING
    assert (receipt["结果"] == "未采用").all()
    # The answer on the listing day that closed its warning is taken.
    taken = feedback_receipts(accepted.iloc[[3]], pd.DataFrame(), state, pd.DataFrame(
        columns=["warning_id", "household_id"]), frozenset(), events)
    assert taken["结果"].tolist() == ["已采用"]
