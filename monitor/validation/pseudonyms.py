"""Pseudonymised id numbers: a keyed hash replaces the digits a masked id number hides.

Pure. In pseudonymised mode the lake never holds a full id number. Each one
keeps the 6 digits in front (the region of issue) and the 4 at the end
(sequence and check character), the parts a referral file shows anyway, and
its middle 8 (the birth date) become 16 hexadecimal digits of a keyed
SipHash-2-4 of the whole number. So the same person has the same pseudonym in
every source, the masked form of a pseudonym is the masked id number, and
without the key the middle cannot be recomputed: a reader of the lake sees no
more of an id number than a referral file shows. Birth date and sex are
taken from the real number at ingest, before it is replaced.

Examples
--------
>>> key = pseudonym_key("a long secret phrase")
>>> pseudonymise(pd.Series(["11010519491231002X", None]), key).tolist()[1] is pd.NA
True
>>> shown = pseudonymise(pd.Series(["11010519491231002X"]), key).iloc[0]
>>> shown[:6], len(shown), shown[-4:]
('110105', 26, '002X')
"""

from __future__ import annotations

import hashlib

import pandas as pd

from monitor.contract.keys import hex16

#: Digits an id number shows in front and at the end when masked; pseudonyms keep them.
SHOWN_FRONT, SHOWN_BACK = 6, 4
#: Shortest secret accepted: a key anyone could guess would protect nothing.
MINIMUM_SECRET_LENGTH = 16
_CHECK_TEXT = "monitor pseudonym key check"


def pseudonym_key(secret: str) -> str:
    """The 16-byte SipHash key derived from the operator's secret (as pandas takes it)."""
    return hashlib.sha256(f"monitor-pseudonym:{secret}".encode()).digest()[:16].decode("latin-1")


def key_check(key: str) -> str:
    """A value that tells whether two keys are the same, from which the key cannot be found."""
    return str(hex16(pd.util.hash_array(pd.Series([_CHECK_TEXT]).to_numpy(dtype=object),
                                        encoding="latin-1", hash_key=key))[0])


def pseudonymise(id_numbers: pd.Series, key: str) -> pd.Series:
    """Each id number with its middle replaced by a keyed hash (missing stays missing)."""
    text = id_numbers.astype("string")
    present = text.notna().to_numpy(dtype=bool)
    result = pd.Series(pd.NA, index=text.index, dtype="string")
    if present.any():
        kept = text[present]
        hashed = hex16(pd.util.hash_array(kept.to_numpy(dtype=object), encoding="latin-1",
                                          hash_key=key))
        result[present] = (kept.str.slice(0, SHOWN_FRONT) + pd.Series(hashed, index=kept.index)
                           + kept.str.slice(-SHOWN_BACK))
    return result
