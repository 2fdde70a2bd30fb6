"""The household file (一户一档) shown three ways: text for a terminal, JSON, a printable page.

Pure: each takes a :class:`monitor.reports.household.HouseholdFile`. The text fits an
80-column terminal (each row of a table is one entry, its fields wrapped,
never cut); the JSON keeps the file's English names and ISO dates; the page
is the report's style (:func:`monitor.reports.html.render_html`), one
section per kind of fact, for a caseworker to print.
"""

from __future__ import annotations

import io
import json

import pandas as pd
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from monitor.reports.household import HouseholdFile
from monitor.reports.html import MISSING, Section, readable_table, render_html

TEXT_WIDTH = 80
TITLE = "一户一档"

#: Each table's heading, in the order shown.
TABLE_TITLES = {
    "members": "家庭成员", "programs": "救助与补贴", "income": "家庭收入核算",
    "medical": "医疗费用（统计期内，按病种类别）", "disability": "残疾人证",
    "employment": "就业失业", "schooling": "学籍", "housing": "农房安全鉴定",
    "disasters": "受灾记录", "assets": "家庭财产（类型与数量）",
    "rules": "今日命中的预警规则", "warnings": "预警记录", "episodes": "预警经过（每次列入与办结）",
    "feedback": "乡镇处置反馈", "visits": "定期探访记录",
}
#: Column headings in Chinese (one name means one thing in every table).
HEADERS = {
    "name": "姓名", "relation": "与户主关系", "sex": "性别", "age": "年龄", "status": "状态",
    "status_date": "状态变更日期", "id_number_masked": "身份证号（脱敏）", "disability": "残疾",
    "employment": "最近就业事件", "schooling": "学籍状态", "program": "救助类别",
    "start_date": "起始日期", "end_date": "终止日期", "monthly_amount": "月发放金额（元）",
    "active": "当日在享", "assess_date": "核算日期", "rated_on": "鉴定日期",
    "annual_income": "家庭年收入（元）",
    "employment_cost": "必要就业成本（元）", "delivery_date": "报送日期",
    "category": "病种类别", "claims": "结算笔数", "inpatient": "住院笔数",
    "total_cost": "医疗总费用（元）", "out_of_pocket": "个人自付（元）",
    "disability_type": "残疾类别", "disability_level": "残疾等级", "self_care": "自理能力",
    "issue_date": "发证日期", "event_date": "日期", "event_type": "事件类型",
    "rating": "鉴定等级", "disaster_type": "灾害类型", "loss_amount": "直接经济损失（元）",
    "asset_type": "资产类型", "count": "数量", "value": "登记价值合计（元）",
    "rule": "规则代码", "rule_name": "规则名称", "level": "预警等级", "reason": "预警原因",
    "person_id_masked": "涉及成员（脱敏）", "warning_id": "预警编号",
    "first_warning_date": "首次预警日期", "last_seen_date": "最近命中日期",
    "closed_date": "办结日期", "closed_by": "关闭方式", "verified": "核实结果",
    "action": "处置措施", "last_visit_date": "最近探访日期", "episode": "第几次列入",
    "opened": "列入日期", "closed": "关闭日期", "caseworker": "经办人", "date": "探访日期",
}
#: Codes shown by name.
VALUES = {
    "status": {"open": "未办结", "closed": "已关闭"},
    "closed_by": {"run": "规则不再命中", "feedback": "乡镇反馈"},
}
_WARNING_TABLES = ("warnings", "episodes", "feedback", "visits")
#: Columns the text and the page leave to the JSON: rule codes (their names are shown), and
#: how each warning closed (its episodes show that, with the answer and 经办人).
HIDDEN = {"rule"}
HIDDEN_IN = {"warnings": {"closed_date", "closed_by", "verified", "action"}}


def _number_text(column: pd.Series) -> pd.Series:
    """Numbers as a person reads them: whole ones without decimals, others to the fen."""
    values = column.astype("float64")
    whole = (values.dropna() % 1 == 0).all()
    text = values.map(("{:,.0f}" if whole else "{:,.2f}").format).astype("string")
    return text.where(values.notna())


def _shown(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A table as the text and the page show it: codes named, dates as text, Chinese headers."""
    shown = frame.drop(columns=[column for column in frame.columns
                                if column in HIDDEN | HIDDEN_IN.get(table, set())])
    for column in shown.select_dtypes(include="number").columns:
        shown[column] = _number_text(shown[column])
    shown = readable_table(shown, HEADERS)
    if table in _WARNING_TABLES:
        for column, names in VALUES.items():
            if HEADERS[column] in shown:
                shown[HEADERS[column]] = shown[HEADERS[column]].replace(names)
    return shown


def _fields_wrapped(fields: list[str], width: int, first: str, indent: str) -> list[str]:
    """Fields filled into lines of ``width`` cells, each field whole unless longer than a line.

    Only one household's few rows pass here, so a loop over fields is fine.
    """
    lines, line = [], first
    for text in fields:
        joined = text if line in (first, indent) else f"{line}  {text}"
        if line not in (first, indent) and cell_len(joined) > width:
            lines.append(line)
            line = indent + text
        else:
            line = (line + text) if line in (first, indent) else joined
    lines.append(line)
    return lines


def _money(value: object) -> str:
    return MISSING if value is None else f"{float(value):,.2f}"


def summary_lines(file: HouseholdFile) -> list[str]:
    """The summary as short lines: place, people, income against the standard, the score."""
    summary = file.summary
    run = summary["run_date"] or "尚未运行"
    place = "".join(filter(None, [summary["county_name"], summary["township_name"]]))
    income = (f"月人均收入 {_money(summary['per_capita_income'])} 元"
              + (f"（{pd.Timestamp(summary['income_assess_date']):%Y-%m-%d} 核算）"
                 if summary["income_assess_date"] is not None else "（无收入核算记录）"))
    lines = [
        f"户编号 {file.household_id}；数据截至 {summary['as_of']}；预警记录截至 {run}",
        f"地区 {place or MISSING}（区划代码 {summary['region_code']}）",
        f"户主 {summary['head_name'] or MISSING}；户籍 {summary['members']} 人，"
        f"在世 {summary['living_members']} 人"
        + (f"；{summary['revitalization_status']}" if summary["revitalization_status"] else ""),
        income,
        f"低保标准 {_money(summary['dibao_standard'])} 元/人/月；"
        f"低保边缘标准 {_money(summary['edge_standard'])} 元/人/月",
        f"风险评分 {summary['risk_score']}（{summary['risk_source']}）",
    ]
    if file.risk_factors:
        lines.append("主要因素：" + "；".join(file.risk_factors))
    return lines


def household_text(file: HouseholdFile, width: int = TEXT_WIDTH) -> str:
    """The household file as plain text, wrapped to ``width`` columns (CJK counted as two).

    Each row of a table is one numbered entry of ``heading：value`` fields; a
    line breaks between fields, never inside an id or a date.
    """
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False,
                      emoji=False, markup=False, soft_wrap=False)
    console.print(Text(f"{TITLE}  {file.household_id}"))
    for line in summary_lines(file):
        for part in _fields_wrapped(line.split("；"), width, "", "  "):
            console.print(Text(part))
    for number, (table, title) in enumerate(TABLE_TITLES.items(), start=1):
        frame = file.tables[table]
        console.print()
        console.print(Text(f"{number}. {title}（{len(frame)}）"))
        if frame.empty:
            console.print(Text(f"   {MISSING}"))
            continue
        shown = _shown(frame, table)
        for position, row in enumerate(shown.to_dict("records"), start=1):
            fields = [f"{heading}：{value}" for heading, value in row.items()
                      if not pd.isna(value)]
            for line in _fields_wrapped(fields, width, f"{position:>2}) ", "    "):
                console.print(Text(line))
    return buffer.getvalue()


def _plain(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready records: dates as YYYY-MM-DD, missing as null."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d")
    return json.loads(shown.to_json(orient="records", force_ascii=False))


def household_json(file: HouseholdFile) -> str:
    """The household file as JSON: its summary, the score's factors and every table."""
    summary = {key: (value.strftime("%Y-%m-%d") if isinstance(value, pd.Timestamp) else value)
               for key, value in file.summary.items()}
    document = {
        "household_id": file.household_id, "as_of": file.as_of.isoformat(),
        "summary": json.loads(pd.Series(summary, dtype=object).to_json(force_ascii=False)),
        "risk_factors": file.risk_factors,
        "tables": {name: _plain(frame) for name, frame in file.tables.items()},
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def household_html(file: HouseholdFile, font: object = None) -> str:
    """The household file as one self-contained page to print (``font``: as render_html's)."""
    sections = [Section("概况", paragraphs=summary_lines(file))]
    for table, title in TABLE_TITLES.items():
        sections.append(Section(title, tables=[(title, _shown(file.tables[table], table))]))
    return render_html(f"{TITLE}：户编号 {file.household_id}",
                       f"数据截至 {file.summary['as_of']}（一户一档，供核实与存档打印）",
                       sections, font=font, max_rows=500, contents=False)
