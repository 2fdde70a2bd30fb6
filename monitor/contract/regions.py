"""Chongqing counties and townships (统计用区划代码) shipped with the package.

The table is the project's copy of shared/data/chongqing_townships.csv
(CC BY 4.0; attribution in monitor/data/README.md).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

COUNTY_DIGITS = 6
TOWNSHIP_DIGITS = 9
REGION_DIGITS = 12
#: The region-code prefix of the whole municipality (重庆, 50): a parameter's bureau-wide value.
BUREAU_REGION = "50"


@cache
def townships() -> pd.DataFrame:
    """All townships: ``county_code``, ``county_name``, ``township_code``, ``township_name``.

    Examples
    --------
    >>> townships().query("township_code == '500101001'").township_name.item()
    '高笋塘街道'
    """
    with resources.files("monitor.data").joinpath("chongqing_townships.csv").open("rb") as handle:
        return pd.read_csv(handle, dtype="string")


@cache
def county_names() -> pd.Series:
    """County names by 6-digit county code.

    Examples
    --------
    >>> county_names()["500101"]
    '万州区'
    """
    return townships().drop_duplicates("county_code").set_index("county_code")["county_name"]


@cache
def township_names() -> pd.Series:
    """Township names by 9-digit township code."""
    return townships().set_index("township_code")["township_name"]


def township_regions() -> pd.Series:
    """A region code in every township (its ``000`` village): to check each township's values."""
    return townships()["township_code"] + "000"


def county_of(region_codes: pd.Series) -> pd.Series:
    """The 6-digit county code of 12-digit region codes."""
    return region_codes.astype("string").str.slice(0, COUNTY_DIGITS)


def township_of(region_codes: pd.Series) -> pd.Series:
    """The 9-digit township code of 12-digit region codes."""
    return region_codes.astype("string").str.slice(0, TOWNSHIP_DIGITS)


def is_known_township(region_codes: pd.Series) -> pd.Series:
    """Whether the township part of each region code is a real Chongqing township."""
    known = pd.Index(townships()["township_code"])
    return township_of(region_codes).isin(known).fillna(False).astype(bool)
