"""Fast key lookups over Arrow-backed columns (hashing in Arrow's C++ kernels).

pandas' string indexes hash through Python objects; on millions of id numbers
Arrow's ``index_in`` and ``dictionary_encode`` are several times faster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MISSING = -1
ID_DIGITS = 17


def _arrow(values: pd.Series) -> pa.Array:
    array = pa.array(values.array) if isinstance(values, pd.Series) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def arrow_strings(values: pd.Series) -> pa.Array:
    """A column as one Arrow string array (without a copy when it is Arrow-backed already)."""
    return _arrow(values.astype("string"))


def positions_in_many(values: list[pd.Series], keys: pd.Series) -> list[np.ndarray]:
    """For each value of several columns, the position of the first equal key (-1: none).

    Every string is hashed once: keys and values are dictionary-encoded
    together, then each value's code is mapped to its key's position.

    Examples
    --------
    >>> keys = pd.Series(["a", "b"])
    >>> [p.tolist() for p in positions_in_many([pd.Series(["b", None]), pd.Series(["x"])], keys)]
    [[1, -1], [-1]]
    """
    arrays = [_arrow(column.astype("string")) for column in (keys, *values)]
    encoded = pc.dictionary_encode(pa.concat_arrays([a.cast(pa.large_string()) for a in arrays]))
    codes = encoded.indices.fill_null(MISSING).to_numpy().astype(np.int64)
    key_count = len(keys)
    key_codes_ = codes[:key_count]
    position_of_code = np.full(len(encoded.dictionary) + 1, MISSING, dtype=np.int64)
    # Reversed, so that the first of equal keys is the one kept.
    position_of_code[key_codes_[::-1]] = np.arange(key_count)[::-1]
    position_of_code[MISSING] = MISSING  # a missing value (code -1) matches nothing
    results, start = [], key_count
    for column in values:
        part = codes[start:start + len(column)]
        results.append(position_of_code[part])
        start += len(column)
    return results


def _id_integers(column: pd.Series) -> np.ndarray:
    """The first 17 digits of id numbers as integers (they decide the check character)."""
    digits = pc.utf8_slice_codeunits(_arrow(column.astype("string")), 0, ID_DIGITS)
    return pc.cast(digits, pa.int64()).fill_null(MISSING).to_numpy()


def id_positions_in_many(values: list[pd.Series], keys: pd.Series) -> list[np.ndarray]:
    """:func:`positions_in_many` for id numbers, hashing them as integers.

    Ingest accepts only valid 18-character numbers, whose first 17 digits fix
    the check character, so those digits identify a person; integers hash
    several times faster than strings. Anything else falls back to strings.

    Examples
    --------
    >>> keys = pd.Series(["11010519491231002X", "440524188001010014"])
    >>> id_positions_in_many([pd.Series(["440524188001010014", None])], keys)[0].tolist()
    [1, -1]
    """
    try:
        key_numbers = _id_integers(keys)
        value_numbers = [_id_integers(column) for column in values]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return positions_in_many(values, keys)
    index = pd.Index(key_numbers)
    if not index.is_unique or (key_numbers == MISSING).any():
        return positions_in_many(values, keys)
    results = []
    for numbers in value_numbers:
        found = index.get_indexer(numbers)
        found[numbers == MISSING] = MISSING
        results.append(found.astype(np.int64))
    return results


def key_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One integer per row, equal exactly when the rows' key columns are all equal."""
    codes = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        values = frame[column]
        if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
            encoded = pc.dictionary_encode(_arrow(values.astype("string")))
            part = encoded.indices.fill_null(MISSING).to_numpy().astype(np.int64) + 1
            size = len(encoded.dictionary) + 1
        else:
            part, uniques = pd.factorize(values, use_na_sentinel=True)
            part = part.astype(np.int64) + 1
            size = len(uniques) + 1
        # Re-number after each column so the codes stay below the row count (no overflow).
        codes = pd.factorize(codes * size + part)[0].astype(np.int64)
    return codes


def last_per_key(frame: pd.DataFrame, columns: list[str], order: np.ndarray) -> np.ndarray:
    """Row positions keeping, for each key, the row that comes last in ``order``.

    ``order`` is a sortable array (e.g. delivery dates); among equal keys the
    row with the greatest order, then the later position, wins.

    Examples
    --------
    >>> frame = pd.DataFrame({"k": ["a", "b", "a"]})
    >>> last_per_key(frame, ["k"], np.array([2, 1, 1])).tolist()
    [0, 1]
    """
    codes = key_codes(frame, columns)
    counts = np.bincount(codes)
    if counts.max(initial=0) <= 1:
        return np.arange(len(frame))
    sequence = np.lexsort((np.arange(len(frame)), order, codes))
    sorted_codes = codes[sequence]
    is_last = np.append(sorted_codes[1:] != sorted_codes[:-1], True)
    return np.sort(sequence[is_last])


def hex16(values: np.ndarray) -> np.ndarray:
    """64-bit integers as 16 upper-case hex digits, without a Python loop.

    Examples
    --------
    >>> hex16(np.array([0, 255, 2**64 - 1], dtype=np.uint64)).tolist()
    ['0000000000000000', '00000000000000FF', 'FFFFFFFFFFFFFFFF']
    """
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    digits = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)[nibbles.astype(np.intp)]
    return np.ascontiguousarray(digits).view("S16").ravel().astype(str)
