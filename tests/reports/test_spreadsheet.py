"""A referral file opened by a real spreadsheet program (LibreOffice, headless).

Converts a referral CSV to XLSX with LibreOffice and reads the cells back:
the Chinese text is intact, the masked id stays text, and no cell became a
formula. A control file with a raw ``=1+1`` shows that the conversion does
evaluate formulas, so the test can fail. ``.ci/run`` installs LibreOffice;
where it is absent the tests are skipped with that reason.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from monitor.io.config import load_parameters, load_rule_definitions
from monitor.policy.rules import parse_rules
from monitor.triage.lifecycle import NEW
from monitor.triage.referrals import REFERRAL_HEADERS, referral_csv, triage

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed here; .ci/run installs it "
    "with apt-get install libreoffice-calc-nogui")
# The import dialog's choices, as a caseworker makes them in LibreOffice: comma, double
# quote, UTF-8 (76), from row 1. (Excel and WPS read the file's BOM as UTF-8 themselves.)
CSV_IMPORT = "CSV:44,34,76,1"


def convert(csv: Path) -> list[list[openpyxl.cell.cell.Cell]]:
    """Open ``csv`` in LibreOffice, save it as XLSX, and return the cells."""
    profile = csv.parent / "libreoffice-profile"
    subprocess.run([SOFFICE, "--headless", "--norestore",
                    f"-env:UserInstallation={profile.as_uri()}", f"--infilter={CSV_IMPORT}",
                    "--convert-to", "xlsx", "--outdir", str(csv.parent), str(csv)],
                   check=True, capture_output=True, timeout=180)
    sheet = openpyxl.load_workbook(csv.with_suffix(".xlsx")).active
    return [list(row) for row in sheet.iter_rows()]


def hostile_referrals() -> pd.DataFrame:
    """Two households whose delivered names look like formulas."""
    as_of = dt.date(2026, 7, 10)
    hits = pd.DataFrame({
        "household_id": ["0001", "0002"], "rule": ["DIBAO_GAP", "JOBLESS"],
        "level": ["橙色", "黄色"], "status": [NEW, NEW],
        "reason": ["家庭月人均收入470元，低于低保标准680元", "最近就业事件均为失业登记"],
        "warning_id": ["YJ0123456789ABCDEF", "YJ00000000000000E1"],
        "first_warning_date": pd.to_datetime([as_of, as_of])})
    households = pd.DataFrame({
        "region_code": "500101001201", "county_code": "500101", "township_code": "500101001",
        "head_name": ["=1+1", "@SUM(1,2)"], "head_id_number": ["50010119800715001X",
                                                             "500101195001010023"],
        "living_members": [3, 1], "risk_score": [60, 40]},
        index=pd.Index(["0001", "0002"], name="household_id"))
    return triage(hits, households, parse_rules(load_rule_definitions()), load_parameters(),
                  as_of)


def test_libreoffice_keeps_chinese_text_masked_ids_and_evaluates_no_formula(tmp_path):
    csv = tmp_path / "500101001.csv"
    csv.write_bytes(referral_csv(hostile_referrals()))
    rows = convert(csv)
    assert [cell.value for cell in rows[0]] == REFERRAL_HEADERS
    by_header = [dict(zip(REFERRAL_HEADERS, row, strict=True)) for row in rows[1:]]
    assert [row["户主身份证号"].value for row in by_header] == [
        "500101********001X", "500101********0023"]
    assert all(row["户主身份证号"].data_type == "s" for row in by_header)
    assert by_header[0]["预警原因"].value == (
        "【收入低于低保标准未纳入低保】家庭月人均收入470元，低于低保标准680元")
    assert by_header[0]["区县"].value == "万州区"
    assert [row["户主姓名"].value for row in by_header] == ["'=1+1", "'@SUM(1,2)"]
    assert [row["预警编号"].value for row in by_header] == ["YJ0123456789ABCDEF",
                                                           "YJ00000000000000E1"]
    assert not [cell.coordinate for row in rows for cell in row if cell.data_type == "f"]


def test_control_a_raw_formula_is_evaluated(tmp_path):
    csv = tmp_path / "control.csv"
    csv.write_bytes("\ufeff姓名\r\n=1+1\r\n".encode())
    assert convert(csv)[1][0].data_type == "f"
