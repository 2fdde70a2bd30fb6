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

from monitor import idcard, normalize, regions
from monitor.keys import positions_in_many
from monitor.pseudonyms import pseudonymise
from monitor.sources import Source

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
}

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


def parse_rows(raw: pd.DataFrame, source: Source, delivery_date: dt.date) -> pd.DataFrame:
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


def flag_duplicate_keys(frames: list[pd.DataFrame], source: Source,
                        earlier_keys: pd.DataFrame | None = None) -> list[pd.DataFrame]:
    """Quarantine repeats of a key within one delivery (across its files), keeping the first.

    ``earlier_keys`` holds keys already accepted from files of the same
    delivery in an earlier run, so that a late file cannot repeat them.
    """
    key = list(source.key)
    pieces = [] if earlier_keys is None else [earlier_keys[key].assign(_file=-1, _pos=-1)]
    for number, frame in enumerate(frames):
        good = frame[frame[REASON].isna()]
        pieces.append(good[key].assign(_file=number, _pos=frame.index.get_indexer(good.index)))
    if not pieces:
        return frames
    keys = pd.concat(pieces, ignore_index=True)
    repeated = keys.duplicated(subset=key, keep="first").to_numpy()
    flagged = []
    for number, frame in enumerate(frames):
        positions = keys.loc[repeated & (keys["_file"] == number).to_numpy(), "_pos"].to_numpy()
        frame = frame.copy()
        mask = np.zeros(len(frame), dtype=bool)
        mask[positions] = True
        frame.loc[mask, REASON] = "duplicate_key"
        frame.loc[mask, REASON_COLUMN] = ",".join(key)
        frame.loc[mask, REASON_DETAIL] = "key repeats an earlier row of this delivery"
        flagged.append(frame)
    return flagged


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
    """Parsed rows with their id numbers pseudonymised (:mod:`monitor.pseudonyms`).

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
    """The county partition of each row: by its region code, else through the registry.

    Rows whose household or person the registry does not know (yet) go to the
    ``unmatched`` partition; the as-of reader still finds them by membership.
    """
    if source.county_by == "region_code":
        return regions.county_of(frame["region_code"])
    if not lookups:
        return pd.Series(UNMATCHED_COUNTY, index=frame.index, dtype="string")
    lookup = lookups[source.county_by]
    positions = lookup.index.get_indexer(frame[source.county_by])
    counties = np.where(positions >= 0, lookup.to_numpy(dtype=object)[positions],
                        UNMATCHED_COUNTY)
    return pd.Series(counties, index=frame.index, dtype="string")


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
        now = pd.DataFrame({"key": registry[key].to_numpy(), "to_county": counties.to_numpy()})
        now = now.drop_duplicates("key")
        before = previous[key]
        where = positions_in_many([now["key"]], pd.Series(before.index))[0]
        was = np.where(where >= 0, before.to_numpy(dtype=object)[where], None)
        moved = (where >= 0) & (was != now["to_county"].to_numpy(dtype=object))
        pieces.append(pd.DataFrame({
            "kind": key, "key": now["key"].to_numpy()[moved],
            "from_county": was[moved], "to_county": now["to_county"].to_numpy()[moved],
        }))
    if not pieces:
        return pd.DataFrame({name: pd.Series(dtype="string") for name in
                             ("kind", "key", "from_county", "to_county")})
    return pd.concat(pieces, ignore_index=True).astype("string")
