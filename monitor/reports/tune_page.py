"""The ``monitor tune`` report: what the candidate parameters would change, as one HTML page.

Pure: takes the tables of :mod:`monitor.tuning.compare` (the same ones written as
Parquet and CSV beside the report) and returns the page, its charts drawn
with matplotlib in the CJK font the caller names.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from monitor.reports import charts
from monitor.reports.html import Section, readable_table, render_html
from monitor.tuning.compare import CANDIDATE, CURRENT, DROPPED, NEWLY_FLAGGED, RULES_CHANGED

SIDE_NAMES = {CURRENT: "现行参数", CANDIDATE: "候选参数"}
CHANGE_NAMES = {NEWLY_FLAGGED: "新增预警户", DROPPED: "不再预警户", RULES_CHANGED: "触发规则变化户"}
#: Chinese headers for the report's tables (the files beside it keep the English names).
HEADERS = {
    "as_of": "监测日期", "rule": "规则", "name": "规则名称", "level": "等级",
    CURRENT: "现行", CANDIDATE: "候选", "difference": "差额", "county_code": "区县代码",
    "county_name": "区县", "township_code": "乡镇代码", "township_name": "乡镇(街道)",
    "capacity": "核查能力", "current_over_capacity": "现行超出", "candidate_over_capacity":
    "候选超出", "household_id": "户编号", "change": "变化", "side": "参数",
    "rules_current": "现行规则", "rules_candidate": "候选规则", "level_current": "现行等级",
    "level_candidate": "候选等级", "risk_score_current": "现行评分",
    "risk_score_candidate": "候选评分", "reasons_current": "现行预警原因",
    "reasons_candidate": "候选预警原因", "window_end": "结果观察截至", "hits": "规则命中",
    "households_flagged": "预警户数", "reviewed": "已核实户", "verified": "属实户",
    "precision": "精确率(属实占比)", "later_entries": "其后纳入救助户",
    "later_entries_flagged": "其中事先预警", "recall": "召回率", "parameter": "参数",
    "townships": "涉及乡镇数", "households_evaluated": "评估户数",
    "townships_over_capacity": "超出核查能力乡镇", "model_version": "模型版本",
    "threshold": "阈值", "referred": "转介户数", "model_only": "其中仅因模型",
    "expected_true_positives": "预期阳性户", "expected_recall": "预期召回率",
    "observed_true_positives": "实际阳性户", "observed_recall": "实际召回率",
    "window_complete": "观察期完整", "reviewed_share": "已核实户占比",
}
SHOWN_TOWNSHIPS = 20
#: Rows of a table shown in the page (the files beside it have them all).
SHOWN_ROWS = 60
#: Thresholds shown past the highest marked one.
CURVE_MARGIN = 5


def _shown(frame: pd.DataFrame, drop: tuple[str, ...] = ("as_of",)) -> pd.DataFrame:
    """A table as the report shows it: Chinese headers, sides and changes named, dates as text."""
    return readable_table(frame.drop(columns=[column for column in drop
                                              if column in frame.columns]),
                          HEADERS, {"side": SIDE_NAMES, "change": CHANGE_NAMES})


def _on(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["as_of"] == day]


def _sides(frame: pd.DataFrame, index: str) -> pd.DataFrame:
    """Current and candidate counts indexed by ``index``, named for a chart's legend."""
    return frame.set_index(index)[[CURRENT, CANDIDATE]].rename(columns=SIDE_NAMES)


def _long_sides(frame: pd.DataFrame, index: str, values: str, label: str) -> pd.DataFrame:
    """A long table's ``values``, a column per side named like 召回率（现行参数）."""
    return (frame.pivot_table(index=index, columns="side", values=values)
            .reindex(columns=list(SIDE_NAMES))
            .rename(columns=lambda side: f"{label}（{SIDE_NAMES[side]}）"))


def _changes_shown(changes: pd.DataFrame) -> pd.DataFrame:
    """The changed households as the report lists them: one reason column, the one that applies.

    A dropped household is given the reasons it is listed for now; the others,
    the reasons the candidate would list them for.
    """
    dropped = changes["change"] == DROPPED
    return pd.DataFrame({
        "household_id": changes["household_id"], "change": changes["change"],
        "township_name": changes["township_name"], "rules_current": changes["rules_current"],
        "rules_candidate": changes["rules_candidate"], "level_current": changes["level_current"],
        "level_candidate": changes["level_candidate"],
        "risk_score_candidate": changes["risk_score_candidate"],
        "预警原因": changes["reasons_current"].where(dropped, changes["reasons_candidate"]),
    })


def tune_report(tables: dict[str, pd.DataFrame], about: dict, *, font_family: str,
                font: bytes | Callable[[str], bytes] | None = None) -> str:
    """The tune's HTML page: parameters changed, flagged households, changes, history, capacity.

    ``about`` holds the tune date, the as-of dates, the candidate file, the
    capacity per township, the horizon and the model thresholds in force
    (``model_threshold``: side → value).
    """
    latest = pd.Timestamp(about["tune_date"])
    chart = {"font_family": font_family}
    changes = _on(tables["changes"], latest)
    change_counts = changes["change"].value_counts()
    sections = [_overview_section(tables, about, latest, change_counts),
                _counts_section(tables, about, latest, chart),
                _changes_section(about, changes, change_counts, chart),
                _workload_section(tables, about, latest, chart),
                _history_section(tables, about, latest, chart),
                _capacity_section(tables, about, latest, chart)]
    return render_html(
        f"调参比较 {about['tune_date']}", f"候选参数：{about['candidate']}", sections,
        font=font, tables_note="完整数据见本报告旁的 tables/ 文件夹（Parquet 与 CSV）。",
        max_rows=SHOWN_ROWS)


def _overview_section(tables: dict[str, pd.DataFrame], about: dict, latest: pd.Timestamp,
                      change_counts: pd.Series) -> Section:
    """概要: what was compared, the households flagged on each side, the parameters changed."""
    dates = about["as_of_dates"]
    summary = _on(tables["summary"], latest)
    flagged = summary.set_index("side")["households_flagged"]
    return Section(
        title="概要",
        paragraphs=[
            f"候选参数文件 {about['candidate']}，与现行参数在同一批数据上比较"
            f"（监测日期 {about['tune_date']}"
            + (f"，回测 {dates[0]} 至 {dates[-1]} 每月一次" if len(dates) > 1 else "") + "）。",
            f"{about['tune_date']}：现行参数预警 {flagged[CURRENT]:,} 户，候选参数预警 "
            f"{flagged[CANDIDATE]:,} 户；新增 {change_counts.get(NEWLY_FLAGGED, 0):,} 户，"
            f"不再预警 {change_counts.get(DROPPED, 0):,} 户，触发规则变化 "
            f"{change_counts.get(RULES_CHANGED, 0):,} 户。",
            "预警按规则计算，未扣除已经反馈办结且情况未变的预警，因此可能多于当晚的转介名单。",
            *([f"以下月份在第一次户籍交换之前，没有数据，未计算："
               f"{'、'.join(about['dates_before_any_delivery'])}。"]
              if about.get("dates_before_any_delivery") else []),
        ],
        tables=[("改动的参数（监测日期当天生效值）", _shown(tables["parameters"])),
                ("各日期汇总", _shown(tables["summary"], drop=()))])


def _counts_section(tables: dict[str, pd.DataFrame], about: dict, latest: pd.Timestamp,
                    chart: dict) -> Section:
    """Households flagged on the tune date by rule, level and county, on both sides."""
    by_rule = _on(tables["flagged_by_rule"], latest)
    by_rule_shown = by_rule[(by_rule[CURRENT] > 0) | (by_rule[CANDIDATE] > 0)]
    by_level = _on(tables["flagged_by_level"], latest)
    by_county = _on(tables["flagged_by_county"], latest)
    return Section(
        title="预警户数：按规则、等级、区县",
        paragraphs=[f"{about['tune_date']} 的预警户数。一户触发多条规则时，在每条规则下各计一次；"
                    "按等级时只计其最高等级。"],
        charts=[("按规则", charts.grouped_bar_chart(
                    _sides(by_rule_shown, "name"), title="按规则的预警户数",
                    value_label="户数", horizontal=True, **chart)),
                ("按等级", charts.grouped_bar_chart(
                    _sides(by_level, "level"), title="按最高等级的预警户数", value_label="户数",
                    **chart)),
                ("按区县", charts.grouped_bar_chart(
                    _sides(by_county, "county_name"), title="按区县的预警户数",
                    value_label="户数", horizontal=True, **chart))],
        tables=[("按规则", _shown(by_rule)), ("按等级", _shown(by_level)),
                ("按区县", _shown(by_county))])


def _changes_section(about: dict, changes: pd.DataFrame, change_counts: pd.Series,
                     chart: dict) -> Section:
    """The households newly flagged, no longer flagged or with other rules, and why."""
    return Section(
        title="新增与不再预警的户",
        paragraphs=[f"{about['tune_date']}：候选参数下新增预警、不再预警或触发规则变化的户，"
                    "附两种参数下的预警原因。"],
        charts=[("变化户数", charts.bar_chart(
            change_counts.rename(index=CHANGE_NAMES), title="候选参数带来的变化",
            value_label="户数", **chart))],
        tables=[("变化的户", _shown(_changes_shown(changes)))])


def _workload_section(tables: dict[str, pd.DataFrame], about: dict, latest: pd.Timestamp,
                      chart: dict) -> Section:
    """Households flagged per township against the caseworkers' capacity."""
    townships = _on(tables["flagged_by_township"], latest)
    busiest = townships.sort_values(CANDIDATE, ascending=False).head(SHOWN_TOWNSHIPS)
    capacity = about["capacity_per_township"]
    return Section(
        title="乡镇预警户数与核查能力",
        paragraphs=[f"每个乡镇(街道)的核查能力按 {capacity} 户计。预警户数未扣除已反馈办结且"
                    "情况未变的户，可能多于当晚实际转介的户数。超出核查能力的乡镇：现行参数 "
                    f"{int(townships['current_over_capacity'].sum()):,} 个，候选参数 "
                    f"{int(townships['candidate_over_capacity'].sum()):,} 个"
                    f"（共 {len(townships):,} 个有预警的乡镇）。"],
        charts=[(f"预警户最多的 {SHOWN_TOWNSHIPS} 个乡镇", charts.grouped_bar_chart(
            _sides(busiest, "township_name").assign(核查能力=capacity),
            title=f"预警户最多的 {SHOWN_TOWNSHIPS} 个乡镇", value_label="户数",
            horizontal=True, **chart))],
        tables=[("各乡镇", _shown(townships.sort_values(CANDIDATE, ascending=False)))])


def _history_section(tables: dict[str, pd.DataFrame], about: dict, latest: pd.Timestamp,
                     chart: dict) -> Section:
    """Precision and recall against what happened after each as-of date."""
    history = tables["history"]
    measured = history.dropna(subset=["recall"])
    # Only whole horizons: a recent date's shorter window would flatter its recall.
    whole = measured[measured["window_complete"].astype(bool)]
    trend = (_long_sides(whole, "as_of", "recall", "召回率") if len(whole)
             else pd.DataFrame())
    programs = "、".join(about["programs_entered"])
    by_rule_history = tables["history_by_rule"]
    last_measured = measured["as_of"].max() if len(measured) else latest
    return Section(
        title="与历史对照：精确率与召回率",
        paragraphs=[
            f"精确率：预警户中已经乡镇核实过的（监测日期前 {about['horizon_months']} "
            "个月起至调参日期有反馈办结），最近一次核实结果为属实的占比；反馈按户匹配。"
            "“已核实户占比”说明精确率覆盖了多少预警户：候选参数新增的户多半还没有核实过，"
            "所以候选参数的精确率主要反映两种参数共同预警的户。按规则统计时，"
            "反馈写明该规则预警编号的，以该预警的结果为准，否则用该户最近一次结果。",
            f"召回率：监测日期之后 {about['horizon_months']} 个月内（至调参日期为止）有成员新纳入"
            f"{programs}的户中，监测日期当天已被预警的占比。观察期不足 "
            f"{about['horizon_months']} 个月的日期（“观察期完整”为否）召回率偏高，不画入趋势图；"
            "监测日期就是调参日期时，其后还没有结果，召回率为空；用 --from 回测更早的月份。",
        ],
        charts=([("召回率", charts.line_chart(
            trend, title="召回率（按监测日期）", x_label="监测日期", value_label="召回率",
            **chart))] if len(trend) > 1 else []),
        tables=[("各监测日期", _shown(history, drop=())),
                (f"按规则（{last_measured.date().isoformat()}）",
                 _shown(_on(by_rule_history, last_measured)))])


def _capacity_section(tables: dict[str, pd.DataFrame], about: dict, latest: pd.Timestamp,
                      chart: dict) -> Section:
    """The model threshold's capacity curve: households referred and expected recall."""
    curve = _on(tables["threshold_curve"], latest)
    thresholds = about.get("model_threshold", {})
    if len(curve):
        # Past the highest score nothing changes: show the thresholds up to there.
        listing = curve.loc[curve["model_only"] > 0, "threshold"]
        top = max([int(listing.max()) + 1 if len(listing) else 0,
                   *(value + CURVE_MARGIN for value in thresholds.values())])
        curve = curve[curve["threshold"] <= top]
        wide = _long_sides(curve, "threshold", "referred", "转介户数")
        wide["预期召回率（候选参数）"] = curve[curve["side"] == CANDIDATE].set_index(
            "threshold")["expected_recall"]
        markers = {f"{SIDE_NAMES[side]} {value:g}": value for side, value in thresholds.items()}
        return Section(
            title="模型阈值的容量曲线",
            paragraphs=[
                "每个 model_threshold 取值下转介的户数（其他规则命中的户，"
                "加上有在世成员、风险评分达到阈值的户），预期阳性户数（各户校准概率之和；"
                f"阳性指其后 {about['horizon_months']} 个月内新纳入救助或预警核实属实，"
                "即模型学习的结果）与预期召回率；回测日期另有实际数。竖线标出现行与候选阈值"
                "（全市统一值；某区县另有取值时，其转介数以该区县的阈值为准）。"],
            charts=[("容量曲线", charts.line_chart(
                wide, title="模型阈值与转介户数", x_label="model_threshold（风险评分）",
                value_label="转介户数", markers=markers, secondary="预期召回率（候选参数）",
                **chart))],
            tables=[("容量曲线", _shown(curve))])
    return Section(
        title="模型阈值的容量曲线",
        paragraphs=["监测日期当天还没有训练好的模型（monitor train），风险评分来自规则，"
                    "没有容量曲线。"])
