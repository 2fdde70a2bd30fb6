"""The township workbook: the referral list as caseworkers work it in Excel, WPS or LibreOffice.

Pure: rows in, the bytes of one ``.xlsx`` per township out (written with
XlsxWriter). Four sheets, in this order:

* ``预警核查``: the households with verification warnings, the contract's 17
  columns, then the answer columns (核实结果 and 处置措施 as drop-downs,
  办结日期 a date, 经办人, 备注) and 是否逾期;
* ``定期探访``: the households due a visit (rosters), with 上次探访日期 and
  应探访日期, and the same answer columns;
* ``反馈回执``: what the township sent back since the previous run, each row
  taken or refused with its reason in Chinese;
* ``填写说明``: how to fill it in and send it back, what each column and rule
  means, the township's counts, and the township's code (which the ingest
  reads back: :data:`TOWNSHIP_MARKER`).

Every code-like cell is a text cell (户编号 ``000000005362`` stays that), the
header row is frozen and filtered, the list prints on A4 landscape fitted to
the page's width with the header on every page and page numbers, and the
data cells are protected (no password) while the answer cells are open.
Sent back as a ``feedback`` delivery, the rows whose 核实结果 is filled are
the answers (:mod:`monitor.io.landing`).
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from monitor.contract import regions, schemas
from monitor.contract.keys import arrow_strings
from monitor.contract.sources import SOURCES
from monitor.policy.rules import LEVELS, Rule
from monitor.triage.referrals import REFERRAL_HEADERS, VISIT_HEADERS
from monitor.validation.checks import REASON, REASON_COLUMN, REASONS, ROW, SHEET, WORKBOOK_TOWNSHIP
from monitor.validation.idcard import mask_numbers_in_text

VERIFY_SHEET, VISIT_SHEET = "预警核查", "定期探访"
RECEIPT_SHEET, GUIDE_SHEET = "反馈回执", "填写说明"
#: The sheets whose answered rows come back as feedback.
ANSWER_SHEETS = (VERIFY_SHEET, VISIT_SHEET)
ANSWER_HEADERS = ["核实结果", "处置措施", "办结日期", "经办人", "备注"]
OVERDUE_HEADER = "是否逾期"
VERIFY_COLUMNS = [*REFERRAL_HEADERS, *ANSWER_HEADERS, OVERDUE_HEADER]
#: 定期探访: the contract's columns with the visit dates before 核实时限.
VISIT_COLUMNS = [*REFERRAL_HEADERS[:14], *VISIT_HEADERS, *REFERRAL_HEADERS[14:],
                 *ANSWER_HEADERS, OVERDUE_HEADER]
#: The label of the 填写说明 cell beside which the township's code stands.
TOWNSHIP_MARKER = "乡镇(街道)代码"
RECEIPT_COLUMNS = ["文件", "工作表", "行号", "预警编号", "户编号", "核实结果", "处置措施",
                   "办结日期", "结果", "说明"]
NUMBER_COLUMNS = ("家庭人口", "风险评分")
# The code lists themselves, not the feedback schema's checks: building a pandera schema at
# import costs every command half a second (pandera then imports dask's typing).
VERIFICATIONS = schemas.VERIFICATIONS
ACTIONS = schemas.ACTIONS
#: Column widths (characters; a CJK character counts two) of the list sheets, and whether the
#: text wraps: narrow enough that the 25 columns print on A4 landscape at about 60%.
COLUMN_WIDTHS: dict[str, tuple[float, bool]] = {
    "预警编号": (19, False), "区县": (7, True), "乡镇(街道)": (9, True), "村(社区)": (13.5, False),
    "户编号": (13.5, False), "户主姓名": (7, True), "户主身份证号": (19, False),
    "家庭人口": (5, False), "预警等级": (5, False), "风险评分": (5, False), "触发规则": (16, True),
    "预警原因": (38, True), "建议措施": (12, True), "责任科室": (9, True),
    "上次探访日期": (11, False), "应探访日期": (11, False), "核实时限": (11, False),
    "首次预警日期": (11, False), "状态": (5, False), "核实结果": (7, False),
    "处置措施": (12, False), "办结日期": (11, False), "经办人": (8, False), "备注": (12, True),
    "是否逾期": (5, False),
}
#: Other sheets' widths.
MIN_WIDTH, MAX_WIDTH, REASON_WIDTH = 6, 40, 60
#: Points per line of 10-point text, and the header row (its titles wrap to two lines).
LINE_HEIGHT, HEADER_HEIGHT = 13.5, 28
#: 办结日期 accepted by the date check.
EARLIEST_ANSWER, LATEST_ANSWER = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
A4 = 9
YES, NO = "是", "否"


def _width(value: str) -> int:
    """One text's width in characters as a spreadsheet shows it (CJK counts two).

    Examples
    --------
    >>> _width("万州区"), _width("abc")
    (6, 3)
    """
    return len(value) + sum(unicodedata.east_asian_width(c) in "WF" for c in value)


def _row_heights(shown: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Each row's height in points: enough lines for its longest wrapped cell."""
    lines = np.ones(len(shown))
    for column in columns:
        width, wrap = COLUMN_WIDTHS.get(column, (10, False))
        if not wrap or column not in shown:
            continue
        text = arrow_strings(shown[column].astype("string").fillna(""))
        # In Arrow's C++ (RE2): a regular expression per row through pandas took seconds.
        shown_width = pc.add(pc.utf8_length(text), pc.count_substring_regex(
            text, r"[^\x00-\xff]")).to_numpy(zero_copy_only=False).astype("float64")
        lines = np.maximum(lines, np.ceil(shown_width / max(width - 1, 1)))
    return lines * LINE_HEIGHT + 2


@dataclass(frozen=True)
class TownshipCounts:
    """What 填写说明 tells the township about its lists."""

    by_level: dict[str, int]
    households: int
    overdue: int
    visits_due: int
    visits_overdue: int
    receipts_taken: int
    receipts_refused: int


def _counts(verification: SheetRows, roster: SheetRows, receipts: ReceiptRows
            ) -> TownshipCounts:
    levels = verification.levels
    taken = int(receipts.taken.sum())
    return TownshipCounts({level: int((levels == level).sum()) for level in LEVELS},
                          len(verification), int(verification.overdue.sum()), len(roster),
                          int(roster.overdue.sum()), taken, len(receipts) - taken)


# --------------------------------------------------------------------------- rendered rows


@dataclass(frozen=True)
class SheetRows:
    """A list sheet's rows as written: each shown column's cell values, and each row's height.

    Rendered once for every township (:func:`render_sheet_rows`), then cut per
    township with :meth:`cut` (plain lists: a worker process gets only its own).
    """

    cells: dict[str, list]
    heights: list[float]
    #: Per row: past its 核实时限; and its 预警等级.
    overdue: np.ndarray
    levels: np.ndarray

    def __len__(self) -> int:
        return len(self.heights)


@dataclass(frozen=True)
class RenderedSheet:
    """Every township's rows of one list sheet, rendered once (an Arrow table, cut per township)."""

    table: pa.Table

    def cut(self, start: int, stop: int) -> SheetRows:
        """The rows ``start:stop`` (one township's) as :class:`SheetRows`."""
        rows = self.table.slice(start, stop - start)
        cells = {name: rows.column(name).to_pylist() for name in rows.column_names
                 if not name.startswith("_")}
        return SheetRows(cells, rows.column("_height").to_pylist(),
                         rows.column("_overdue").to_numpy(zero_copy_only=False).astype(bool),
                         rows.column("_level").to_numpy(zero_copy_only=False).astype(object))


def render_sheet_rows(rows: pd.DataFrame, columns: list[str]) -> RenderedSheet:
    """A list sheet's cells for all of ``rows`` at once: text as written, numbers, heights.

    ``columns`` are the sheet's columns; the answer columns have no cells (their
    column format keeps them open).
    """
    shown = rows.reindex(columns=columns)
    shown[OVERDUE_HEADER] = np.where(rows["overdue"].to_numpy(dtype=bool), YES, NO) \
        if len(rows) else pd.Series(dtype="string")
    cells = {}
    for column in columns:
        if column in ANSWER_HEADERS:
            continue
        if column in NUMBER_COLUMNS:
            cells[column] = pa.array(shown[column].to_numpy(dtype="float64"), pa.float64())
        else:
            cells[column] = pa.array(shown[column].astype("string").fillna("").to_numpy(
                dtype=object), pa.string())
    # Rows as tall as their wrapped text: a printed list must show every reason whole.
    cells["_height"] = pa.array(_row_heights(shown, columns), pa.float64())
    cells["_overdue"] = pa.array(rows["overdue"].to_numpy(dtype=bool), pa.bool_())
    cells["_level"] = pa.array(rows["预警等级"].astype("string").fillna("").to_numpy(
        dtype=object), pa.string())
    return RenderedSheet(pa.table(cells))


@dataclass(frozen=True)
class ReceiptRows:
    """One township's receipt rows as written, with each cell's display width."""

    cells: dict[str, list]
    widths: dict[str, np.ndarray]
    #: Per row: the answer was taken.
    taken: np.ndarray

    def __len__(self) -> int:
        return len(self.taken)


@dataclass(frozen=True)
class RenderedReceipts:
    """Every township's receipt rows, rendered once."""

    cells: dict[str, np.ndarray]
    widths: dict[str, np.ndarray]
    taken: np.ndarray

    def cut(self, start: int, stop: int) -> ReceiptRows:
        """The rows ``start:stop`` (one township's)."""
        return ReceiptRows({name: values[start:stop].tolist() for name, values in
                            self.cells.items()},
                           {name: values[start:stop] for name, values in self.widths.items()},
                           self.taken[start:stop])


def render_receipts(receipts: pd.DataFrame) -> RenderedReceipts:
    """The receipt's cells for every township at once (:func:`feedback_receipts`'s rows)."""
    cells = {column: receipts[column].astype("string").fillna("").to_numpy(dtype=object)
             for column in RECEIPT_COLUMNS}
    widths = {column: _cell_widths(receipts[column]) for column in RECEIPT_COLUMNS}
    taken = (receipts["结果"] == TAKEN).fillna(False).to_numpy(dtype=bool)
    return RenderedReceipts(cells, widths, taken)


def _cell_widths(values: pd.Series) -> np.ndarray:
    """Each value's width as :func:`_width` counts it (0 for a missing one)."""
    text = values.astype("string")
    width_of = {value: _width(value) for value in text.dropna().unique()}
    return text.map(width_of).fillna(0).to_numpy(dtype="int64")


class _Formats:
    """The workbook's cell formats (XlsxWriter formats belong to one workbook)."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        base = {"font_name": "宋体", "font_size": 10, "valign": "top", "border": 1,
                "border_color": "#bfbfbf"}
        self.header = book.add_format({**base, "bold": True, "bg_color": "#dde4ee",
                                       "text_wrap": True, "locked": True, "valign": "vcenter"})
        self.text = book.add_format({**base, "num_format": "@", "locked": True})
        self.wrapped = book.add_format({**base, "num_format": "@", "text_wrap": True,
                                        "locked": True})
        self.number = book.add_format({**base, "num_format": "0", "locked": True})
        self.answer = book.add_format({**base, "num_format": "@", "locked": False,
                                       "bg_color": "#fff9e0"})
        self.answer_date = book.add_format({**base, "num_format": "yyyy-mm-dd", "locked": False,
                                            "bg_color": "#fff9e0"})
        # A conditional format: colour and weight only.
        self.overdue = book.add_format({"font_color": "#c00000", "bold": True})
        self.title = book.add_format({"font_name": "宋体", "font_size": 14, "bold": True})
        self.label = book.add_format({"font_name": "宋体", "font_size": 10, "bold": True,
                                      "valign": "top", "num_format": "@"})
        self.plain = book.add_format({"font_name": "宋体", "font_size": 10, "valign": "top",
                                      "text_wrap": True, "num_format": "@"})


def _print_setup(sheet: object, title: str, township: str, run_date: dt.date,
                 header_rows: int = 1) -> None:
    """A4 landscape, fitted to the page's width, the header on every page, page numbers."""
    sheet.set_landscape()
    sheet.set_paper(A4)
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.3, right=0.3, top=0.6, bottom=0.6)
    sheet.repeat_rows(0, header_rows - 1)
    sheet.set_header(f"&L{township}&C{title}&R{run_date.isoformat()}")
    sheet.set_footer("&C第 &P 页，共 &N 页")


def _protect(sheet: object) -> None:
    """Data cells locked against accidental edits (no password); filters and widths still work."""
    sheet.protect("", {"autofilter": True, "sort": True, "format_columns": True,
                       "format_rows": True, "select_locked_cells": True,
                       "select_unlocked_cells": True})


def _list_sheet(book: xlsxwriter.Workbook, formats: _Formats, name: str, columns: list[str],
                rows: SheetRows, township: str, run_date: dt.date) -> None:
    """One answer sheet: the rows, then the open answer cells with their checks."""
    sheet = book.add_worksheet(name)
    count = len(rows)
    sheet.set_row(0, HEADER_HEIGHT)
    for number, column in enumerate(columns):
        sheet.write_string(0, number, column, formats.header)
        width, wrap = COLUMN_WIDTHS.get(column, (10, False))
        cell = formats.wrapped if wrap else formats.text
        if column in ANSWER_HEADERS:
            # The column's own format: its cells stay open (unlocked) without one cell
            # written each, and whatever row a caseworker types in.
            cell = formats.answer_date if column == "办结日期" else formats.answer
            sheet.set_column(number, number, width, cell)
            continue
        sheet.set_column(number, number, width)
        sheet.write_column(1, number, rows.cells[column],
                           formats.number if column in NUMBER_COLUMNS else cell)
    for row, height in enumerate(rows.heights, start=1):
        sheet.set_row(row, height)
    if count:
        at = {column: number for number, column in enumerate(columns)}
        sheet.conditional_format(1, at[OVERDUE_HEADER], count, at[OVERDUE_HEADER], {
            "type": "cell", "criteria": "==", "value": f'"{YES}"', "format": formats.overdue})
        for column, values in (("核实结果", VERIFICATIONS), ("处置措施", ACTIONS)):
            sheet.data_validation(1, at[column], count, at[column], {
                "validate": "list", "source": list(values),
                "input_title": column, "input_message": "请从下拉列表中选择",
                "error_title": column, "error_message": f"只能填写：{'、'.join(values)}"})
        sheet.data_validation(1, at["办结日期"], count, at["办结日期"], {
            "validate": "date", "criteria": "between", "minimum": EARLIEST_ANSWER,
            "maximum": LATEST_ANSWER, "input_title": "办结日期",
            "input_message": "填写日期，如 2026-07-15", "error_title": "办结日期",
            "error_message": "请填写日期（年-月-日），如 2026-07-15"})
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(count, 1), len(columns) - 1)
    _print_setup(sheet, name, township, run_date)
    _protect(sheet)


def _receipt_sheet(book: xlsxwriter.Workbook, formats: _Formats, receipts: ReceiptRows,
                   township: str, run_date: dt.date) -> None:
    sheet = book.add_worksheet(RECEIPT_SHEET)
    for number, column in enumerate(RECEIPT_COLUMNS):
        sheet.write_string(0, number, column, formats.header)
        widest = int(receipts.widths[column].max()) if len(receipts) else 0
        width = REASON_WIDTH if column == "说明" else max(
            MIN_WIDTH, min(MAX_WIDTH, max(widest, _width(column)) + 2))
        sheet.set_column(number, number, width)
    if not len(receipts):
        sheet.write_string(1, 0, "自上次运行以来，未收到本乡镇（街道）报回的核查结果。",
                           formats.plain)
    for number, column in enumerate(RECEIPT_COLUMNS):
        if len(receipts):
            sheet.write_column(1, number, receipts.cells[column],
                               formats.wrapped if column == "说明" else formats.text)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(receipts), 1), len(RECEIPT_COLUMNS) - 1)
    _print_setup(sheet, RECEIPT_SHEET, township, run_date)
    _protect(sheet)


def _guide_sheet(book: xlsxwriter.Workbook, formats: _Formats, county: str, township: str,
                 township_name: str, counts: TownshipCounts, rules: list[Rule],
                 run_date: dt.date) -> None:
    sheet = book.add_worksheet(GUIDE_SHEET)
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 90)
    lines: list[tuple[str, str]] = [
        ("", ""),
        (TOWNSHIP_MARKER, township),
        ("乡镇(街道)", township_name),
        ("区县", f"{regions.county_names().get(county, county)}（{county}）"),
        ("运行日期", run_date.isoformat()),
        ("", ""),
        ("本乡镇名单", f"待核查 {counts.households} 户（红色 {counts.by_level['红色']}、橙色 "
                     f"{counts.by_level['橙色']}、黄色 {counts.by_level['黄色']}），其中已逾期 "
                     f"{counts.overdue} 户；到期应探访 {counts.visits_due} 户，其中已逾期 "
                     f"{counts.visits_overdue} 户。"),
        ("上次报回", f"已采用 {counts.receipts_taken} 行，未采用 {counts.receipts_refused} 行"
                   "（原因见“反馈回执”工作表）。"),
        ("", ""),
        ("怎样填写", "1. 在“预警核查”工作表逐户核实，在黄色的答复列填写：核实结果（属实/不属实）、"
                 "处置措施（下拉选择）、办结日期（如 2026-07-15）、经办人，需要时填写备注。"),
        ("", "2. 在“定期探访”工作表记录探访：探访后填写核实结果、处置措施（一般为“定期探访”）、"
             "办结日期（探访日期）和经办人。探访后满探访周期会再次列入。"),
        ("", "3. 未核实的行留空即可，不会当作错误；核实结果留空的行不会被采用。"),
        ("", "4. 保存后（文件名不限，Excel、WPS 或 LibreOffice 均可），将本工作簿放入 "
             "landing/feedback/<报回日期>/ 文件夹报回。更正后再次报回，以后报回的为准。"),
        ("", "5. 数据列已保护，防止误改（撤销保护无需密码）；请勿增删行或列，"
             "勿复制其他乡镇的行。"),
        ("", ""),
        ("各列含义", ""),
        ("预警编号", "每户预警的编号，报回时用它对应到户；请勿修改。"),
        ("预警等级", "红色最急，其次橙色、黄色。"),
        ("风险评分", "0–100，越高越需要优先核查。"),
        ("预警原因", "触发每条规则的事实（金额、日期、标准）。"),
        ("核实时限", "应在此日期前核实（探访）完毕；是否逾期为“是”的请优先处理。"),
        ("上次探访日期、应探访日期", "定期探访：上次记录的探访日期和本次应探访的日期。"),
        ("状态", "新增：本次新列入；持续：此前已列入。"),
        ("", ""),
        ("各规则含义", "规则代码：名称（等级）；建议措施；责任科室"),
    ]
    lines += [(rule.code, f"{rule.name}（{rule.level}）；{rule.measure}；{rule.office}"
               + ("；定期探访名单" if rule.roster else "")) for rule in rules]
    sheet.write_string(0, 0, f"{township_name} 农村低收入人口监测预警核查工作簿", formats.title)
    for row, (label, text) in enumerate(lines, start=1):
        if label:
            sheet.write_string(row, 0, label, formats.label)
        if text:
            sheet.write_string(row, 1, text, formats.plain)
    _print_setup(sheet, GUIDE_SHEET, township_name, run_date)
    sheet.fit_to_pages(1, 0)
    sheet.set_portrait()
    _protect(sheet)


def township_workbook(county: str, township: str, verification: SheetRows,
                      roster: SheetRows, receipts: ReceiptRows, rules: list[Rule],
                      run_date: dt.date) -> bytes:
    """One township's workbook: its verification rows, due visits, receipts and the guide.

    ``verification`` and ``roster`` are the township's rows of
    :func:`monitor.triage.referrals.triage` (kinds ``verification`` and ``roster``)
    as rendered by :func:`render_sheet_rows`; ``receipts`` its rows of
    :func:`feedback_receipts` as rendered by :func:`render_receipts`.
    """
    buffer = io.BytesIO()
    # Fixed document times: the same rows give the same bytes.
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False, "strings_to_urls": False})
    fixed = dt.datetime(2000, 1, 1)
    book.set_properties({"title": f"{township} 核查工作簿", "created": fixed,
                         "author": "monitor", "comments": f"township={township}"})
    formats = _Formats(book)
    name = regions.township_names().get(township, township)
    _list_sheet(book, formats, VERIFY_SHEET, VERIFY_COLUMNS, verification, name, run_date)
    _list_sheet(book, formats, VISIT_SHEET, VISIT_COLUMNS, roster, name, run_date)
    _receipt_sheet(book, formats, receipts, name, run_date)
    _guide_sheet(book, formats, county, township, name, _counts(verification, roster, receipts),
                 rules, run_date)
    book.close()
    return buffer.getvalue()



def _township_spans(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple]]:
    """The frame ordered by township (each township's rows in their order), and each's span."""
    if not len(frame):
        return frame, {}
    county = frame["county_code"].astype("string").fillna("").to_numpy(dtype=object)
    township = frame["township_code"].astype("string").fillna("").to_numpy(dtype=object)
    order = np.lexsort((township, county))
    county, township = county[order], township[order]
    starts = np.flatnonzero(np.r_[True, (county[1:] != county[:-1])
                                  | (township[1:] != township[:-1])])
    stops = np.append(starts[1:], len(frame))
    spans = {(county[start], township[start]): (int(start), int(stop))
             for start, stop in zip(starts, stops, strict=True)}
    return frame.iloc[order], spans


@dataclass(frozen=True)
class TownshipWorkbooks:
    """A night's workbooks: every township's rows rendered once, each book cut from them."""

    verification: pd.DataFrame
    roster: pd.DataFrame
    receipts: pd.DataFrame
    rules: list[Rule]
    run_date: dt.date

    @property
    def rows(self) -> int:
        """Rows on the list sheets, all townships together."""
        return len(self.verification) + len(self.roster)

    def parts(self) -> Iterator[TownshipPart]:
        """Each township's rows: every township with a row.

        A township with no one listed but answers to acknowledge gets one too,
        so that its receipt reaches it.
        """
        verification, verification_spans = _township_spans(self.verification)
        roster, roster_spans = _township_spans(self.roster)
        receipts, receipt_spans = _township_spans(self.receipts)
        sheets = (render_sheet_rows(verification, VERIFY_COLUMNS),
                  render_sheet_rows(roster, VISIT_COLUMNS))
        rendered_receipts = render_receipts(receipts)
        places = sorted({*verification_spans, *roster_spans, *receipt_spans})
        for place in places:
            yield TownshipPart(
                *place, *(sheet.cut(*spans.get(place, (0, 0))) for sheet, spans in zip(
                    sheets, (verification_spans, roster_spans), strict=True)),
                rendered_receipts.cut(*receipt_spans.get(place, (0, 0))),
                self.rules, self.run_date)

    def __iter__(self) -> Iterator[tuple[str, str, bytes]]:
        for part in self.parts():
            yield part.county, part.township, part.workbook()


@dataclass(frozen=True)
class TownshipPart:
    """One township's rendered rows (picklable: a worker process makes its book)."""

    county: str
    township: str
    verification: SheetRows
    roster: SheetRows
    receipts: ReceiptRows
    rules: list[Rule]
    run_date: dt.date

    def workbook(self) -> bytes:
        """The township's workbook (:func:`township_workbook`)."""
        return township_workbook(self.county, self.township, self.verification, self.roster,
                                 self.receipts, self.rules, self.run_date)


# --------------------------------------------------------------------------- the receipt


TAKEN, REFUSED = "已采用", "未采用"
RECEIPT_KEYS = ["county_code", "township_code"]


def feedback_receipts(accepted: pd.DataFrame, quarantined: pd.DataFrame, state: pd.DataFrame,
                      unmatched: pd.DataFrame, roster_rules: frozenset[str],
                      events: pd.DataFrame | None = None) -> pd.DataFrame:
    """What each township sent back in the feedback this run ingested, and what became of it.

    Parameters
    ----------
    accepted : pandas.DataFrame
        The accepted feedback rows of the files this run ingested, with
        ``_file`` and ``_row`` (a returned workbook's also with
        ``_workbook_township``).
    quarantined : pandas.DataFrame
        Their quarantined rows, as delivered (``_reason``, ``_column``,
        ``_file``, ``_row``; a returned workbook's rows also ``_sheet`` and
        ``_workbook_township``).
    state : pandas.DataFrame
        The warnings after the run (which township each warning id is of).
    unmatched : pandas.DataFrame
        Feedback rows naming no known warning, or another household.
    roster_rules : frozenset of str
        The visit rosters: an answer to one records a visit.
    events : pandas.DataFrame, optional
        The run's warning events: what each answer did (warnings it closed,
        visits it recorded). An accepted answer that did nothing is refused
        with the likely reason.

    Returns
    -------
    pandas.DataFrame
        :data:`RECEIPT_COLUMNS` with ``county_code`` and ``township_code``:
        one row per answer whose township is known (from its warning, else
        from the workbook it came in).
    """
    of_warning = state.drop_duplicates("warning_id").set_index("warning_id")
    rosters = list(roster_rules)
    parts = []
    if len(accepted):
        parts.append(_taken_rows(_placed(accepted, accepted["warning_id"],
                                         accepted.get(WORKBOOK_TOWNSHIP), of_warning),
                                 unmatched, rosters, events))
    if len(quarantined):
        ids = quarantined.get("warning_id", pd.Series(pd.NA, index=quarantined.index,
                                                      dtype="string"))
        parts.append(_refused_rows(_placed(quarantined, ids.astype("string").str.strip(),
                                           quarantined.get(WORKBOOK_TOWNSHIP), of_warning),
                                   rosters))
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype="string")
                             for name in [*RECEIPT_COLUMNS, *RECEIPT_KEYS]})
    receipts = pd.concat(parts, ignore_index=True).astype("string")
    receipts = receipts[receipts["township_code"].notna().to_numpy(dtype=bool)]
    # A date cell read as text keeps its time of day: the caseworker typed a date.
    receipts["办结日期"] = receipts["办结日期"].str.replace(r" 00:00:00$", "", regex=True)
    # Cells are shown back as typed: an id or phone number typed into one is masked.
    for column in RECEIPT_COLUMNS:
        receipts[column] = mask_numbers_in_text(receipts[column])
    order = {VERIFY_SHEET: "1", VISIT_SHEET: "2"}
    return receipts.sort_values(
        [*RECEIPT_KEYS, "文件", "工作表", "行号"], ignore_index=True,
        key=lambda values: (values.map(order).fillna("0") if values.name == "工作表" else
                            values.str.zfill(8) if values.name == "行号" else values))


def _placed(frame: pd.DataFrame, ids: pd.Series, workbook_township: pd.Series | None,
            of_warning: pd.DataFrame) -> pd.DataFrame:
    """Answers with the township and rule of the warning each names (or of its workbook)."""
    at = of_warning.index.get_indexer(ids)
    found = at >= 0

    def of_its_warning(column: str) -> pd.Series:
        return pd.Series(np.where(found, of_warning[column].to_numpy(dtype=object)[
            np.maximum(at, 0)], None), index=frame.index, dtype="string")

    township = of_its_warning("township_code")
    if workbook_township is not None:
        township = workbook_township.astype("string").str.strip().where(
            workbook_township.notna(), township)
    first_listed = (of_warning["first_warning_date"] if "first_warning_date" in of_warning
                    else pd.Series(pd.NaT, index=of_warning.index)).to_numpy(dtype="datetime64[ns]")
    listed = pd.Series(np.where(found, first_listed[np.maximum(at, 0)], np.datetime64("NaT")),
                       index=frame.index)
    return frame.assign(township_code=township, county_code=township.str.slice(0, 6),
                        _rule=of_its_warning("rule"), _first_listed=listed)


def _sheet_of(files: pd.Series, rules: pd.Series, rosters: list[str]) -> pd.Series:
    """The sheet a returned workbook's answer came from: a roster's is 定期探访."""
    returned = files.astype("string").str.lower().str.endswith(".xlsx").fillna(False)
    sheets = np.where(rules.isin(rosters).fillna(False), VISIT_SHEET, VERIFY_SHEET)
    return pd.Series(np.where(returned, sheets, ""), index=files.index, dtype="string")


#: What an accepted answer did, in the receipt's words.
DID_NOTHING = "未改变任何预警：相关预警已办结或已不在名单上"
#: An answer dated before its warning was listed: the date is likely mistyped (the start
#: of the receipt's 说明; the listing date follows).
BEFORE_LISTING = "办结日期早于该预警首次列入名单的日期"
UNKNOWN_WARNING = "预警编号不存在或与户编号不符，未采用"


def _taken_rows(rows: pd.DataFrame, unmatched: pd.DataFrame, rosters: list[str],
                events: pd.DataFrame | None) -> pd.DataFrame:
    """Accepted answers: what each did (closed warnings, a visit), or why it did nothing.

    Without ``events`` every answer naming its warning counts as taken.
    """
    unknown = pd.MultiIndex.from_frame(rows[["warning_id", "household_id"]].astype(
        "string")).isin(pd.MultiIndex.from_frame(unmatched[["warning_id", "household_id"]]
                                                 .astype("string")))
    visit = rows["_rule"].isin(rosters).fillna(False).to_numpy(dtype=bool)
    if events is None:
        closed, visited = (~visit).astype("int64"), visit
    else:
        answered_by = "feedback " + rows["warning_id"].astype("string")
        closed = answered_by.map(events.loc[events["event"] == "closed_by_feedback", "by"]
                                 .value_counts()).fillna(0).astype("int64").to_numpy()
        visited = answered_by.isin(set(events.loc[events["event"] == "visited", "by"])
                                   ).to_numpy(dtype=bool)
    listed = pd.to_datetime(rows["_first_listed"])
    early = (pd.to_datetime(rows["closed_date"]) < listed).fillna(False).to_numpy(dtype=bool)
    before_listing = (BEFORE_LISTING + "（" + listed.dt.strftime("%Y-%m-%d").fillna("")
                      + "），未采用：请核对办结日期").to_numpy(dtype=object)
    did = np.where(closed > 0, "已按核实结果关闭核查预警" + closed.astype(str) + "条",
                   np.where(visited, "已记录探访", np.where(early, before_listing, DID_NOTHING)))
    return pd.DataFrame({
        "文件": rows["_file"], "工作表": _sheet_of(rows["_file"], rows["_rule"], rosters),
        "行号": (rows[ROW].astype("int64") + 1).astype("string"),
        "预警编号": rows["warning_id"], "户编号": rows["household_id"],
        "核实结果": rows["verified"], "处置措施": rows["action"],
        "办结日期": pd.to_datetime(rows["closed_date"]).dt.strftime("%Y-%m-%d"),
        "结果": np.where(unknown | ((closed == 0) & ~visited), REFUSED, TAKEN),
        "说明": np.where(unknown, UNKNOWN_WARNING, did),
        "county_code": rows["county_code"], "township_code": rows["township_code"]})


def _refused_rows(rows: pd.DataFrame, rosters: list[str]) -> pd.DataFrame:
    """Quarantined answers, as delivered, with the reason in Chinese."""
    zh = {spec.name: spec.zh for spec in SOURCES["feedback"].columns}
    column = rows[REASON_COLUMN].map(zh).fillna("")
    return pd.DataFrame({
        "文件": rows["_file"],
        "工作表": rows[SHEET] if SHEET in rows else _sheet_of(rows["_file"], rows["_rule"],
                                                            rosters),
        "行号": (rows[ROW].astype("int64") + 1).astype("string"),
        **{header: rows.get(name, pd.Series(pd.NA, index=rows.index)) for header, name in (
            ("预警编号", "warning_id"), ("户编号", "household_id"), ("核实结果", "verified"),
            ("处置措施", "action"), ("办结日期", "closed_date"))},
        "结果": REFUSED,
        "说明": (column.where(column == "", column + "：")
               + rows[REASON].map(REASONS).fillna(rows[REASON])),
        "county_code": rows["county_code"], "township_code": rows["township_code"]})
