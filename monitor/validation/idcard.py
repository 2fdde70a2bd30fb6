"""Citizen identity numbers (公民身份号码, GB 11643-1999): check, upgrade, decode, mask.

Scalar helpers document the standard; the ``*_series``/array helpers are the
vectorised forms used on millions of rows.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from monitor.validation.normalize import clean_identifier

#: ISO 7064 MOD 11-2 weights of the first 17 digits.
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
#: Check character for each remainder 0…10 of the weighted sum modulo 11.
CHECK_CHARACTERS = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)
ID_LENGTH = 18
LEGACY_ID_LENGTH = 15
MODULUS = 11
_ZERO = ord("0")

#: Reason codes a malformed id number is quarantined with.
ID_FORMAT = "id_format"
ID_CHECK_DIGIT = "id_check_digit"
ID_BIRTH_DATE = "id_birth_date"


def check_character(first17: str) -> str:
    """Return the check character for the first 17 digits of an id number.

    Examples
    --------
    >>> check_character("11010519491231002")
    'X'
    >>> check_character("44052418800101001")
    '4'
    """
    total = sum(int(digit) * int(weight) for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % MODULUS]


def is_valid_id_number(id_number: str) -> bool:
    """Tell whether an 18-character id number has a valid format, birth date and check digit.

    Examples
    --------
    >>> is_valid_id_number("11010519491231002X")
    True
    >>> is_valid_id_number("110105194912310021")
    False
    """
    normalized, reason = normalize_id_numbers(pd.Series([id_number], dtype="string"))
    return bool(pd.isna(reason.iloc[0])) and normalized.iloc[0] == id_number


def upgrade_legacy_id_number(id15: str) -> str:
    """Upgrade a 15-digit legacy id number to 18 digits ("19" before the year, check added).

    Examples
    --------
    >>> upgrade_legacy_id_number("110105491231002")
    '11010519491231002X'
    """
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_character(first17)


def _digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Stack equal-length ASCII strings into an ``(n, width)`` uint8 matrix."""
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    joined = "".join(values.tolist()).encode("ascii")
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, width)


def check_characters_of(first17_matrix: np.ndarray) -> np.ndarray:
    """Check characters (as ASCII bytes) for a ``(n, 17)`` matrix of ASCII digits."""
    digits = first17_matrix.astype(np.int64) - _ZERO
    return _CHECK_BYTES[(digits @ WEIGHTS) % MODULUS]


def _birth_dates_from_matrix(matrix: np.ndarray) -> pd.Series:
    """Birth dates from digits 7–14 of an ``(n, 18)`` matrix; NaT where not a real date."""
    digits = matrix[:, 6:14].astype(np.int64) - _ZERO
    yyyymmdd = digits @ (10 ** np.arange(7, -1, -1, dtype=np.int64))
    codes, uniques = pd.factorize(yyyymmdd)
    parsed = pd.to_datetime(
        pd.Series(uniques, dtype="int64").astype(str), format="%Y%m%d", errors="coerce"
    )
    return pd.Series(parsed.to_numpy()[codes] if len(codes) else parsed.to_numpy()[:0])


def normalize_id_numbers(values: pd.Series, born_by: pd.Timestamp | None = None
                         ) -> tuple[pd.Series, pd.Series]:
    """Normalise id numbers and say which are malformed.

    Trims spaces, upper-cases a trailing ``x``, upgrades valid 15-digit legacy
    numbers to 18 digits, and checks the format, the birth date and the check
    digit.

    Parameters
    ----------
    values : pandas.Series
        Id numbers as delivered (strings; missing values allowed).
    born_by : pandas.Timestamp, optional
        A birth date after it is also ``id_birth_date`` (e.g. the delivery date).

    Returns
    -------
    normalized : pandas.Series
        The 18-character numbers (missing where the input was missing).
    reason : pandas.Series
        ``None`` for a good number, else one of ``id_format``,
        ``id_check_digit`` or ``id_birth_date``; missing input has no reason
        here (the schema reports it as a missing value).

    Examples
    --------
    >>> delivered = ["11010519491231002x", "110105491231002", "110105194912310021"]
    >>> ids, why = normalize_id_numbers(pd.Series(delivered))
    >>> ids.tolist()
    ['11010519491231002X', '11010519491231002X', '110105194912310021']
    >>> why.tolist()
    [None, None, 'id_check_digit']
    """
    # Cleaned as any identifier: invisible characters and a spreadsheet's leading quote are not
    # part of a number, and a number typed in full-width digits is that number.
    text = clean_identifier(values).str.upper()
    present = text.notna() & (text != "")
    normalized = text.where(present)
    reason = pd.Series([None] * len(text), index=text.index, dtype=object)

    is_legacy = present & text.str.fullmatch(r"[0-9]{15}").fillna(False).astype(bool)
    if is_legacy.any():
        legacy = text[is_legacy]
        first17 = (legacy.str.slice(0, 6) + "19" + legacy.str.slice(6)).to_numpy(dtype=object)
        matrix = _digit_matrix(first17, ID_LENGTH - 1)
        checks = check_characters_of(matrix).tobytes().decode("ascii")
        normalized.loc[is_legacy] = [a + b for a, b in zip(first17, checks, strict=True)]

    is_long = present & normalized.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).astype(bool)
    reason[present & ~is_long] = ID_FORMAT
    if is_long.any():
        matrix = _digit_matrix(normalized[is_long].to_numpy(dtype=object), ID_LENGTH)
        births = _birth_dates_from_matrix(matrix)
        bad_birth = births.isna().to_numpy()
        if born_by is not None:
            bad_birth = bad_birth | (births > born_by).to_numpy()
        bad_check = check_characters_of(matrix[:, :17]) != matrix[:, 17]
        long_index = normalized.index[is_long.to_numpy()]
        reason[long_index[bad_check]] = ID_CHECK_DIGIT
        reason[long_index[bad_birth]] = ID_BIRTH_DATE
    return normalized, reason


def birth_dates(id_numbers: pd.Series) -> pd.Series:
    """Birth dates encoded in valid 18-character id numbers.

    Examples
    --------
    >>> birth_dates(pd.Series(["11010519491231002X"])).dt.strftime("%Y-%m-%d").tolist()
    ['1949-12-31']
    """
    matrix = _digit_matrix(id_numbers.to_numpy(dtype=object), ID_LENGTH)
    births = _birth_dates_from_matrix(matrix)
    births.index = id_numbers.index
    return births


def sexes(id_numbers: pd.Series) -> pd.Series:
    """Sex encoded in valid id numbers: ``男`` for an odd 17th digit, else ``女``.

    Examples
    --------
    >>> sexes(pd.Series(["11010519491231002X", "440524188001010014"])).tolist()
    ['女', '男']
    """
    matrix = _digit_matrix(id_numbers.to_numpy(dtype=object), ID_LENGTH)
    odd = ((matrix[:, 16].astype(np.int64) - _ZERO) % 2).astype(bool)
    return pd.Series(np.where(odd, "男", "女"), index=id_numbers.index, dtype="string")


def make_id_numbers(
    address_codes: np.ndarray, birth_dates_: pd.Series | np.ndarray, sequence: np.ndarray
) -> np.ndarray:
    """Build valid 18-character id numbers (vectorised), for synthetic data and tests.

    Parameters
    ----------
    address_codes : array of str
        6-digit address codes.
    birth_dates_ : array of datetime64
        Birth dates.
    sequence : array of int
        3-digit sequence numbers (odd for men, even for women).

    Examples
    --------
    >>> born = pd.to_datetime(["1949-12-31"])
    >>> make_id_numbers(np.array(["110105"]), born, np.array([2])).tolist()
    ['11010519491231002X']
    """
    births = pd.DatetimeIndex(birth_dates_).strftime("%Y%m%d").to_numpy(dtype=object)
    seq = np.char.zfill(np.asarray(sequence).astype(str), 3)
    addresses = np.asarray(address_codes).astype(str)
    first17 = np.char.add(np.char.add(addresses, births.astype(str)), seq)
    checks = check_characters_of(_digit_matrix(first17.astype(object), ID_LENGTH - 1))
    return np.char.add(first17, checks.view("S1").astype(str))


def mask_id_numbers(id_numbers: pd.Series) -> pd.Series:
    """Mask id numbers as first 6 + eight ``*`` + last 4, as referral files require.

    Examples
    --------
    >>> mask_id_numbers(pd.Series(["11010519491231002X"])).tolist()
    ['110105********002X']
    """
    text = id_numbers.astype("string")
    return text.str.slice(0, 6) + "********" + text.str.slice(-4)


#: An id number or a mobile number standing alone in free text (not part of a longer number).
_ID_IN_TEXT = r"(?<![0-9])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])"
_PHONE_IN_TEXT = r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])"


def mask_numbers_in_text(texts: pd.Series) -> pd.Series:
    """Mask every id number and mobile number found inside free text.

    For text copied from what somebody typed (a refused answer shown back to
    its township): an id number keeps its first 6 and last 4 characters, a
    mobile number its first 3 and last 4.

    Examples
    --------
    >>> mask_numbers_in_text(pd.Series(["见11010519491231002X，电话13812345678"])).tolist()
    ['见110105********002X，电话138****5678']
    """
    text = texts.astype("string")
    return (text.str.replace(_ID_IN_TEXT, r"\1********\2", regex=True)
            .str.replace(_PHONE_IN_TEXT, r"\1****\2", regex=True))


def mask_numbers_in_line(text: str) -> str:
    """:func:`mask_numbers_in_text` for one message (what a command prints, a log line).

    Examples
    --------
    >>> mask_numbers_in_line("landing/registry/2026-06-30/11010519491231002X.csv: bad")
    'landing/registry/2026-06-30/110105********002X.csv: bad'
    """
    return re.sub(_PHONE_IN_TEXT, r"\1****\2", re.sub(_ID_IN_TEXT, r"\1********\2", text))
