"""Whether a home's lake is pseudonymised, and with which key (from ``MONITOR_PSEUDONYM_KEY``).

The key is read from the environment and never written anywhere. The home
records only that its lake is pseudonymised and a check value of the key
(``state/pseudonyms.json``), so that a run with another key, or none, is
refused instead of mixing two kinds of id numbers in one lake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from monitor.io.files import atomic_path
from monitor.io.home import Home
from monitor.io.lake import read_manifest
from monitor.validation.pseudonyms import MINIMUM_SECRET_LENGTH, key_check, pseudonym_key

KEY_VARIABLE = "MONITOR_PSEUDONYM_KEY"


class PseudonymError(ValueError):
    """The key given does not fit the home's lake."""


def lake_pseudonym_key(home: Path, create: bool = True) -> str | None:
    """The key to pseudonymise id numbers with, or None for a plain lake.

    A new home given a key is marked pseudonymised (unless ``create`` is
    false: a check before a run starts).

    Raises
    ------
    PseudonymError
        A pseudonymised lake without the key or with another one, a key for a
        lake that already holds plain id numbers, or a key too short.
    """
    home = Path(home)
    secret = os.environ.get(KEY_VARIABLE, "")
    marker = Home.of(home).pseudonym_marker
    recorded = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None
    if not secret:
        if recorded is not None:
            raise PseudonymError(f"{marker}: this home's lake holds pseudonymised id numbers; "
                                 f"set {KEY_VARIABLE} to its key")
        return None
    if len(secret) < MINIMUM_SECRET_LENGTH:
        raise PseudonymError(f"{KEY_VARIABLE} is shorter than {MINIMUM_SECRET_LENGTH} "
                             "characters")
    key = pseudonym_key(secret)
    if recorded is not None:
        if recorded.get("key_check") != key_check(key):
            raise PseudonymError(f"{KEY_VARIABLE} is not the key this home's lake was "
                                 f"pseudonymised with ({marker})")
        return key
    if len(read_manifest(home)):
        raise PseudonymError(f"{KEY_VARIABLE} is set, but this home's lake already holds plain "
                             "id numbers: pseudonymise a new home from its deliveries")
    if not create:
        return key
    with atomic_path(marker) as staged:
        staged.write_text(json.dumps({"pseudonymised": "id_number, SipHash-2-4 keyed",
                                      "key_check": key_check(key)}) + "\n", encoding="utf-8")
    return key
