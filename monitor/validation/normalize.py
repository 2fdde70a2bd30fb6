"""Vectorised parsers from delivered text to typed columns, each saying which values failed.

Every parser takes a Series of strings (missing values allowed) and returns the
typed Series and a boolean mask of values that were present but could not be
parsed. Missing stays missing; whether it is allowed is the schema's business.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# YYYY-MM-DD or YYYY/MM/DD (one- or two-digit month and day, as Excel users type
# them), optionally with the zero time that Excel and Parquet timestamps carry.
_SEPARATED_DATE = (r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"
                   r"(?:[ T]00:00(?::00(?:\.0+)?)?)?")
_COMPACT_DATE = r"([0-9]{4})([0-9]{2})([0-9]{2})"
_YES = {"是", "y", "yes", "1", "true", "t", "1.0"}
_NO = {"否", "n", "no", "0", "false", "f", "0.0"}
#: Years a delivered date may have (pandas' nanosecond timestamps end in 2262).
_YEARS = (1800, 2200)
#: The largest level magnitude the small-integer column holds.
_LEVEL_LIMIT = 127
_LEVELS = {"一级": 1, "二级": 2, "三级": 3, "四级": 4, "一": 1, "二": 2, "三": 3, "四": 4}


#: Characters a cell may carry that nobody sees (zero-width space, non-joiner and joiner, word
#: joiner, byte-order mark, soft hyphen): removed wherever they stand, in every format, so
#: that an id pasted with one matches the same id without.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE = f"[{INVISIBLE}]"


def clean_text(values: pd.Series) -> pd.Series:
    """Remove invisible characters, trim spaces (also full-width ones); empty text is missing.

    Examples
    --------
    >>> clean_text(pd.Series([" 张三 ", "", None, "\u3000", "0001\u200b", "\ufeff0002"])).tolist()
    ['张三', <NA>, <NA>, <NA>, '0001', '0002']
    """
    text = values.astype("string").str.replace(_INVISIBLE, "", regex=True).str.strip()
    return text.mask(text == "")


#: Full-width forms of ASCII (digits, Latin letters, signs), as an input method types them in
#: its full-width mode (１２３, ＹＪ, －): in ids, numbers, dates and flags they are read as the
#: ASCII they stand for.
_FULL_WIDTH = "[\uff01-\uff5e]"


def half_width(text: pd.Series) -> pd.Series:
    """Text with full-width ASCII forms folded to ASCII (NFKC, on the cells holding one).

    Examples
    --------
    >>> half_width(pd.Series(["０００１２３", "ＹＪ１２", "２０２４－０６－３０", "高笋塘", None],
    ...                      dtype="string")).tolist()
    ['000123', 'YJ12', '2024-06-30', '高笋塘', <NA>]
    """
    wide = text.str.contains(_FULL_WIDTH, regex=True).fillna(False).to_numpy(dtype=bool)
    if not wide.any():
        return text
    folded = pc.utf8_normalize(pa.array(text[wide].to_numpy(dtype=object), pa.string()), "NFKC")
    text = text.copy()
    text[wide] = folded.to_numpy(zero_copy_only=False)
    return text


def clean_code(values: pd.Series) -> pd.Series:
    """:func:`clean_text` with full-width ASCII folded (:func:`half_width`): a value to parse."""
    return half_width(clean_text(values))


def clean_identifier(values: pd.Series) -> pd.Series:
    """:func:`clean_code`, and one leading ``'`` dropped: an id as a spreadsheet shows it.

    A spreadsheet keeps ``000123`` as text when it is typed ``'000123``; a
    caseworker who copies it from there sends the quote too.

    Examples
    --------
    >>> clean_identifier(pd.Series(["'000000000123", " 'YJ3659C7779F9A2A08", "A'B", "０１２"])
    ...                  ).tolist()
    ['000000000123', 'YJ3659C7779F9A2A08', "A'B", '012']
    """
    text = clean_code(values).str.replace(r"^[’‘']", "", regex=True)
    return clean_text(text)


def _present(text: pd.Series) -> np.ndarray:
    return text.notna().to_numpy()


def _to_float(text: pd.Series) -> pd.Series:
    """Numbers from text as plain float64 (NaN where not a number)."""
    numbers = pd.to_numeric(text, errors="coerce")
    return pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan), index=text.index)


def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD`` and Excel date text.

    Examples
    --------
    >>> delivered = ["2024-01-05", "2024/1/5", "20240105", "2024-02-30", None]
    >>> dates, bad = parse_dates(pd.Series(delivered))
    >>> dates.dt.strftime("%Y-%m-%d").tolist(), bad.tolist()
    (['2024-01-05', '2024-01-05', '2024-01-05', nan, nan], [False, False, False, True, False])
    >>> parse_dates(pd.Series(["00000101", "9999-12-31"]))[1].tolist()
    [True, True]
    """
    text = clean_code(values)
    # Dates repeat heavily, so parse each distinct text once.
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="string")
    parts = distinct.str.extract(f"^(?:{_SEPARATED_DATE}|{_COMPACT_DATE})$")
    year = parts[0].fillna(parts[3])
    month = parts[1].fillna(parts[4])
    day = parts[2].fillna(parts[5])
    frame = pd.DataFrame({"year": year, "month": month, "day": day}).astype("float64")
    # A year no record can have (0000, 9999) is a bad date, not an overflow of the parser.
    frame = frame.where(frame["year"].between(*_YEARS), axis=0)
    parsed = pd.to_datetime(frame, errors="coerce").astype("datetime64[ns]")
    lookup = np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))
    result = pd.Series(lookup[codes], index=values.index)
    bad = pd.Series(_present(text) & result.isna().to_numpy(), index=values.index)
    return result, bad


def parse_money(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse amounts in yuan; thousands separators and a leading ``¥`` are tolerated.

    Examples
    --------
    >>> amounts, bad = parse_money(pd.Series(["1200.5", "1,200", "¥30", "abc", "-5", None]))
    >>> amounts.tolist(), bad.tolist()
    ([1200.5, 1200.0, 30.0, nan, -5.0, nan], [False, False, False, True, False, False])
    """
    text = clean_code(values)
    numbers = _to_float(text)
    retry = text.notna() & numbers.isna()
    if retry.any():
        stripped = text[retry].str.replace(r"[,，\s]", "", regex=True).str.lstrip("¥￥")
        numbers[retry] = _to_float(stripped)
    infinite = ~np.isfinite(numbers.fillna(0).to_numpy())
    numbers = numbers.mask(infinite)
    bad = pd.Series(_present(text) & numbers.isna().to_numpy(), index=values.index)
    return numbers, bad


def parse_yes_no(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse 是/否, Y/N, 1/0, true/false (any case) into a nullable boolean.

    Examples
    --------
    >>> flags, bad = parse_yes_no(pd.Series(["是", "N", "TRUE", "0", "也许", None]))
    >>> flags.tolist(), bad.tolist()
    ([True, False, True, False, <NA>, <NA>], [False, False, False, False, True, False])
    """
    text = clean_code(values).str.lower()
    is_yes = text.isin(_YES).fillna(False).to_numpy(dtype=bool)
    is_no = text.isin(_NO).fillna(False).to_numpy(dtype=bool)
    result = pd.Series(pd.array([pd.NA] * len(text), dtype="boolean"), index=values.index)
    result[is_yes] = True
    result[is_no] = False
    bad = pd.Series(_present(text) & ~is_yes & ~is_no, index=values.index)
    return result, bad


def parse_levels(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse disability levels given as 1–4 or 一级–四级 into small integers.

    Range checking is left to the schema, so ``5`` parses and is flagged there.

    Examples
    --------
    >>> levels, bad = parse_levels(pd.Series(["1", "二级", "4.0", "5", "重度", "128"]))
    >>> levels.tolist(), bad.tolist()
    ([1, 2, 4, 5, <NA>, <NA>], [False, False, False, False, True, True])
    """
    text = clean_code(values)
    named = text.map(_LEVELS, na_action="ignore")
    numbers = _to_float(text.where(named.isna()))
    combined = _to_float(named).fillna(numbers)
    # Whole numbers that fit the column; 128 or 1e30 is no level and no crash either.
    whole = combined.notna() & (combined == combined.round()) & combined.abs().le(_LEVEL_LIMIT)
    result = combined.where(whole).astype("Int8")
    bad = pd.Series(_present(text) & result.isna().to_numpy(), index=values.index)
    return result, bad
