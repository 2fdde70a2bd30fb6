"""The run summary and report: counts for the manifest, the Prefect artifact and report.html.

Pure: counts of warnings and households by level, rule, county and state,
the Markdown table shown as the run's Prefect artifact, and the run's HTML
report (``out/<date>/report.html``) with its charts and tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.contract.sources import SOURCES
from monitor.policy.rules import LEVELS, RULE_CODES, Rule
from monitor.reports import charts
from monitor.reports.html import Section, readable_table, render_html
from monitor.reports.markdown import markdown_table
from monitor.triage.lifecycle import CONTINUING, NEW, SETTLED, Lifecycle
from monitor.triage.workbook import BEFORE_LISTING
from monitor.validation.checks import REASONS


def _counts(values: pd.Series, order: list[str] | tuple[str, ...] | None = None) -> dict[str, int]:
    counts = values.value_counts()
    keys = list(order) if order is not None else sorted(counts.index)
    return {str(key): int(counts.get(key, 0)) for key in keys}


def run_summary(lifecycle: Lifecycle, referrals: pd.DataFrame,
                overdue: pd.DataFrame | None = None, receipts: pd.DataFrame | None = None,
                unanswered: int = 0) -> dict:
    """Counts of this run's warnings and referral rows (listed means 新增 or 持续).

    ``overdue`` is :func:`monitor.triage.referrals.overdue_by_township`'s table,
    ``receipts`` the answers this run took in
    (:func:`monitor.triage.workbook.feedback_receipts`), ``unanswered`` the rows of
    returned workbooks nobody answered.
    """
    hits = lifecycle.hits
    listed = hits[hits["status"].isin([NEW, CONTINUING]).to_numpy(dtype=bool)]
    events = lifecycle.events
    return {
        "warnings": {
            "listed": len(listed),
            "new": int((listed["status"] == NEW).sum()),
            "continuing": int((listed["status"] == CONTINUING).sum()),
            "settled_unchanged": int((hits["status"] == SETTLED).sum()),
            "closed_by_run": int((events["event"] == "closed").sum()),
            "closed_by_feedback": int((events["event"] == "closed_by_feedback").sum()),
            "by_level": _counts(listed["level"], LEVELS),
            "by_rule": _counts(listed["rule"], RULE_CODES),
        },
        "households": {
            "listed": len(referrals),
            "new": int((referrals["状态"] == NEW).sum()),
            "continuing": int((referrals["状态"] == CONTINUING).sum()),
            "by_level": _counts(referrals["预警等级"], LEVELS),
            "by_county": _counts(referrals["county_code"]),
            "townships": int(referrals["township_code"].nunique()),
        },
        "feedback": {"unmatched_rows": len(lifecycle.unmatched_feedback),
                     "answers_taken": 0 if receipts is None else int(
                         (receipts["结果"] == "已采用").sum()),
                     "answers_refused": 0 if receipts is None else int(
                         (receipts["结果"] != "已采用").sum()),
                     # Refused for a 办结日期 before the warning was listed (a mistyped date):
                     # counted apart so that the operator can ask the township.
                     "answers_dated_before_listing": 0 if receipts is None else int(
                         receipts["说明"].str.startswith(BEFORE_LISTING).fillna(False).sum()),
                     "unanswered_rows": int(unanswered)},
        **({} if overdue is None else {"overdue": {
            "households_to_verify": int(overdue["households"].sum()),
            "households_overdue": int(overdue["overdue"].sum()),
            "visits_due": int(overdue["visits_due"].sum()),
            "visits_overdue": int(overdue["visits_overdue"].sum()),
            "townships_with_overdue": int(((overdue["overdue"] + overdue["visits_overdue"])
                                           > 0).sum())}}),
    }


def _table(header: list[str], rows: list[list[object]]) -> str:
    return markdown_table(pd.DataFrame(rows, columns=header))


def summary_markdown(run_date: str, summary: dict, quarantined: dict[str, int],
                     model: dict | None = None) -> str:
    """The run summary as Markdown: levels, rules, counties, new versus continuing, quarantine.

    ``model`` is the run manifest's model entry: which model gave 风险评分, or none.
    """
    warnings, households = summary["warnings"], summary["households"]
    county_names = regions.county_names()
    parts = [
        f"# 监测预警 {run_date}",
        f"{households['listed']:,} households listed in {households['townships']:,} townships "
        f"({households['new']:,} 新增, {households['continuing']:,} 持续); "
        f"{warnings['listed']:,} warnings ({warnings['new']:,} 新增, "
        f"{warnings['continuing']:,} 持续); {warnings['closed_by_run']:,} closed because the "
        f"household no longer triggers the rule, {warnings['closed_by_feedback']:,} closed by "
        f"feedback, {warnings['settled_unchanged']:,} settled by feedback and unchanged.",
        ("风险评分 from the rules alone: no model trained yet." if not model
         or model.get("version") is None else
         f"风险评分 from model {model['version']} ({model['kind']}, trained "
         f"{model['trained_on']})."),
        "## By level",
        _table(["预警等级", "households", "warnings"],
               [[level, households["by_level"][level], warnings["by_level"][level]]
                for level in LEVELS]),
        "## By rule",
        _table(["rule", "warnings"], [[rule, count] for rule, count in
                                      warnings["by_rule"].items()]),
        "## By county",
        _table(["county", "name", "households"],
               [[county, county_names.get(county, ""), count]
                for county, count in households["by_county"].items()]),
        "## Quarantined rows ingested this run",
        _table(["source", "rows"], [[source, count] for source, count in quarantined.items()])
        if quarantined else "No rows quarantined in this run's deliveries.",
    ]
    if summary["feedback"]["unmatched_rows"]:
        parts.append(f"{summary['feedback']['unmatched_rows']:,} feedback rows name an unknown "
                     "warning id or another household; they were not applied.")
    if "overdue" in summary:
        late = summary["overdue"]
        parts.append(f"## Overdue\n\n{late['households_overdue']:,} of "
                     f"{late['households_to_verify']:,} households to verify are past their "
                     f"核实时限; {late['visits_overdue']:,} of {late['visits_due']:,} visits due "
                     f"(定期探访) are overdue; {late['townships_with_overdue']:,} townships "
                     "have something overdue.")
    answers = summary["feedback"]
    if answers.get("answers_taken") or answers.get("answers_refused"):
        parts.append(f"Answers received: {answers['answers_taken']:,} taken, "
                     f"{answers['answers_refused']:,} refused (each township's 反馈回执 says "
                     f"why{_before_listing(answers)}); {answers['unanswered_rows']:,} "
                     "workbook rows left unanswered.")
    if "deliveries" in summary:
        parts += _deliveries_markdown(summary["deliveries"])
    return "\n\n".join(parts) + "\n"


def _before_listing(answers: dict) -> str:
    """The refused answers dated before their warning was listed, as a clause (or nothing)."""
    early = answers.get("answers_dated_before_listing", 0)
    return f"; {early:,} dated before their warning was listed" if early else ""


def _deliveries_markdown(section: dict) -> list[str]:
    """The artifact's deliveries part: held and stale sources first, then every source."""
    kept = section["warnings_kept_open"]
    lines = ["## Deliveries"]
    if section["held"]:
        lines.append(f"**Held** (not used until released with `monitor release`): "
                     f"{', '.join(section['held'])}.")
    if section["stale"]:
        lines.append(f"**Stale** (no delivery for longer than expected): "
                     f"{', '.join(section['stale'])}; {kept['total']:,} warnings resting on "
                     "them kept open.")
    if not section["held"] and not section["stale"]:
        lines.append("Every source delivered on schedule; none held.")
    lines.append(_table(
        ["source", "status", "last delivery", "age (days)", "expected within", "rows"],
        [[row["source"], row["status"], *("" if row[key] is None else str(row[key]) for key in
                                          ("last_delivery", "age_days", "max_age_days", "rows"))]
         for row in section["sources"]]))
    return lines


#: How many earlier runs the nightly report's trend shows.
TREND_RUNS = 30


def report_tables(run_date: str, summary: dict, earlier: list[dict], quarantine: pd.DataFrame,
                  rules: list[Rule], delivery_rows: pd.DataFrame | None = None,
                  overdue: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The nightly report's numbers as tables (also written beside it as Parquet and CSV).

    ``earlier`` are the run manifests of recent earlier runs (for the trend),
    ``quarantine`` the rows quarantined per source, reason and column,
    ``delivery_rows`` the rows of each source's recent deliveries
    (:func:`monitor.triage.deliveries.delivery_rows`).
    """
    warnings, households = summary["warnings"], summary["households"]
    name_of = {rule.code: rule.name for rule in rules}
    by_rule = pd.DataFrame({"rule": list(warnings["by_rule"]),
                            "warnings": list(warnings["by_rule"].values())})
    by_rule.insert(1, "name", by_rule["rule"].map(name_of))
    by_rule.insert(2, "level", by_rule["rule"].map({rule.code: rule.level for rule in rules}))
    by_county = pd.DataFrame({"county_code": list(households["by_county"]),
                              "households": list(households["by_county"].values())},
                             columns=["county_code", "households"])
    by_county.insert(1, "county_name", by_county["county_code"].map(regions.county_names()))
    runs = [*earlier, {"run_date": run_date, **summary}]
    trend = pd.DataFrame({
        "run_date": pd.to_datetime([run["run_date"] for run in runs]),
        "households": [run["households"]["listed"] for run in runs],
        "new": [run["households"]["new"] for run in runs],
        "continuing": [run["households"]["continuing"] for run in runs],
        **{level: [run["households"]["by_level"].get(level, 0) for run in runs]
           for level in LEVELS},
        "warnings": [run["warnings"]["listed"] for run in runs],
    })
    # Who delivered it and what the reason means, in the words of the people who fix it.
    quarantine = quarantine.assign(
        department=quarantine["source"].map({name: source.department
                                             for name, source in SOURCES.items()}),
        explanation=quarantine["reason"].map(REASONS))[
            ["source", "department", "reason", "explanation", "column", "rows"]]
    return {
        "by_level": pd.DataFrame({"level": list(LEVELS),
                                  "households": [households["by_level"][level]
                                                 for level in LEVELS],
                                  "warnings": [warnings["by_level"][level] for level in LEVELS]}),
        "by_rule": by_rule, "by_county": by_county, "trend": trend, "quarantine": quarantine,
        **delivery_tables(summary.get("deliveries"), delivery_rows),
        **({} if overdue is None else {"overdue_by_township": overdue.assign(
            township_name=overdue["township_code"].map(regions.township_names()))}),
    }


#: The columns of the report's deliveries table, in order.
DELIVERY_COLUMNS = ["source", "department", "status", "last_delivery", "age_days",
                    "max_age_days", "rows", "held_deliveries", "hold_reasons"]


def delivery_tables(section: dict | None, rows: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Each source's delivery health on the run date, and rows per recent delivery."""
    if section is None:
        return {}
    health = pd.DataFrame(section["sources"]).reindex(columns=DELIVERY_COLUMNS)
    health = health.astype({"age_days": "Int64", "max_age_days": "Int64", "rows": "Int64"})
    tables = {"deliveries": health}
    if rows is not None:
        tables["delivery_rows"] = rows
    return tables


REPORT_HEADERS = {
    "level": "等级", "households": "户数", "warnings": "预警条数", "rule": "规则",
    "name": "规则名称", "county_code": "区县代码", "county_name": "区县", "run_date": "运行日期",
    "new": "新增户", "continuing": "持续户", "source": "数据源", "reason": "隔离原因",
    "column": "字段", "rows": "行数", "department": "交换部门", "explanation": "原因说明",
    "status": "状态", "last_delivery": "最近采用的交付", "age_days": "已过天数",
    "max_age_days": "最长间隔天数", "held_deliveries": "暂缓采用的交付",
    "hold_reasons": "暂缓原因", "delivery_date": "交付日期", "files": "文件数", "held": "暂缓",
    "township_code": "乡镇代码", "township_name": "乡镇(街道)", "overdue": "逾期未核实户数",
    "visits_due": "到期应探访户数", "visits_overdue": "逾期未探访户数",
}
#: A source's delivery status in the report's words.
DELIVERY_STATUS_ZH = {"ok": "正常", "stale": "逾期未报送", "held": "暂缓采用",
                      "never delivered": "从未报送"}


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    return readable_table(frame, REPORT_HEADERS)


def _relative_rows(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows per delivery of each source of one kind, as % of that source's median delivery."""
    chosen = rows[rows["source"].map({name: source.kind for name, source in SOURCES.items()})
                  == kind]
    if chosen.empty:
        return pd.DataFrame()
    wide = chosen.pivot_table(index="delivery_date", columns="department", values="rows",
                              aggfunc="sum")
    wide.index = pd.to_datetime(wide.index)
    median = wide.median().astype("float64").replace(0.0, np.nan)
    return (wide.astype("float64") / median * 100).sort_index()


def _overdue_section(totals: dict, table: pd.DataFrame) -> Section:
    """逾期情况: per township, households past 核实时限 and visits due or overdue."""
    late = table[(table["overdue"] + table["visits_overdue"]) > 0].sort_values(
        ["overdue", "visits_overdue"], ascending=False)
    return Section(
        title="逾期情况",
        paragraphs=[f"待核查 {totals['households_to_verify']:,} 户，其中超过核实时限 "
                    f"{totals['households_overdue']:,} 户；到期应探访 {totals['visits_due']:,} "
                    f"户，其中逾期 {totals['visits_overdue']:,} 户；有逾期的乡镇(街道) "
                    f"{totals['townships_with_overdue']:,} 个（下表按逾期户数排列，全部乡镇见 "
                    "tables/overdue_by_township）。"],
        tables=[("有逾期的乡镇(街道)", _shown(late[["county_code", "township_code",
                                                   "township_name", "households", "overdue",
                                                   "visits_due", "visits_overdue"]]))])


def _deliveries_section(section: dict, tables: dict[str, pd.DataFrame], chart: dict) -> Section:
    """数据报送情况: each source's last delivery, its age and status, and rows over time."""
    health = tables["deliveries"].assign(
        status=tables["deliveries"]["status"].map(DELIVERY_STATUS_ZH))
    kept = section["warnings_kept_open"]
    paragraphs = [
        "各部门数据的最近一次已采用交付、距今天数与行数。快照数据某区县行数明显减少、"
        "隔离行占比过高或某字段突然大量为空时，该次交付暂缓采用，仍按上一次交付计算，"
        "待管理员核实后用 monitor release 放行或拒收；数据逾期未报送时，依赖它的规则不因数据中断"
        "而关闭预警。"]
    if section["held"]:
        paragraphs.append(f"暂缓采用的交付：{'、'.join(section['held'])}。")
    if section["stale"]:
        paragraphs.append(f"逾期未报送：{'、'.join(section['stale'])}；因此暂不关闭的预警 "
                          f"{kept['total']:,} 条（预警原因末尾已注明）。")
    rows = tables.get("delivery_rows", pd.DataFrame())
    # Snapshots only: a short one is what gets held; events vary by nature (rows in the table).
    title = "快照数据每次交付的行数（相对中位数，%）"
    relative = _relative_rows(rows, "snapshot") if len(rows) else pd.DataFrame()
    charts_shown = ([(title, charts.line_chart(relative, title=title, x_label="交付日期",
                                               value_label="%", **chart))]
                    if len(relative) > 1 else [])
    # The page shows each source's last three deliveries; tables/delivery_rows has the year.
    recent = rows.groupby("source", sort=True).tail(3) if len(rows) else rows
    return Section(title="数据报送情况", paragraphs=paragraphs, charts=charts_shown,
                   tables=[("各数据源", _shown(health)),
                           *([("各数据源最近三次交付", _shown(recent))] if len(rows) else [])])


def nightly_report(run_date: str, summary: dict, tables: dict[str, pd.DataFrame], model: dict,
                   rejected_files: list[str], *, font_family: str,
                   font: bytes | Callable[[str], bytes] | None = None
                   ) -> str:
    """The run's HTML page: counts by level, rule and county, the trend, and quarantined rows."""
    chart = {"font_family": font_family}
    warnings, households = summary["warnings"], summary["households"]
    by_level, by_rule = tables["by_level"], tables["by_rule"]
    trend, quarantine = tables["trend"], tables["quarantine"]
    scored_by = ("风险评分来自规则（尚未训练模型）。" if model.get("version") is None else
                 f"风险评分来自模型 {model['version']}（{model['kind']}，训练于 "
                 f"{model['trained_on']}）。")
    overview = Section(
        title="概要",
        paragraphs=[
            f"本次列入核查名单 {households['listed']:,} 户，分布在 {households['townships']:,} "
            f"个乡镇(街道)：新增 {households['new']:,} 户，持续 {households['continuing']:,} 户。",
            f"预警 {warnings['listed']:,} 条；因情况不再触发而关闭 "
            f"{warnings['closed_by_run']:,} 条，"
            f"因反馈办结关闭 {warnings['closed_by_feedback']:,} 条，已反馈且情况未变的 "
            f"{warnings['settled_unchanged']:,} 条不再列入。",
            scored_by,
            *([f"有 {summary['feedback']['unmatched_rows']:,} 行反馈所填预警编号不存在"
               "或与户编号不符，未予采用。"] if summary["feedback"]["unmatched_rows"] else []),
            *([f"有 {early:,} 行反馈的办结日期早于所答预警首次列入名单的日期，未予采用"
               "（多为日期填错，见各乡镇反馈回执）。"]
              if (early := summary["feedback"].get("answers_dated_before_listing", 0)) else []),
        ],
        charts=[("按等级", charts.bar_chart(
            by_level.set_index("level")["households"], title="按最高等级的核查户数",
            value_label="户数", colors=charts.LEVEL_COLORS, **chart))],
        tables=[("按等级", _shown(by_level))])

    def bars_and_table(title: str, table: pd.DataFrame, values: pd.Series, chart_title: str,
                       value_label: str) -> Section:
        """A section of one chart of horizontal bars and the table behind it."""
        return Section(title=title, tables=[(title, _shown(table))], charts=[(
            title, charts.bar_chart(values, title=chart_title, value_label=value_label,
                                    horizontal=True, **chart))])

    listed_rules = by_rule[by_rule["warnings"] > 0]
    rules_section = bars_and_table("按规则", by_rule, listed_rules.set_index("name")["warnings"],
                                   "按规则的预警条数", "预警条数")
    counties = tables["by_county"]
    county_section = bars_and_table("按区县", counties,
                                    counties.set_index("county_name")["households"],
                                    "按区县的核查户数", "户数")
    trend_section = Section(
        title="近期趋势",
        paragraphs=[f"最近 {len(trend):,} 次运行（含本次）列入核查名单的户数。"],
        charts=([("趋势", charts.line_chart(
            trend.set_index("run_date")[["households", *LEVELS]].rename(
                columns={"households": "合计"}),
            title="核查户数（按运行日期）", x_label="运行日期", value_label="户数",
            colors={"合计": "#333333", **charts.LEVEL_COLORS}, **chart))]
            if len(trend) > 1 else []),
        tables=[("各次运行", _shown(trend))])
    by_source = (quarantine.groupby("department")["rows"].sum() if len(quarantine)
                 else pd.Series())
    quarantine_section = Section(
        title="隔离的数据行",
        paragraphs=[f"本日期运行所接收的交换文件中，有 {int(quarantine['rows'].sum()):,} "
                    "行未通过校验而隔离（见 quarantine/ 文件夹），按数据源、原因和字段统计如下。",
                    *(f"整份拒收：{message}" for message in rejected_files)],
        charts=([("按数据源", charts.bar_chart(
            by_source, title="按数据源的隔离行数", value_label="行数", horizontal=True,
            **chart))] if len(by_source) else []),
        tables=[("隔离原因", _shown(quarantine))])
    sections = [overview, rules_section, county_section, trend_section, quarantine_section]
    if "overdue_by_township" in tables:
        sections.insert(3, _overdue_section(summary["overdue"], tables["overdue_by_township"]))
    if "deliveries" in tables:
        sections.append(_deliveries_section(summary["deliveries"], tables, chart))
    return render_html(
        f"农村低收入人口动态监测预警 {run_date}", "每日运行报告", sections,
        font=font, tables_note="完整数据见本报告旁的 tables/ 文件夹（Parquet 与 CSV）。")
