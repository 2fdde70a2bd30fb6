"""Row-level validation of one delivered file: parse, check, and give each bad row one reason.

Pure functions over DataFrames: the io layer reads a file into text columns
named as the contract names them, and this module turns that text into typed
rows, each either accepted or quarantined with a reason code from ``REASONS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow.compute as pc

from monitor.contract import regions
from monitor.contract.keys import arrow_strings
from monitor.contract.sources import Source
from monitor.validation import idcard, normalize
from monitor.validation.pseudonyms import pseudonymise

ROW = "_row"
REASON = "_reason"
REASON_COLUMN = "_column"
REASON_DETAIL = "_detail"
COUNTY = "county_code"
UNMATCHED_COUNTY = "unmatched"

#: Every quarantine reason code, with the Chinese text an operator reads.
REASONS: dict[str, str] = {
    "malformed_row": "行格式错误：列数与表头不符",
    "missing_value": "必填项为空",
    idcard.ID_FORMAT: "身份证号格式错误",
    idcard.ID_CHECK_DIGIT: "身份证号校验位错误",
    idcard.ID_BIRTH_DATE: "身份证号中的出生日期无效",
    "bad_date": "日期无法识别",
    "bad_number": "数值无法识别",
    "bad_flag": "是/否取值无法识别",
    "negative_amount": "金额为负数",
    "code_not_listed": "取值不在代码表内",
    "bad_region_code": "行政区划代码不是12位数字",
    "unknown_township": "行政区划代码不属于重庆市任何乡镇（街道）",
    "future_date": "日期晚于交付日期",
    "duplicate_key": "同一批交付内主键重复",
    "out_of_pocket_above_total": "个人自付高于医疗总费用",
    "end_before_start": "终止日期早于起始日期",
    "invalid_value": "取值不符合数据规范",
    "other_township": "该行属于其他乡镇（街道）的名单，不予采用",
    "bad_encoding": "含无法识别的字节（不是文件所用编码的文字）",
    "too_long": "取值过长，不是该列应有的内容（已截短保存）",
}
#: What a reader puts where a file's bytes are not text in its encoding (monitor.io.landing).
REPLACEMENT = "\ufffd"
#: A cell of more bytes than this (UTF-8) holds no value of any contract column (the longest,
#: an address or a 处置措施, runs to a few hundred): a reader cuts it to its first
#: CUT_CELL_CHARS characters and names its column in OVERLONG, and its row is quarantined
#: (``too_long``). So a value repeated through a file (one Parquet dictionary entry, one
#: shared string of a workbook) never unpacks in memory.
MAX_CELL_BYTES = 4096
CUT_CELL_CHARS = 64
OVERLONG = "_overlong"
#: Columns a returned township workbook's rows carry (see monitor.io.landing): its sheet,
#: the row's 村(社区) and the township the workbook was written for.
SHEET, VILLAGE, WORKBOOK_TOWNSHIP = "_sheet", "_village", "_workbook_township"
#: The township of the warning a returned row's 预警编号 names, where the warnings know it.
WARNING_TOWNSHIP = "_warning_township"
TOWNSHIP_DIGITS = 9

_PARSERS = {
    "date": (normalize.parse_dates, "bad_date"),
    "money": (normalize.parse_money, "bad_number"),
    "bool": (normalize.parse_yes_no, "bad_flag"),
    "level": (normalize.parse_levels, "bad_number"),
}
_CHECK_REASONS = {
    "not_nullable": "missing_value",
    "isin": "code_not_listed",
    "greater_than_or_equal_to": "negative_amount",
}
_PATTERN_REASONS = {"id": idcard.ID_FORMAT, "region": "bad_region_code"}
# Columns whose values are personal identifiers: never echoed into a reason detail.
_PERSONAL_PARSE_KINDS = {"id"}
_PERSONAL_COLUMNS = {"phone", "name"}
# Runs of 11 or more digits (phone numbers, id numbers, accounts).
_LONG_NUMBER = r"[0-9]{11,}[0-9Xx]?"


@dataclass
class _Faults:
    """First fault found for each row; later faults of the same row are not recorded."""

    reason: np.ndarray
    column: np.ndarray
    detail: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Faults:
        return cls(*(np.full(n, None, dtype=object) for _ in range(3)))

    def flag(self, mask: np.ndarray, reason: str, column: str | None,
             detail: str | Callable[[np.ndarray], np.ndarray]) -> None:
        """Record ``reason`` for masked rows that have none yet.

        ``detail`` is a text, or a function of the row positions giving one
        text per row, called only for the rows flagged (details cost time).
        """
        free = np.flatnonzero(mask & pd.isna(self.reason))
        if not len(free):
            return
        self.reason[free] = reason
        self.column[free] = column
        self.detail[free] = detail if isinstance(detail, str) else detail(free)


def _detail_values(spec_name: str, parse: str, raw: pd.Series, what: str
                   ) -> str | Callable[[np.ndarray], np.ndarray]:
    """A short human detail; personal identifiers are named, never shown."""
    if parse in _PERSONAL_PARSE_KINDS or spec_name in _PERSONAL_COLUMNS:
        return f"{spec_name}: {what}"

    def with_values(positions: np.ndarray) -> np.ndarray:
        shown = raw.iloc[positions].fillna("").astype("string")
        # A shifted column can put an id or phone number here: never echo one.
        shown = shown.str.replace(_LONG_NUMBER, "[masked]", regex=True)
        return (f"{spec_name}: {what} '" + shown + "'").to_numpy(dtype=object)

    return with_values


#: Text columns that are identifiers: a leading ``'`` (a spreadsheet's text mark) is dropped.
IDENTIFIERS = frozenset({"household_id", "warning_id", "claim_id", "event_id", "asset_ref"})


def _flag_what_readers_marked(raw: pd.DataFrame, source: Source, faults: _Faults,
                              repaired: bool) -> None:
    """Quarantine first the rows a reader marked: a cell it cut, bytes it replaced."""
    if OVERLONG in raw:
        overlong = raw[OVERLONG].astype("string")
        for spec in source.columns:
            faults.flag(overlong.eq(spec.name).fillna(False).to_numpy(dtype=bool), "too_long",
                        spec.name, f"{spec.name}: more than {MAX_CELL_BYTES:,} bytes (cut)")
    for spec in source.columns if repaired else ():
        if spec.name in raw:
            broken = raw[spec.name].astype("string").str.contains(REPLACEMENT, regex=False)
            faults.flag(broken.fillna(False).to_numpy(dtype=bool), "bad_encoding", spec.name,
                        f"{spec.name}: bytes that are not text in the file's encoding")


def parse_rows(raw: pd.DataFrame, source: Source, delivery_date: dt.date,
               repaired: bool = False) -> pd.DataFrame:
    """Parse and check the text rows of one file of ``source``.

    Parameters
    ----------
    raw : pandas.DataFrame
        Text columns named as the contract names them (any subset of the
        source's columns; absent optional columns are added as empty), plus the
        ``_row`` number of each row in its file.
    source : Source
        The contract source the file was delivered as.
    delivery_date : datetime.date
        The delivery date: no date in a row may lie after it.
    repaired : bool
        The rows come from a file whose bytes that were not text were replaced
        (U+FFFD): each row holding one is quarantined, ``bad_encoding``.
        A row whose :data:`OVERLONG` names a column (the reader cut its cell)
        is quarantined, ``too_long``.

    Returns
    -------
    pandas.DataFrame
        Typed columns in contract order, ``_row``, and ``_reason``,
        ``_column``, ``_detail`` (missing for a good row).
    """
    n = len(raw)
    faults = _Faults.empty(n)
    typed = {}
    delivery = pd.Timestamp(delivery_date)
    if WORKBOOK_TOWNSHIP in raw:
        _flag_other_townships(raw, faults)
    _flag_what_readers_marked(raw, source, faults, repaired)
    for spec in source.columns:
        # As delivered; each parser trims and treats empty text as missing itself.
        column = raw[spec.name] if spec.name in raw else pd.Series(
            pd.array([pd.NA] * n, dtype="string"), index=raw.index
        )
        if spec.parse == "id":
            values, why = idcard.normalize_id_numbers(column, born_by=delivery)
            for code in (idcard.ID_FORMAT, idcard.ID_CHECK_DIGIT, idcard.ID_BIRTH_DATE):
                faults.flag((why == code).to_numpy(), code, spec.name, f"{spec.name}: {code}")
        elif spec.parse in _PARSERS:
            parser, reason = _PARSERS[spec.parse]
            values, bad = parser(column)
            faults.flag(bad.to_numpy(), reason, spec.name,
                        _detail_values(spec.name, spec.parse, column, "cannot parse"))
            if spec.parse == "date" and spec.name not in source.date_columns_may_be_future:
                faults.flag((values > delivery).fillna(False).to_numpy(dtype=bool),
                            "future_date", spec.name,
                            _detail_values(spec.name, spec.parse, column, "after delivery date"))
        elif spec.name in IDENTIFIERS:
            values = normalize.clean_identifier(column)
        elif spec.parse in ("region", "code"):
            # A code typed in full-width digits or letters is that code.
            values = normalize.clean_code(column)
        else:
            values = normalize.clean_text(column)
        typed[spec.name] = values
    frame = pd.DataFrame(typed, index=raw.index)
    if "employment_cost" in frame:
        # The contract's default: no deduction when the cost is not stated.
        frame["employment_cost"] = frame["employment_cost"].fillna(0.0)

    _apply_schema_checks(frame, source, faults, raw)
    if "region_code" in frame:
        unknown = frame["region_code"].notna() & ~regions.is_known_township(frame["region_code"])
        faults.flag(unknown.to_numpy(), "unknown_township", "region_code",
                    _detail_values("region_code", "region", frame["region_code"], "unknown"))

    frame[ROW] = raw[ROW].to_numpy() if ROW in raw else np.arange(1, n + 1)
    frame[REASON] = faults.reason
    frame[REASON_COLUMN] = faults.column
    frame[REASON_DETAIL] = faults.detail
    return frame


def _flag_other_townships(raw: pd.DataFrame, faults: _Faults) -> None:
    """Rows of a returned workbook that belong to another township's list: ``other_township``.

    A row's township is its warning's (its 预警编号), else its 村(社区)'s. A row
    copied in from another township's workbook answers for households that are
    not this township's: it changes nothing (checked first: it is the row's
    fault, whatever else is wrong with it).
    """
    missing = pd.Series(pd.NA, index=raw.index, dtype="string")

    def text(column: str) -> pd.Series:
        return raw[column].astype("string").str.strip() if column in raw else missing

    row_township = text(WARNING_TOWNSHIP).fillna(text(VILLAGE).str.slice(0, TOWNSHIP_DIGITS))
    township = text(WORKBOOK_TOWNSHIP)
    elsewhere = (row_township.notna() & township.notna() & (row_township != township)).fillna(
        False)
    faults.flag(elsewhere.to_numpy(dtype=bool), "other_township", "warning_id",
                "the row's warning is not of the workbook's township")


def _apply_schema_checks(
    frame: pd.DataFrame, source: Source, faults: _Faults, raw: pd.DataFrame
) -> None:
    """Run the pandera schema lazily and record each failing row's first reason."""
    try:
        source.schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        parse_kinds = {spec.name: spec.parse for spec in source.columns}
        check_names = cases["check"].astype(str).str.split("(", n=1).str[0]
        # A dataframe-wide check is reported once per column; it belongs to no column.
        frame_checks = {check.name for check in source.schema.checks}
        is_frame_check = check_names.isin(frame_checks)
        cases = pd.DataFrame({
            "position": frame.index.get_indexer(cases["index"].astype("int64")),
            "check_name": check_names,
            "column": cases["column"].fillna("").where(~is_frame_check, ""),
            "is_frame_check": is_frame_check,
        })
        # Column checks first, so a row's reason names the column at fault.
        cases = cases.sort_values("is_frame_check", kind="stable")
        for (check_name, column), group in cases.groupby(["check_name", "column"], sort=False):
            mask = np.zeros(len(frame), dtype=bool)
            mask[group["position"].to_numpy()] = True
            if check_name == "str_matches":
                reason = _PATTERN_REASONS.get(parse_kinds.get(column, ""), "invalid_value")
            else:
                reason = _CHECK_REASONS.get(check_name, check_name if check_name in REASONS
                                            else "invalid_value")
            column_name = column or None
            if column_name and column_name in raw:
                detail = _detail_values(column_name, parse_kinds[column_name],
                                        raw[column_name], check_name)
            else:
                detail = f"{column_name or source.name}: {check_name}"
            faults.flag(mask, reason, column_name, detail)


class KeysSeen:
    """The keys of the rows accepted so far from one delivery, to find repeats batch by batch.

    A delivery is checked a batch at a time, so the keys of its earlier
    batches, earlier files, and files ingested by earlier runs are kept, each
    as a 128-bit hash (two independent 64-bit hashes): 16 bytes a key, however
    long. Two different keys hash alike with probability 2**-128, about one in
    10**24 for a file of 10 million rows, so equal hashes are taken as equal
    keys. The first halves are kept sorted, so a batch is looked up in
    ``O(batch · log seen)``.

    Keys added while a file is read stay pending until :meth:`commit`; if the
    file is rejected, :meth:`rollback` forgets them.

    Examples
    --------
    >>> seen = KeysSeen(["k"])
    >>> seen.add(seen.hashes(pd.DataFrame({"k": ["a", "b"]})))
    >>> seen.contains(seen.hashes(pd.DataFrame({"k": ["b", "c"]}))).tolist()
    [True, False]
    """

    #: Keys of the two hashes: any two different 16-character texts.
    _HASH_KEYS = ("monitor-key-seen", "second-hash-key!")

    def __init__(self, key: tuple[str, ...] | list[str]):
        self.key = list(key)
        self._committed = _SortedHashes()
        self._pending = _SortedHashes()

    def hashes(self, keys: pd.DataFrame) -> np.ndarray:
        """The 128-bit hash of each row's key, as an ``(n, 2)`` array of unsigned integers.

        Equal for equal keys whatever the string storage or the time unit.
        """
        columns = []
        for column in self.key:
            values = keys[column]
            if pd.api.types.is_datetime64_any_dtype(values.dtype):
                # pandas hashes a 64-bit number one to one: equal hashes, equal times.
                columns.append(values.astype("datetime64[ns]").to_numpy().view(np.int64))
            else:
                # Converted once for both hashes; keys are mostly distinct, so not categorised.
                columns.append(values.astype("string").to_numpy(dtype=object, na_value=""))
        halves = []
        for hash_key in self._HASH_KEYS:
            parts = [pd.util.hash_array(values, hash_key=hash_key, categorize=False)
                     for values in columns]
            halves.append(parts[0] if len(parts) == 1 else pd.util.hash_pandas_object(
                pd.DataFrame(dict(enumerate(parts))), index=False, hash_key=hash_key).to_numpy())
        return np.column_stack(halves).reshape(len(keys), 2)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Whether each hash is that of a key seen (committed or pending)."""
        return self._committed.contains(hashes) | self._pending.contains(hashes)

    def add(self, hashes: np.ndarray) -> None:
        """Remember the hashes of accepted rows' keys, pending until :meth:`commit`."""
        self._pending.add(hashes)

    def commit(self) -> None:
        """Keep the pending keys: their file was accepted."""
        self._committed.merge(self._pending)
        self._pending = _SortedHashes()

    def rollback(self) -> None:
        """Forget the pending keys: their file was rejected."""
        self._pending = _SortedHashes()


class _SortedHashes:
    """128-bit hashes as two aligned arrays, sorted by the first half."""

    def __init__(self) -> None:
        self._first = np.empty(0, dtype=np.uint64)
        self._second = np.empty(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        order = np.argsort(hashes[:, 0], kind="stable")
        self._insert(hashes[order, 0], hashes[order, 1])

    def merge(self, other: _SortedHashes) -> None:
        if not len(self._first):
            self._first, self._second = other._first, other._second
        else:
            self._insert(other._first, other._second)

    def _insert(self, first: np.ndarray, second: np.ndarray) -> None:
        """Insert hashes already sorted by their first half."""
        if not len(first):
            return
        where = np.searchsorted(self._first, first)
        self._first = np.insert(self._first, where, first)
        self._second = np.insert(self._second, where, second)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        if not len(self._first) or not len(hashes):
            return found
        # Sorted, the lookups walk the hashes in order: ten times faster than at random.
        order = np.argsort(hashes[:, 0], kind="stable")
        first, second = hashes[order, 0], hashes[order, 1]
        left = np.searchsorted(self._first, first, side="left")
        right = np.searchsorted(self._first, first, side="right")
        single = right - left == 1
        found[order[single]] = self._second[left[single]] == second[single]
        # A first half shared by several keys seen (about one pair in 10**19): compare each.
        for position in np.flatnonzero(right - left > 1):
            span = self._second[left[position]:right[position]]
            found[order[position]] = bool((span == second[position]).any())
        return found


def flag_repeated_keys(parsed: pd.DataFrame, source: Source, seen: KeysSeen) -> pd.DataFrame:
    """Quarantine repeats of a key within one delivery, keeping the first; remember the rest.

    A good row repeats a key when an earlier row of its batch, or a row
    ``seen`` holds (earlier batches and files of the delivery), has it. The
    keys of the rows still good are added to ``seen``.
    """
    good = np.flatnonzero(parsed[REASON].isna().to_numpy())
    hashes = seen.hashes(parsed.iloc[good])
    repeated = seen.contains(hashes) | pd.DataFrame(hashes).duplicated(keep="first").to_numpy()
    seen.add(hashes[~repeated])
    if not repeated.any():
        return parsed
    parsed = parsed.copy()
    rows = good[repeated]
    parsed.iloc[rows, parsed.columns.get_loc(REASON)] = "duplicate_key"
    parsed.iloc[rows, parsed.columns.get_loc(REASON_COLUMN)] = ",".join(source.key)
    parsed.iloc[rows, parsed.columns.get_loc(REASON_DETAIL)] = (
        "key repeats an earlier row of this delivery")
    return parsed


def split_rows(raw: pd.DataFrame, parsed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split parsed rows into accepted typed rows and quarantined original text rows."""
    bad = parsed[REASON].notna().to_numpy()
    accepted = parsed.loc[~bad].drop(columns=[REASON, REASON_COLUMN, REASON_DETAIL])
    quarantined = raw.loc[bad].astype("string").copy()
    quarantined[ROW] = parsed.loc[bad, ROW].to_numpy()
    for column in (REASON, REASON_COLUMN, REASON_DETAIL):
        quarantined[column] = parsed.loc[bad, column].astype("string").to_numpy()
    return accepted.reset_index(drop=True), quarantined.reset_index(drop=True)


def add_person_facts(registry: pd.DataFrame) -> pd.DataFrame:
    """Registry rows with birth date and sex from the id number, and county and township codes.

    Birth date and sex already there (taken before the id number was
    pseudonymised, :func:`pseudonymise_rows`) are kept.
    """
    from_id = {} if "birth_date" in registry else {
        "birth_date": idcard.birth_dates(registry["id_number"]),
        "sex": idcard.sexes(registry["id_number"])}
    return registry.assign(
        **from_id,
        township_code=regions.township_of(registry["region_code"]),
        county_code=regions.county_of(registry["region_code"]),
    )


def pseudonymise_rows(parsed: pd.DataFrame, source: Source, key: str) -> pd.DataFrame:
    """Parsed rows with their id numbers pseudonymised (:mod:`monitor.validation.pseudonyms`).

    Registry rows first take their birth date and sex from the real number.
    """
    if "id_number" not in parsed:
        return parsed
    if source.name == "registry":
        parsed = parsed.assign(birth_date=idcard.birth_dates(parsed["id_number"]),
                               sex=idcard.sexes(parsed["id_number"]))
    return parsed.assign(id_number=pseudonymise(parsed["id_number"], key))


def county_lookups(registry: pd.DataFrame) -> dict[str, pd.Series]:
    """County codes by household id and by id number, from registry rows with ``county_code``."""
    return {
        column: registry.drop_duplicates(column).set_index(column)[COUNTY]
        for column in ("household_id", "id_number")
    }


def place_in_counties(frame: pd.DataFrame, source: Source,
                      lookups: dict[str, pd.Series] | None) -> pd.Series:
    """The county of each row in the lake: by its region code, else through the registry.

    Rows whose household or person the registry does not know (yet) get the
    county ``unmatched``; the as-of reader still finds them by membership.
    """
    if source.county_by == "region_code":
        return regions.county_of(frame["region_code"])
    if not lookups:
        return pd.Series(UNMATCHED_COUNTY, index=frame.index, dtype="string")
    lookup = lookups[source.county_by]
    where = pc.index_in(arrow_strings(frame[source.county_by]),
                        value_set=arrow_strings(pd.Series(lookup.index)), skip_nulls=True)
    counties = pc.fill_null(pc.take(arrow_strings(lookup), where), UNMATCHED_COUNTY)
    return pd.Series(counties.to_numpy(zero_copy_only=False), index=frame.index,
                     dtype="string")


def county_moves(registry: pd.DataFrame, counties: pd.Series,
                 previous: dict[str, pd.Series] | None) -> pd.DataFrame:
    """Households and persons whose county differs from the previous registry delivery.

    Rows of other sources are filed under the county their household (or
    person) had when they were ingested; these moves let a county's reader
    find the rows filed under a county they have since left.
    """
    pieces = []
    for key in ("household_id", "id_number"):
        if not previous or registry.empty:
            break
        # In Arrow: one hash pass each, no Python object per person (2.8 M at city scale).
        keys = arrow_strings(registry[key])
        now = pc.unique(keys)  # in order of first appearance: each key's first row counts
        to_county = pc.take(arrow_strings(counties), pc.index_in(now, value_set=keys))
        before = previous[key]
        where = pc.index_in(now, value_set=arrow_strings(pd.Series(before.index)),
                            skip_nulls=True)
        was = pc.take(arrow_strings(before), where)
        moved = pc.and_(pc.is_valid(where), pc.fill_null(pc.not_equal(was, to_county), True))
        pieces.append(pd.DataFrame({
            "kind": key,
            **{name: pc.filter(values, moved).to_numpy(zero_copy_only=False) for name, values in
               (("key", now), ("from_county", was), ("to_county", to_county))}}))
    if not pieces:
        return pd.DataFrame({name: pd.Series(dtype="string") for name in
                             ("kind", "key", "from_county", "to_county")})
    return pd.concat(pieces, ignore_index=True).astype("string")
