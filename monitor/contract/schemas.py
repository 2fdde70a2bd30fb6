"""The typed schema of every contract source, declared once with pandera.

Each model is the contract's table (DATA_CONTRACT.md section 3) after parsing:
column names are the English names, ``metadata`` carries the Chinese alias
(``zh``), how the raw text is parsed (``parse``) and whether the column must be
present in a delivery (``required``). Ingest derives header aliases, parsers,
code lists and row checks from these models; nothing else restates them.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

ID_PATTERN = r"^[0-9]{17}[0-9X]$"
REGION_PATTERN = r"^[0-9]{12}$"

RELATIONS = ["户主", "配偶", "子女", "父母", "祖父母", "孙子女", "兄弟姐妹", "其他"]
PERSON_STATUSES = ["正常", "死亡", "迁出"]
PROGRAMS = [
    "低保", "特困", "低保边缘", "临时救助", "残疾人生活补贴", "残疾人护理补贴",
    "孤儿基本生活费", "事实无人抚养儿童生活补贴",
]
REVITALIZATION_STATUSES = ["脱贫户", "脱贫不稳定户", "边缘易致贫户", "突发严重困难户"]
MEDICAL_CATEGORIES = ["普通", "门诊慢特病", "重特大疾病"]
DISABILITY_TYPES = ["视力", "听力", "言语", "肢体", "智力", "精神", "多重"]
DISABILITY_LEVELS = [1, 2, 3, 4]
SELF_CARE = ["完全自理", "半失能", "失能"]
EMPLOYMENT_EVENTS = ["就业登记", "失业登记", "外出务工", "返乡"]
SCHOOL_STATUSES = ["在读", "辍学", "休学", "毕业"]
HOUSING_RATINGS = ["A", "B", "C", "D"]
DISASTER_TYPES = ["洪涝", "地质灾害", "火灾", "风雹", "干旱", "其他"]
ASSET_TYPES = ["机动车", "商品房", "工商登记", "金融资产"]
VERIFICATIONS = ["属实", "不属实"]
ACTIONS = [
    "纳入低保", "纳入特困", "纳入低保边缘", "临时救助", "医疗救助", "残疾人补贴",
    "定期探访", "转介其他部门", "调整或停发", "无需救助",
]


def _field(zh: str, parse: str, *, required: bool, **checks) -> object:
    """A column: Chinese alias, parser kind, and whether the contract requires it."""
    return pa.Field(
        nullable=not required,
        metadata={"zh": zh, "parse": parse, "required": required},
        **checks,
    )


def _id(zh: str = "身份证号") -> object:
    return _field(zh, "id", required=True, str_matches=ID_PATTERN)


def _text(zh: str, *, required: bool = True) -> object:
    return _field(zh, "text", required=required)


def _code(zh: str, codes: list, *, required: bool = True) -> object:
    return _field(zh, "code", required=required, isin=codes)


def _date(zh: str, *, required: bool = True) -> object:
    return _field(zh, "date", required=required)


def _money(zh: str, *, required: bool = True) -> object:
    return _field(zh, "money", required=required, ge=0)


def _yes_no(zh: str) -> object:
    return _field(zh, "bool", required=False)


class SourceModel(pa.DataFrameModel):
    """Shared configuration: ingest coerces with reasons, so pandera only checks."""

    class Config:
        coerce = False
        strict = False


class Registry(SourceModel):
    """registry — 户籍人口 (公安), snapshot, key id_number."""

    id_number: Series[str] = _id()
    name: Series[str] = _text("姓名")
    household_id: Series[str] = _text("户编号")
    relation: Series[str] = _code("与户主关系", RELATIONS)
    region_code: Series[str] = _field(
        "行政区划代码", "region", required=True, str_matches=REGION_PATTERN
    )
    status: Series[str] = _code("人口状态", PERSON_STATUSES)
    status_date: Series[pd.Timestamp] = _date("状态变更日期", required=False)
    phone: Series[str] = _text("联系电话", required=False)


class Assistance(SourceModel):
    """assistance — 救助对象 (民政), snapshot, key (id_number, program, start_date)."""

    id_number: Series[str] = _id()
    household_id: Series[str] = _text("户编号")
    program: Series[str] = _code("救助类别", PROGRAMS)
    start_date: Series[pd.Timestamp] = _date("起始日期")
    end_date: Series[pd.Timestamp] = _date("终止日期", required=False)
    monthly_amount: Series[float] = _money("月发放金额", required=False)

    @pa.dataframe_check(name="end_before_start")
    def end_not_before_start(cls, df: pd.DataFrame) -> Series[bool]:
        """A spell cannot end before it starts."""
        return ~(df["end_date"] < df["start_date"]).fillna(False).astype(bool)


class Income(SourceModel):
    """income — 家庭收入核算 (民政), snapshot, key household_id."""

    household_id: Series[str] = _text("户编号")
    assess_date: Series[pd.Timestamp] = _date("核算日期")
    annual_income: Series[float] = _money("家庭年收入")
    employment_cost: Series[float] = _money("必要就业成本", required=False)


class RuralRevitalization(SourceModel):
    """rural_revitalization — 脱贫户与监测对象 (乡村振兴), snapshot, key household_id."""

    household_id: Series[str] = _text("户编号")
    status: Series[str] = _code("户类型", REVITALIZATION_STATUSES)
    since: Series[pd.Timestamp] = _date("认定日期")
    risk_removed: Series[pd.BooleanDtype] = _yes_no("风险消除")


class Medical(SourceModel):
    """medical — 医保结算 (医保), events, key claim_id."""

    claim_id: Series[str] = _text("结算单号")
    id_number: Series[str] = _id()
    settle_date: Series[pd.Timestamp] = _date("结算日期")
    total_cost: Series[float] = _money("医疗总费用")
    out_of_pocket: Series[float] = _money("个人自付")
    category: Series[str] = _code("病种类别", MEDICAL_CATEGORIES, required=False)
    inpatient: Series[pd.BooleanDtype] = _yes_no("住院")

    @pa.dataframe_check(name="out_of_pocket_above_total")
    def out_of_pocket_within_total(cls, df: pd.DataFrame) -> Series[bool]:
        """Out-of-pocket cost is part of the total cost, never more."""
        return ~(df["out_of_pocket"] > df["total_cost"]).fillna(False).astype(bool)


class Disability(SourceModel):
    """disability — 残疾人证 (残联), snapshot, key id_number."""

    id_number: Series[str] = _id()
    disability_type: Series[str] = _code("残疾类别", DISABILITY_TYPES)
    disability_level: Series[pd.Int8Dtype] = _field(
        "残疾等级", "level", required=True, isin=DISABILITY_LEVELS
    )
    issue_date: Series[pd.Timestamp] = _date("发证日期", required=False)
    self_care: Series[str] = _code("自理能力", SELF_CARE, required=False)


class Employment(SourceModel):
    """employment — 就业失业 (人社), events, key (id_number, event_date, event_type)."""

    id_number: Series[str] = _id()
    event_date: Series[pd.Timestamp] = _date("事件日期")
    event_type: Series[str] = _code("事件类型", EMPLOYMENT_EVENTS)


class Education(SourceModel):
    """education — 学籍 (教育), events, key (id_number, event_date)."""

    id_number: Series[str] = _id()
    event_date: Series[pd.Timestamp] = _date("变动日期")
    status: Series[str] = _code("学籍状态", SCHOOL_STATUSES)


class Housing(SourceModel):
    """housing — 农房安全鉴定 (住建), snapshot, key household_id."""

    household_id: Series[str] = _text("户编号")
    assess_date: Series[pd.Timestamp] = _date("鉴定日期")
    rating: Series[str] = _code("鉴定等级", HOUSING_RATINGS)


class Disaster(SourceModel):
    """disaster — 受灾 (应急管理), events, key event_id."""

    event_id: Series[str] = _text("灾情编号")
    household_id: Series[str] = _text("户编号")
    event_date: Series[pd.Timestamp] = _date("受灾日期")
    disaster_type: Series[str] = _code("灾害类型", DISASTER_TYPES)
    loss_amount: Series[float] = _money("直接经济损失")


class Assets(SourceModel):
    """assets — 家庭经济状况核对, snapshot, key (id_number, asset_type, asset_ref)."""

    id_number: Series[str] = _id()
    asset_type: Series[str] = _code("资产类型", ASSET_TYPES)
    asset_ref: Series[str] = _text("资产编号")
    value: Series[float] = _money("价值")
    record_date: Series[pd.Timestamp] = _date("登记日期")


class Feedback(SourceModel):
    """feedback — 处置反馈 (乡镇), events, key warning_id."""

    warning_id: Series[str] = _text("预警编号")
    household_id: Series[str] = _text("户编号")
    verified: Series[str] = _code("核实结果", VERIFICATIONS)
    action: Series[str] = _code("处置措施", ACTIONS)
    closed_date: Series[pd.Timestamp] = _date("办结日期")
    caseworker: Series[str] = _text("经办人", required=False)
