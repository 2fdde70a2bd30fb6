"""Triage and the township referral lists (DATA_CONTRACT.md section 4).

Pure and vectorised. :func:`triage` turns the listed warnings (状态 新增 or
持续) into one row per household with the contract's Chinese columns;
:func:`referral_csv` renders one township's rows as the bytes of its file.

* 预警等级 is the highest level among the household's listed warnings.
* 触发规则 lists their codes, sorted; 预警原因 gives each rule's name and its
  reason with the amounts and dates; 建议措施 and 责任科室 are those of the
  rules, each named once; all three in the order of the codes.
* 核实时限: each warning is due ``verify_days_*`` of its level after it was
  first listed; the household's row is due at the earliest of these.
  首次预警日期 is the earliest first-listed date of its warnings.
* 预警编号 is the id of the household's longest-open warning (then the
  highest level, then rule order), so it stays the same from run to run
  while that warning is open; feedback quoting it settles the household's row.
* 状态 is 新增 when every listed warning of the household was opened today.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor import regions
from monitor.idcard import mask_id_numbers
from monitor.lifecycle import CONTINUING, NEW
from monitor.params import Parameters
from monitor.rules import LEVELS, RULE_CODES, Rule

REFERRAL_HEADERS = [
    "预警编号", "区县", "乡镇(街道)", "村(社区)", "户编号", "户主姓名", "户主身份证号",
    "家庭人口", "预警等级", "风险评分", "触发规则", "预警原因", "建议措施", "责任科室",
    "核实时限", "首次预警日期", "状态",
]
#: The verification deadline parameter of each level.
VERIFY_DAYS = {"红色": "verify_days_red", "橙色": "verify_days_orange",
               "黄色": "verify_days_yellow"}
RULE_SEPARATOR, TEXT_SEPARATOR = ";", "；"
#: A cell starting with one of these could be read as a formula by a spreadsheet.
FORMULA_START = r"^[=+\-@\t\r]"
DEFUSE_PREFIX = "'"
#: Columns of the triage table besides the contract's.
PLACE_COLUMNS = ["county_code", "township_code"]
#: What the household facts must provide for triage.
HOUSEHOLD_COLUMNS = ["region_code", "county_code", "township_code", "head_name",
                     "head_id_number", "living_members"]


def _joined(keys: np.ndarray, values: pd.Series, separator: str) -> pd.Series:
    """Join each key's values in their order, in C++ (one row per key, keys in first-seen order)."""
    table = pa.table({"key": pa.array(keys), "value": pa.array(values.astype("string"))})
    grouped = table.group_by("key", use_threads=False).aggregate([("value", "list")])
    joined = pc.binary_join(grouped["value_list"].cast(pa.list_(pa.string())), separator)
    return pd.Series(joined.to_pandas(types_mapper=pd.ArrowDtype).astype("string").to_numpy(),
                     index=pd.Index(grouped["key"].to_pandas(), name="household_id"),
                     dtype="string")


def _distinct_joined(listed: pd.DataFrame, column: str) -> pd.Series:
    """Each household's values of ``column`` (rule order), each named once."""
    distinct = listed.drop_duplicates(["household_id", column])
    return _joined(distinct["household_id"].to_numpy(), distinct[column], TEXT_SEPARATOR)


def defuse(values: pd.Series) -> pd.Series:
    """Prefix text that a spreadsheet would take for a formula with an apostrophe.

    Examples
    --------
    >>> defuse(pd.Series(["=1+1", "-3", "@SUM(A1)", "王芳", None])).tolist()
    ["'=1+1", "'-3", "'@SUM(A1)", '王芳', <NA>]
    """
    text = values.astype("string")
    risky = text.str.contains(FORMULA_START, regex=True).fillna(False).to_numpy(dtype=bool)
    return text.mask(risky, DEFUSE_PREFIX + text)


def triage(hits: pd.DataFrame, households: pd.DataFrame, rules: list[Rule], params: Parameters,
           as_of: dt.date) -> pd.DataFrame:
    """One referral row per household with a listed warning, in the contract's columns.

    Parameters
    ----------
    hits : pandas.DataFrame
        Today's hits after :func:`monitor.lifecycle.track`: ``household_id``,
        ``rule``, ``level``, ``reason``, ``warning_id``, ``status`` and
        ``first_warning_date``. Only 新增 and 持续 hits are listed.
    households : pandas.DataFrame
        Indexed by household_id, with :data:`HOUSEHOLD_COLUMNS` and
        ``risk_score``, for at least the households listed.
    rules : list of Rule
        The rule definitions (names, measures, offices).
    params : Parameters
        For the verification deadlines in force in each household's region.
    as_of : datetime.date
        The run date.

    Returns
    -------
    pandas.DataFrame
        :data:`REFERRAL_HEADERS` plus ``county_code`` and ``township_code``
        (which file the row goes to), ordered by county, township, level,
        score (highest first) and household. Text is not yet defused.
    """
    rule_of = {rule.code: rule for rule in rules}
    rule_rank = {code: rank for rank, code in enumerate(RULE_CODES)}
    level_rank = {level: rank for rank, level in enumerate(LEVELS)}
    listed = hits[hits["status"].isin([NEW, CONTINUING]).to_numpy(dtype=bool)].copy()
    listed["_rule_rank"] = listed["rule"].map(rule_rank).to_numpy(dtype="int64")
    listed["_level_rank"] = listed["level"].map(level_rank).to_numpy(dtype="int64")
    # 触发规则 are sorted by code; the reasons and measures follow the same order.
    listed = listed.sort_values(["household_id", "rule"], ignore_index=True)
    place = households.loc[listed["household_id"]]
    days = params.frame(place["region_code"].reset_index(drop=True), as_of,
                        list(VERIFY_DAYS.values()))
    verify_days = np.choose(listed["_level_rank"].to_numpy(),
                            [days[VERIFY_DAYS[level]].to_numpy() for level in LEVELS])
    listed["_due"] = listed["first_warning_date"] + pd.to_timedelta(verify_days, unit="D")
    listed["_new"] = (listed["status"] == NEW).to_numpy(dtype=bool)
    listed["_measure"] = listed["rule"].map({code: rule.measure for code, rule in rule_of.items()})
    listed["_office"] = listed["rule"].map({code: rule.office for code, rule in rule_of.items()})
    listed["_reason"] = ("【" + listed["rule"].map({code: rule.name for code, rule in
                                                   rule_of.items()}) + "】" + listed["reason"])

    by_household = listed.groupby("household_id", sort=True)
    summary = by_household.agg(level_rank=("_level_rank", "min"), due=("_due", "min"),
                               first=("first_warning_date", "min"), all_new=("_new", "all"))
    primary = listed.sort_values(["household_id", "first_warning_date", "_level_rank",
                                  "_rule_rank"]).drop_duplicates("household_id")
    summary["warning_id"] = primary.set_index("household_id")["warning_id"]
    household_keys = listed["household_id"].to_numpy()
    summary["rules"] = _joined(household_keys, listed["rule"], RULE_SEPARATOR)
    summary["reasons"] = _joined(household_keys, listed["_reason"], TEXT_SEPARATOR)
    summary["measures"] = _distinct_joined(listed, "_measure")
    summary["offices"] = _distinct_joined(listed, "_office")

    facts = households.loc[summary.index]
    names = regions.townships()
    county_names = names.drop_duplicates("county_code").set_index("county_code")["county_name"]
    township_names = names.set_index("township_code")["township_name"]
    rows = pd.DataFrame({
        "预警编号": summary["warning_id"],
        "区县": facts["county_code"].map(county_names).fillna(facts["county_code"]),
        "乡镇(街道)": facts["township_code"].map(township_names).fillna(facts["township_code"]),
        "村(社区)": facts["region_code"],
        "户编号": summary.index.to_series(),
        "户主姓名": facts["head_name"],
        "户主身份证号": mask_id_numbers(facts["head_id_number"]),
        "家庭人口": facts["living_members"].astype("int64"),
        "预警等级": np.asarray(LEVELS)[summary["level_rank"].to_numpy()],
        "风险评分": facts["risk_score"].astype("int64"),
        "触发规则": summary["rules"],
        "预警原因": summary["reasons"],
        "建议措施": summary["measures"],
        "责任科室": summary["offices"],
        "核实时限": summary["due"].dt.strftime("%Y-%m-%d"),
        "首次预警日期": summary["first"].dt.strftime("%Y-%m-%d"),
        "状态": np.where(summary["all_new"], NEW, CONTINUING),
        "county_code": facts["county_code"],
        "township_code": facts["township_code"],
        "_level_rank": summary["level_rank"],
    })
    rows = rows.sort_values(["county_code", "township_code", "_level_rank", "风险评分", "户编号"],
                            ascending=[True, True, True, False, True], ignore_index=True)
    return rows.drop(columns="_level_rank")


def referral_csv(rows: pd.DataFrame) -> bytes:
    """One township's referral file: UTF-8 with BOM, CRLF lines, formulas defused.

    Excel and WPS read the BOM as UTF-8; CRLF is what they write themselves.
    """
    table = rows[REFERRAL_HEADERS].copy()
    for column in REFERRAL_HEADERS:
        if not pd.api.types.is_integer_dtype(table[column].dtype):
            table[column] = defuse(table[column])
    return table.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
