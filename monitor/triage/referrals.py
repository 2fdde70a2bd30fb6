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
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from monitor.contract import regions
from monitor.policy.params import Parameters
from monitor.policy.rules import LEVELS, RULE_CODES, Rule
from monitor.triage.deliveries import stale_note
from monitor.triage.lifecycle import CONTINUING, NEW, STALE_SEPARATOR
from monitor.validation.idcard import mask_id_numbers

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
FORMULA_START = r"^(?:\s*[=+\-@]|[\t\r])"
DEFUSE_PREFIX = "'"
LINE_BREAKS = r"[\r\n]+"
EOL = "\r\n"
#: The referral columns that hold text (the others are whole numbers).
TEXT_HEADERS = [header for header in REFERRAL_HEADERS if header not in ("家庭人口", "风险评分")]
#: What the household facts must provide for triage.
HOUSEHOLD_COLUMNS = ["region_code", "county_code", "township_code", "head_name",
                     "head_id_number", "living_members"]


def join_in_groups(values: pd.Series, keep: np.ndarray, group: np.ndarray, groups: int,
            separator: str) -> np.ndarray:
    """Join the kept values of each group (rows sorted by group) in C++; one string per group."""
    lengths = np.bincount(group[keep], minlength=groups)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    kept = pa.array(values.to_numpy(dtype=object)[keep], type=pa.string())
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), kept), separator)
    return joined.to_numpy(zero_copy_only=False)


def _first_in_group(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each row is the first of its group with its value (rows sorted by group)."""
    _, codes = np.unique(values, return_inverse=True)
    combined = group.astype(np.int64) * (int(codes.max(initial=0)) + 1) + codes
    first = np.zeros(len(combined), dtype=bool)
    first[np.unique(combined, return_index=True)[1]] = True
    return first


def defuse(values: pd.Series) -> pd.Series:
    """Prefix text that a spreadsheet would take for a formula with an apostrophe.

    Examples
    --------
    >>> defuse(pd.Series(["=1+1", "-3", "@SUM(A1)", " =1", "王芳", None])).tolist()
    ["'=1+1", "'-3", "'@SUM(A1)", "' =1", '王芳', <NA>]
    """
    text = values.astype("string")
    risky = text.str.contains(FORMULA_START, regex=True).fillna(False).to_numpy(dtype=bool)
    return text.mask(risky, DEFUSE_PREFIX + text)


def _stale_notes(listed: pd.DataFrame, household_ids: pd.Index,
                 remarks: dict[str, str]) -> np.ndarray:
    """The note ending each household's 预警原因 when warnings of it rest on stale sources."""
    notes = np.full(len(household_ids), "", dtype=object)
    if "stale_sources" not in listed or not remarks:
        return notes
    resting = listed[listed["stale_sources"].notna().to_numpy(dtype=bool)]
    if resting.empty:
        return notes
    sources = (resting.assign(source=resting["stale_sources"].str.split(STALE_SEPARATOR))
               .explode("source").groupby("household_id", sort=False)["source"].agg(list))
    positions = household_ids.get_indexer(sources.index)
    notes[positions] = [stale_note(names, remarks) for names in sources.tolist()]
    return notes


#: Which listed warnings :func:`triage` lists: all (the CSV), or one sheet's kind.
EVERY, VERIFICATION, ROSTER = "every", "verification", "roster"
#: Columns :func:`triage` adds for the roster sheet (定期探访).
VISIT_HEADERS = ["上次探访日期", "应探访日期"]


def _visits(listed: pd.DataFrame, roster: np.ndarray, cadence: np.ndarray, as_of: dt.date
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each listed hit's visit due date (roster hits), and whether it is listed tonight.

    A roster entry is due when it was never visited, or its last visit is
    ``visit_cadence_days`` or more before the run date; a verification
    warning is always listed. Never visited, it is due since first listed.
    """
    last = (listed["last_visit_date"].to_numpy(dtype="datetime64[ns]")
            if "last_visit_date" in listed else np.full(len(listed), np.datetime64("NaT", "ns")))
    due_on = np.where(np.isnat(last), listed["first_warning_date"].to_numpy(
        dtype="datetime64[ns]"), last + cadence.astype("timedelta64[D]"))
    shown = ~roster | (due_on <= np.datetime64(as_of, "ns"))
    return due_on, shown


def _listed_tonight(hits: pd.DataFrame, households: pd.DataFrame, roster_rules: list[str],
                    params: Parameters, as_of: dt.date, kind: str) -> pd.DataFrame:
    """The hits listed tonight (新增 or 持续, roster entries only when due), of one kind.

    With ``_visit_due``: the day each roster entry fell (or falls) due.
    """
    listed = hits.loc[hits["status"].isin([NEW, CONTINUING]).to_numpy(dtype=bool),
                      ["household_id", "rule", "level", "reason", "warning_id", "status",
                       "first_warning_date",
                       *(name for name in ("stale_sources", "last_visit_date") if name in hits)]]
    roster = listed["rule"].isin(roster_rules).to_numpy(dtype=bool)
    if kind != EVERY:
        listed, roster = listed[roster == (kind == ROSTER)], roster[roster == (kind == ROSTER)]
    if "last_visit_date" not in listed:
        listed = listed.assign(last_visit_date=pd.Series(pd.NaT, index=listed.index,
                                                         dtype="datetime64[ns]"))
    positions = households.index.get_indexer(listed["household_id"])
    if (positions < 0).any():
        missing = list(listed["household_id"][positions < 0][:3])
        raise ValueError(f"triage: no household facts for listed households {missing}")
    cadence = np.zeros(len(listed), dtype="int64")
    if roster.any():
        regions_of = households["region_code"].iloc[positions[roster]].reset_index(drop=True)
        cadence[roster] = params.lookup("visit_cadence_days", regions_of, as_of).to_numpy(
            dtype="int64")
    visit_due, shown = _visits(listed, roster, cadence, as_of)
    return listed.assign(_visit_due=visit_due)[shown]


def _latest_in_groups(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The latest date of each group (rows sorted by group), NaT where a group has none."""
    if not len(starts):
        return values[:0]
    as_int = values.astype("int64")
    missing = np.iinfo("int64").min
    return np.maximum.reduceat(np.where(np.isnat(values), missing, as_int), starts).astype(
        "datetime64[ns]")


def _earliest_in_groups(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The earliest date of each group (rows sorted by group), NaT where a group has none."""
    if not len(starts):
        return values[:0]
    as_int = values.astype("int64")
    latest = np.iinfo("int64").max
    earliest = np.minimum.reduceat(np.where(np.isnat(values), latest, as_int), starts)
    return np.where(earliest == latest, np.iinfo("int64").min, earliest).astype("datetime64[ns]")


def _dates_text(values: np.ndarray) -> np.ndarray:
    """Dates as YYYY-MM-DD text; missing ones empty."""
    text = pd.DatetimeIndex(values).strftime("%Y-%m-%d")
    return np.asarray(text.fillna(""), dtype=object)


def triage(hits: pd.DataFrame, households: pd.DataFrame, rules: list[Rule], params: Parameters,
           as_of: dt.date, stale_remarks: dict[str, str] | None = None,
           kind: str = EVERY) -> pd.DataFrame:
    """One referral row per household with a listed warning, in the contract's columns.

    Parameters
    ----------
    hits : pandas.DataFrame
        Today's hits after :func:`monitor.triage.lifecycle.track`: ``household_id``,
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
    stale_remarks : dict of str to str, optional
        For each stale source, what the note ending 预警原因 says of it
        (:func:`monitor.triage.deliveries.stale_remarks`), for the warnings kept
        open because they rest on it (their ``stale_sources``).
    kind : str
        ``every`` (the CSV: verification warnings and the roster entries due
        tonight), ``verification`` or ``roster`` (the workbook's two sheets).

    Returns
    -------
    pandas.DataFrame
        :data:`REFERRAL_HEADERS`, :data:`VISIT_HEADERS` (the household's
        latest visit and earliest visit due, of its roster entries listed),
        ``overdue`` (核实时限 passed), plus ``county_code`` and
        ``township_code`` (which file the row goes to), ordered by county,
        township, level, score (highest first) and household. Text is not
        yet defused.

    Notes
    -----
    A roster entry is listed only on the nights it is due (:func:`_visits`);
    its 核实时限 counts from the day it fell due. The row's 预警编号 is a
    verification warning whenever the household has one, so that an answer
    quoting it closes those, and a roster warning's only on a visit's row.
    """
    roster_rules = [rule.code for rule in rules if rule.roster]
    listed = _listed_tonight(hits, households, roster_rules, params, as_of, kind)
    return _household_rows(listed, households, rules, params, as_of, stale_remarks or {})


def _household_rows(listed: pd.DataFrame, households: pd.DataFrame, rules: list[Rule],
                    params: Parameters, as_of: dt.date, stale_remarks: dict[str, str]
                    ) -> pd.DataFrame:
    """:func:`triage`'s rows from the hits listed tonight (one row per household)."""
    rule_rank = {code: rank for rank, code in enumerate(RULE_CODES)}
    level_rank = {level: rank for rank, level in enumerate(LEVELS)}
    roster_rules = [rule.code for rule in rules if rule.roster]
    listed, group, household_ids, starts = _grouped(listed)
    groups = len(household_ids)
    facts = households.iloc[households.index.get_indexer(household_ids)]
    levels = listed["level"].map(level_rank).to_numpy(dtype="int64")
    rank = listed["rule"].map(rule_rank).to_numpy(dtype="int64")
    first_listed = listed["first_warning_date"].to_numpy(dtype="datetime64[ns]")
    roster = listed["rule"].isin(roster_rules).to_numpy(dtype=bool)
    visit_due = listed["_visit_due"].to_numpy(dtype="datetime64[ns]")
    due = _deadlines(listed, roster, levels, facts["region_code"], group, params, as_of)
    last_visit = listed["last_visit_date"].to_numpy(dtype="datetime64[ns]")

    def smallest(values: np.ndarray) -> np.ndarray:
        return np.minimum.reduceat(values, starts) if groups else values[:0]

    # The row's id: a verification warning if it has one (an answer quoting it closes those),
    # its longest-open, then the highest level, then rule order.
    primary = np.lexsort((rank, levels, first_listed, roster, group))
    primary = primary[np.r_[True, group[primary][1:] != group[primary][:-1]]] if groups else \
        primary
    county_names, township_names = regions.county_names(), regions.township_names()
    all_new = np.logical_and.reduceat((listed["status"] == NEW).to_numpy(dtype=bool), starts) \
        if groups else np.zeros(0, dtype=bool)
    level_of = smallest(levels)
    no_date = np.datetime64("NaT", "ns")
    rows = pd.DataFrame({
        "预警编号": listed["warning_id"].to_numpy()[primary],
        "区县": facts["county_code"].map(county_names).fillna(facts["county_code"]).to_numpy(),
        "乡镇(街道)": facts["township_code"].map(township_names).fillna(
            facts["township_code"]).to_numpy(),
        "村(社区)": facts["region_code"].to_numpy(),
        "户编号": np.asarray(household_ids, dtype=object),
        "户主姓名": facts["head_name"].to_numpy(),
        "户主身份证号": mask_id_numbers(facts["head_id_number"]).to_numpy(),
        "家庭人口": facts["living_members"].to_numpy(dtype="int64"),
        "预警等级": np.asarray(LEVELS)[level_of],
        "风险评分": facts["risk_score"].to_numpy(dtype="int64"),
        **_rule_texts(listed, rules, group, household_ids, stale_remarks),
        "核实时限": pd.DatetimeIndex(smallest(due)).strftime("%Y-%m-%d"),
        "首次预警日期": pd.DatetimeIndex(smallest(first_listed)).strftime("%Y-%m-%d"),
        "状态": np.where(all_new, NEW, CONTINUING),
        "上次探访日期": _dates_text(_latest_in_groups(np.where(roster, last_visit, no_date),
                                                    starts)),
        "应探访日期": _dates_text(_earliest_in_groups(np.where(roster, visit_due, no_date),
                                                    starts)),
        "overdue": smallest(due) < np.datetime64(as_of, "ns"),
        "county_code": facts["county_code"].to_numpy(),
        "township_code": facts["township_code"].to_numpy(),
        "_level_rank": level_of,
    }).astype({column: "string" for column in TEXT_HEADERS})
    rows = rows.sort_values(["county_code", "township_code", "_level_rank", "风险评分", "户编号"],
                            ascending=[True, True, True, False, True], ignore_index=True)
    return rows.drop(columns="_level_rank").astype({header: "string"
                                                    for header in VISIT_HEADERS})


def _grouped(listed: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.Index, np.ndarray]:
    """Hits by household (sorted integer codes), each household's rules in code order.

    Returns the hits in that order, each one's household number, the
    households, and where each household's hits start: 触发规则 are sorted by
    code, and the reasons and measures follow the same order.
    """
    group, household_ids = pd.factorize(listed["household_id"], sort=True)
    code_order = {code: rank for rank, code in enumerate(sorted(RULE_CODES))}
    order = np.lexsort((listed["rule"].map(code_order).to_numpy(dtype="int64"), group))
    group = group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    return listed.take(order).reset_index(drop=True), group, pd.Index(household_ids), starts


def _deadlines(listed: pd.DataFrame, roster: np.ndarray, levels: np.ndarray,
               region_codes: pd.Series, group: np.ndarray, params: Parameters,
               as_of: dt.date) -> np.ndarray:
    """Each hit's 核实时限: ``verify_days_*`` of its level after it was first listed.

    A visit's counts from the day it fell due.
    """
    days = params.frame(region_codes.reset_index(drop=True), as_of, list(VERIFY_DAYS.values()))
    verify_days = np.choose(levels, [days[VERIFY_DAYS[level]].to_numpy()[group]
                                     for level in LEVELS]).astype("int64")
    start = np.where(roster, listed["_visit_due"].to_numpy(dtype="datetime64[ns]"),
                     listed["first_warning_date"].to_numpy(dtype="datetime64[ns]"))
    return start + verify_days.astype("timedelta64[D]")


def _rule_texts(listed: pd.DataFrame, rules: list[Rule], group: np.ndarray,
                household_ids: pd.Index, stale_remarks: dict[str, str]) -> dict[str, np.ndarray]:
    """触发规则, 预警原因 (with any note on stale data), 建议措施 and 责任科室 per household."""
    rule_of = {rule.code: rule for rule in rules}
    groups = len(household_ids)
    every = np.ones(len(listed), dtype=bool)
    reason = ("【" + listed["rule"].map({code: rule.name for code, rule in rule_of.items()})
              + "】" + listed["reason"])
    measure = listed["rule"].map({code: rule.measure for code, rule in rule_of.items()})
    office = listed["rule"].map({code: rule.office for code, rule in rule_of.items()})
    return {
        "触发规则": join_in_groups(listed["rule"], every, group, groups, RULE_SEPARATOR),
        "预警原因": join_in_groups(reason, every, group, groups, TEXT_SEPARATOR)
        + _stale_notes(listed, household_ids, stale_remarks),
        "建议措施": join_in_groups(measure, _first_in_group(group, measure.to_numpy(dtype=str)),
                               group, groups, TEXT_SEPARATOR),
        "责任科室": join_in_groups(office, _first_in_group(group, office.to_numpy(dtype=str)),
                               group, groups, TEXT_SEPARATOR),
    }


@dataclass(frozen=True)
class TownshipLists:
    """A night's lists: the CSV's rows, and the workbook's two sheets (:func:`triage` kinds)."""

    every: pd.DataFrame
    verification: pd.DataFrame
    roster: pd.DataFrame


def township_lists(hits: pd.DataFrame, households: pd.DataFrame, rules: list[Rule],
                   params: Parameters, as_of: dt.date,
                   stale_remarks: dict[str, str] | None = None) -> TownshipLists:
    """The CSV's rows (verification warnings and visits due) and each kind apart."""
    return TownshipLists(*(triage(hits, households, rules, params, as_of, stale_remarks, kind)
                           for kind in (EVERY, VERIFICATION, ROSTER)))


OVERDUE_COLUMNS = ["county_code", "township_code", "households", "overdue", "visits_due",
                   "visits_overdue"]


def overdue_by_township(lists: TownshipLists) -> pd.DataFrame:
    """Per township: households to verify and those past 核实时限; visits due and overdue."""
    keys = ["county_code", "township_code"]
    counted = [frame.groupby(keys, sort=True).agg(**{count: ("户编号", "size"),
                                                    late: ("overdue", "sum")})
               for frame, count, late in ((lists.verification, "households", "overdue"),
                                          (lists.roster, "visits_due", "visits_overdue"))]
    table = pd.concat(counted, axis="columns").fillna(0).astype("int64").reset_index()
    return table.reindex(columns=OVERDUE_COLUMNS).astype(
        {name: "int64" for name in OVERDUE_COLUMNS[2:]} | {"county_code": "string",
                                                           "township_code": "string"})


def _flatten(values: pd.Series) -> pd.Series:
    """Defused text on one line: a line break inside a delivered value becomes a space."""
    return defuse(values.astype("string").str.replace(LINE_BREAKS, " ", regex=True))


def referral_files(rows: pd.DataFrame) -> Iterator[tuple[str, str, bytes]]:
    """Each township's referral file as (county, township, bytes), from :func:`triage`'s rows.

    UTF-8 with BOM (Excel and WPS then read it as UTF-8), CRLF lines (what
    they write themselves), formula-looking cells defused. The whole table is
    rendered once and cut into townships, so the cost does not grow with the
    number of townships.
    """
    # Each township's rows together (triage's order within a township is kept).
    if rows.empty:
        return
    rows = rows.sort_values(["county_code", "township_code"], kind="stable")
    table = rows[REFERRAL_HEADERS].copy()
    for column in TEXT_HEADERS:
        table[column] = _flatten(table[column])
    header = ",".join(REFERRAL_HEADERS) + EOL
    lines = table.to_csv(index=False, header=False, lineterminator=EOL).split(EOL)
    places = rows["county_code"].astype(str) + "/" + rows["township_code"].astype(str)
    starts = np.flatnonzero(np.r_[True, places.to_numpy()[1:] != places.to_numpy()[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        county, township = places.iloc[start].split("/")
        body = EOL.join(lines[start:end]) + EOL
        yield county, township, (header + body).encode("utf-8-sig")


def warnings_table(hits: pd.DataFrame) -> pa.Table:
    """``warnings.parquet``: one row per hit, with each rule's evidence fields as columns.

    The evidence JSON is parsed by Arrow, one rule at a time (a rule's
    fields keep one type), two rules at once, and stays in Arrow; a field a
    rule does not use is empty. The JSON column is kept too. A field whose
    name is taken by a hit column gets ``evidence_`` in front.
    """
    hits = hits.reset_index(drop=True)
    table = pa.Table.from_pandas(hits, preserve_index=False)
    if not len(hits):
        return table
    order = np.argsort(hits["rule"].to_numpy(dtype=str), kind="stable")
    evidence = hits["evidence"].to_numpy(dtype=object)[order]
    rules = hits["rule"].to_numpy(dtype=object)[order]
    starts = np.flatnonzero(np.r_[True, rules[1:] != rules[:-1]])
    ends = np.r_[starts[1:], len(rules)]

    def parse(bounds: tuple[int, int]) -> pa.Table:
        data = ("\n".join(evidence[bounds[0]:bounds[1]].tolist()) + "\n").encode("utf-8")
        return pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(
            block_size=len(data) + 1))

    # Arrow parses outside the GIL; whole numbers met as decimals elsewhere become decimals.
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(parse, zip(starts.tolist(), ends.tolist(), strict=True)))
    fields = pa.concat_tables(parts, promote_options="permissive").take(
        pa.array(np.argsort(order, kind="stable")))
    for name, column in zip(fields.column_names, fields.columns, strict=True):
        table = table.append_column(
            f"evidence_{name}" if name in hits.columns else name, column)
    return table


def referral_csv(rows: pd.DataFrame) -> bytes:
    """One township's referral file (see :func:`referral_files`)."""
    files = list(referral_files(rows))
    if len(files) != 1:
        raise ValueError(f"expected the rows of one township, got {len(files)}")
    return files[0][2]
