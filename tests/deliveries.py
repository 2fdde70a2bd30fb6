"""A few valid rows of every contract source, and a writer of delivered files in each format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.contract.sources import SOURCES
from monitor.validation.idcard import make_id_numbers

DELIVERY = dt.date(2024, 6, 30)
REGION = "500101001201"  # 高笋塘街道, 万州区, village 201
OTHER_REGION = "500102001201"  # 涪陵区


def ids(*births: str, sequence: int = 11) -> list[str]:
    """Valid id numbers for the given birth dates (address 500101, odd sequence: men)."""
    n = len(births)
    return make_id_numbers(np.array(["500101"] * n), pd.to_datetime(list(births)),
                           np.arange(sequence, sequence + 2 * n, 2)).tolist()


PERSON_IDS = ids("1950-03-01", "1980-07-15", "2010-01-20")

#: Three good rows of each source, as text, with contract (English) headers.
GOOD_ROWS: dict[str, dict[str, list[str]]] = {
    "registry": {
        "id_number": PERSON_IDS, "name": ["张三", "李四", "王五"],
        "household_id": ["0001", "0001", "0002"], "relation": ["户主", "子女", "户主"],
        "region_code": [REGION, REGION, OTHER_REGION], "status": ["正常", "死亡", "正常"],
        "status_date": ["", "2024-03-01", ""], "phone": ["13800000001", "", ""],
    },
    "assistance": {
        "id_number": PERSON_IDS, "household_id": ["0001", "0001", "0002"],
        "program": ["低保", "特困", "低保边缘"],
        "start_date": ["2022-01-01", "2023/05/01", "20240101"],
        "end_date": ["", "2024-12-31", ""], "monthly_amount": ["600", "850.5", "0"],
    },
    "income": {
        "household_id": ["0001", "0002", "0003"],
        "assess_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "annual_income": ["12000", "8000.5", "0"], "employment_cost": ["1000", "", "0"],
    },
    "rural_revitalization": {
        "household_id": ["0001", "0002", "0003"],
        "status": ["脱贫户", "脱贫不稳定户", "边缘易致贫户"],
        "since": ["2020-01-01", "2021-06-01", "2023-01-01"], "risk_removed": ["是", "否", ""],
    },
    "medical": {
        "claim_id": ["C1", "C2", "C3"], "id_number": PERSON_IDS,
        "settle_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "total_cost": ["1000", "50000", "200"], "out_of_pocket": ["300", "20000", "200"],
        "category": ["普通", "重特大疾病", ""], "inpatient": ["N", "Y", ""],
    },
    "disability": {
        "id_number": PERSON_IDS, "disability_type": ["肢体", "精神", "视力"],
        "disability_level": ["1", "三级", "4"], "issue_date": ["2010-01-01", "", "2020-05-05"],
        "self_care": ["失能", "半失能", ""],
    },
    "employment": {
        "id_number": PERSON_IDS, "event_date": ["2023-01-01", "2023-02-01", "2024-01-01"],
        "event_type": ["外出务工", "返乡", "失业登记"],
    },
    "education": {
        "id_number": PERSON_IDS, "event_date": ["2023-09-01", "2023-09-01", "2024-03-01"],
        "status": ["在读", "毕业", "辍学"],
    },
    "housing": {
        "household_id": ["0001", "0002", "0003"],
        "assess_date": ["2023-01-01", "2023-06-01", "2024-01-01"], "rating": ["A", "C", "D"],
    },
    "disaster": {
        "event_id": ["E1", "E2", "E3"], "household_id": ["0001", "0002", "0003"],
        "event_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "disaster_type": ["洪涝", "火灾", "其他"], "loss_amount": ["5000", "120000", "0"],
    },
    "assets": {
        "id_number": PERSON_IDS, "asset_type": ["机动车", "商品房", "金融资产"],
        "asset_ref": ["渝A12345", "P-001", "6222000011112222"],
        "value": ["50000", "300000", "12000.5"],
        "record_date": ["2020-01-01", "2021-01-01", "2024-01-01"],
    },
    "feedback": {
        "warning_id": ["W1", "W2", "W3"], "household_id": ["0001", "0002", "0003"],
        "verified": ["属实", "不属实", "属实"], "action": ["纳入低保", "无需救助", "定期探访"],
        "closed_date": ["2024-05-01", "2024-05-02", "2024-05-03"],
        "caseworker": ["赵六", "", "钱七"],
    },
}


def good_frame(source: str, chinese: bool = False) -> pd.DataFrame:
    """The good rows of a source as a text DataFrame, headers in English or Chinese."""
    frame = pd.DataFrame(GOOD_ROWS[source], dtype="string")
    if chinese:
        aliases = {spec.name: spec.zh for spec in SOURCES[source].columns}
        frame = frame.rename(columns=aliases)
    return frame


def write_delivery(home: Path, source: str, frame: pd.DataFrame, delivery: dt.date = DELIVERY,
                   fmt: str = "csv", name: str = "data") -> Path:
    """Write a frame as a delivered file: csv (utf-8), csv-bom, gb18030, xlsx or parquet."""
    folder = home / "landing" / source / delivery.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "csv-bom", "gb18030"):
        path = folder / f"{name}.csv"
        encoding = {"csv": "utf-8", "csv-bom": "utf-8-sig", "gb18030": "gb18030"}[fmt]
        frame.to_csv(path, index=False, encoding=encoding)
    elif fmt == "xlsx":
        path = folder / f"{name}.xlsx"
        frame.to_excel(path, index=False)
    else:
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
    return path


def workbook_with_an_id_cell_that_crashes_the_reader(path: Path) -> None:
    """An XLSX whose id cell is typed a number but holds 11010519491231002X (as seen)."""
    import io
    import re
    import zipfile

    import pytest

    buffer = io.BytesIO()
    good_frame("registry").to_excel(buffer, index=False)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<c r="A2"[^>]*>.*?</c>',
                              b'<c r="A2" t="n"><v>11010519491231002X</v></c>', data, count=1)
            target.writestr(item, data)
    with pytest.raises(ValueError, match="11010519491231002X"):  # the reader's own message
        pd.read_excel(path, dtype=str)
