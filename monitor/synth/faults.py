"""Row faults in the synthetic deliveries: a small, deterministic share of what ingest must refuse.

Pure. Each fault is a kind of bad value a department really sends (a wrong
check digit, 2月30日, a negative amount, a repeated row, an unlisted code, a
date after the delivery); the valid variants (15-digit legacy id numbers, a
lowercase ``x``) are written first, so that faults stay visible.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from monitor.synth.calendar import DAY, as_day
from monitor.synth.deliveries import COLUMNS, EVENT_DATE, EVENT_SOURCES, as_text, date_text
from monitor.validation import idcard

#: Share of rows given a quarantine-worthy fault.
FAULT_RATE = 0.002
#: Share of old people's id numbers written as 15-digit legacy numbers (valid).
LEGACY_RATE = 0.01
#: Share of X-ending id numbers written with a lowercase ``x`` (valid).
LOWER_X_RATE = 0.05
#: Id numbers of people born in these years may be written in the legacy 15-digit form.
LEGACY_BIRTH_YEARS = (1900, 1960)

#: The value used for the ``unknown_code`` fault, by source and column.
UNKNOWN_CODES = {
    "registry": ("relation", "表亲"),
    "assistance": ("program", "五保户"),
    "rural_revitalization": ("status", "一般户"),
    "medical": ("category", "其他病种"),
    "disability": ("disability_type", "内脏"),
    "employment": ("event_type", "退休"),
    "education": ("status", "转学"),
    "housing": ("rating", "E"),
    "disaster": ("disaster_type", "地震"),
    "assets": ("asset_type", "股票"),
    "feedback": ("action", "其他"),
}


def _fault_kinds(source: str) -> list[str]:
    """The faults a source's rows can be given (by the kinds of its columns)."""
    kinds = {kind for _, kind in COLUMNS[source]}
    return ["duplicate_row",
            *(["bad_check_digit"] if "id" in kinds else []),
            *(["bad_date"] if "date" in kinds else []),
            *(["negative_amount"] if "money" in kinds else []),
            *(["unknown_code"] if source in UNKNOWN_CODES else []),
            *(["future_date"] if source in EVENT_SOURCES else [])]


def _valid_variants(text: dict[str, np.ndarray], id_columns: list[str], hit: np.ndarray,
                    rng: np.random.Generator, counts: dict[str, int]) -> None:
    """Legacy 15-digit numbers for some born 1900–1959, and a lowercase ``x`` for some."""
    n = len(hit)
    for column in id_columns:
        ids = text[column]
        matrix = idcard._digit_matrix(ids, idcard.ID_LENGTH).astype(np.int64)
        year = (matrix[:, 6:10] - ord("0")) @ np.array([1000, 100, 10, 1])
        old = (year >= LEGACY_BIRTH_YEARS[0]) & (year < LEGACY_BIRTH_YEARS[1])
        legacy = np.flatnonzero(old & (rng.random(n) < LEGACY_RATE) & ~hit)
        ids[legacy] = [s[:6] + s[8:17] for s in ids[legacy]]
        counts["legacy_15"] = counts.get("legacy_15", 0) + len(legacy)
        ends_x = matrix[:, 17] == ord("X")
        ends_x[legacy] = False
        lower = np.flatnonzero(ends_x & (rng.random(n) < LOWER_X_RATE) & ~hit)
        ids[lower] = [s[:-1] + "x" for s in ids[lower]]
        counts["lower_x"] = counts.get("lower_x", 0) + len(lower)


def _bad_check_digits(ids: np.ndarray, rows: np.ndarray) -> None:
    swap = {c: idcard.CHECK_CHARACTERS[(idcard.CHECK_CHARACTERS.index(c) + 1) % 11]
            for c in idcard.CHECK_CHARACTERS}
    ids[rows] = [s[:17] + swap[s[17].upper()] if len(s) == idcard.ID_LENGTH else s
                 for s in ids[rows]]


def _bad_dates(text: dict[str, np.ndarray], date_columns: list[str], rows: np.ndarray,
               pick: np.ndarray, delivery_date: dt.date) -> None:
    columns = (np.array(date_columns)[(pick[rows] * len(date_columns)).astype(int)]
               if len(rows) else [])
    for row, column in zip(rows, columns, strict=True):
        year = delivery_date.year - (1 if row % 3 == 0 else 0)
        text[column][row] = f"{year}-02-30" if row % 2 == 0 else f"{year}-13-01"


def _negative_amounts(text: dict[str, np.ndarray], money_columns: list[str],
                      rows: np.ndarray) -> None:
    for row in rows:
        column = money_columns[row % len(money_columns)]
        value = text[column][row]
        text[column][row] = "-" + value if value not in ("", "0") else "-100"


def faulty_text(frame: pd.DataFrame, source: str, rng: np.random.Generator,
                delivery_date: dt.date) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Strings of a delivery with a small share of deterministic faults.

    Faults (each on about ``FAULT_RATE`` of rows): ``bad_check_digit``
    (id number's check character replaced), ``bad_date`` (``YYYY-02-30`` or
    ``YYYY-13-01``), ``negative_amount``, ``duplicate_row``, ``unknown_code``
    (values in :data:`UNKNOWN_CODES`), ``future_date`` (events: dated 3–30 days
    after delivery). Valid variants, not faults: ``legacy_15`` (15-digit id
    numbers of people born 1900–1959) and ``lower_x``.

    Returns
    -------
    text : dict of str to numpy.ndarray
        Column strings, in contract order.
    counts : dict of str to int
        How many rows got each fault or variant.
    """
    text = as_text(frame, source)
    n = len(frame)
    counts: dict[str, int] = {}
    if n == 0:
        return text, counts
    by_kind: dict[str, list[str]] = {}
    for column, kind in COLUMNS[source]:
        by_kind.setdefault(kind, []).append(column)
    fault_kinds = _fault_kinds(source)
    hit = rng.random(n) < FAULT_RATE
    which = rng.integers(0, len(fault_kinds), n)
    pick = rng.random(n)

    def rows(kind: str) -> np.ndarray:
        return np.flatnonzero(hit & (which == fault_kinds.index(kind)))

    _valid_variants(text, by_kind.get("id", []), hit, rng, counts)
    if "bad_check_digit" in fault_kinds:
        counts["bad_check_digit"] = len(faulty := rows("bad_check_digit"))
        _bad_check_digits(text[by_kind["id"][0]], faulty)
    if "bad_date" in fault_kinds:
        counts["bad_date"] = len(faulty := rows("bad_date"))
        _bad_dates(text, by_kind["date"], faulty, pick, delivery_date)
    if "negative_amount" in fault_kinds:
        counts["negative_amount"] = len(faulty := rows("negative_amount"))
        _negative_amounts(text, by_kind["money"], faulty)
    if "unknown_code" in fault_kinds:
        column, bad = UNKNOWN_CODES[source]
        counts["unknown_code"] = len(faulty := rows("unknown_code"))
        text[column][faulty] = bad
    if "future_date" in fault_kinds:
        counts["future_date"] = len(faulty := rows("future_date"))
        later = as_day(delivery_date) + (3 + (pick[faulty] * 27).astype(np.int64)) * DAY
        text[EVENT_DATE[source]][faulty] = date_text(later)
    repeated = rows("duplicate_row")
    if len(repeated):
        order = np.sort(np.concatenate([np.arange(n), repeated]), kind="stable")
        text = {column: values[order] for column, values in text.items()}
    counts["duplicate_row"] = len(repeated)
    return text, counts
