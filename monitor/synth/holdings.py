"""Housing safety ratings and household assets (vehicles, flats, businesses, savings).

Pure. Worse ratings and fewer assets go with hardship; a C or D house is
sometimes repaired and rated again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.synth.calendar import DAY, Calendar
from monitor.synth.draws import digits, lognormal
from monitor.synth.population import HouseholdRisk
from monitor.synth.programs import DIBAO_THRESHOLD

ASSETS_SINCE = np.datetime64("2010-01-01")
PLATE_LETTERS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))


def housing_ratings(rng: np.random.Generator, x: np.ndarray, risk: HouseholdRisk,
                    cal: Calendar) -> pd.DataFrame:
    """农房安全鉴定 for about 45% of households since 2019, with re-ratings after repairs."""
    n, last = x.shape[0], cal.last_day
    assessed = np.flatnonzero(rng.random(n) < 0.45)
    day = np.datetime64("2019-01-01") + (
        rng.random(len(assessed)) * (last - np.datetime64("2019-01-01")).astype(np.int64)
    ).astype(np.int64) * DAY
    bad_share = (0.03 + 0.12 / (1 + np.exp(-(x[assessed, 0] - DIBAO_THRESHOLD) * 2))
                 + 0.03 * risk.elder_only[assessed])
    draw = rng.random(len(assessed))
    rating = np.where(draw < bad_share * 0.3, "D", np.where(draw < bad_share, "C",
                      np.where(draw < 0.5, "A", "B")))
    fix = np.isin(rating, ["C", "D"]) & (rng.random(len(assessed)) < 0.4)
    fix_day = day[fix] + rng.integers(180, 540, fix.sum()) * DAY
    fixed = fix_day <= last
    return pd.DataFrame({
        "hh": np.concatenate([assessed, assessed[fix][fixed]]),
        "assess_date": np.concatenate([day, fix_day[fixed]]),
        "rating": np.concatenate([rating, np.where(rng.random(fixed.sum()) < 0.7, "A", "B")]),
    })


def _owned(rng: np.random.Generator, owner: np.ndarray, mask: np.ndarray, kind: str,
           reference: np.ndarray, value: np.ndarray, cal: Calendar) -> pd.DataFrame:
    """The assets of one kind of the households in ``mask``, recorded since 2010."""
    households = np.flatnonzero(mask)
    span = (cal.last_day - ASSETS_SINCE).astype(np.int64)
    return pd.DataFrame({
        "person": owner[households], "asset_type": kind, "asset_ref": reference[households],
        "value": np.round(value[households], -2),
        "record_date": ASSETS_SINCE + (rng.random(len(households)) * span).astype(np.int64)
        * DAY,
    })


def household_assets(rng: np.random.Generator, x: np.ndarray, first_member: np.ndarray,
                     id_number: np.ndarray, cal: Calendar) -> pd.DataFrame:
    """Vehicles, flats, businesses and savings, owned by each household's head."""
    n = x.shape[0]
    fewer = np.exp(-0.8 * np.maximum(x[:, -1] - 0.5, 0))  # hardship, fewer assets
    plate = np.char.add(np.char.add("渝", rng.choice(PLATE_LETTERS, n)),
                        np.char.add(rng.choice(PLATE_LETTERS, n), digits(rng, n, 4)))
    parts = [_owned(rng, first_member, rng.random(n) < 0.17 * fewer, "机动车", plate,
                    lognormal(rng, 60000, 0.5, n), cal)]
    house = rng.random(n) < 0.09 * fewer
    deed = np.char.add(np.char.add("渝(", rng.integers(2010, 2026, n).astype(str)),
                       np.char.add(")不动产权第", np.char.add(digits(rng, n, 7), "号")))
    parts.append(_owned(rng, first_member, house, "商品房", deed,
                        lognormal(rng, 380000, 0.45, n), cal))
    parts.append(_owned(rng, first_member, house & (rng.random(n) < 0.12), "商品房",
                        np.char.add(deed, "-2"), lognormal(rng, 300000, 0.45, n), cal))
    licence = np.char.add("92500", np.char.add(digits(rng, n, 9), digits(rng, n, 4)))
    parts.append(_owned(rng, first_member, rng.random(n) < 0.05 * fewer, "工商登记", licence,
                        lognormal(rng, 50000, 0.9, n), cal))
    account = np.char.add("6228", np.char.add(digits(rng, n, 7), digits(rng, n, 8)))
    parts.append(_owned(rng, first_member, rng.random(n) < 0.35, "金融资产", account,
                        lognormal(rng, 15000, 1.2, n) * fewer, cal))
    assets = pd.concat(parts, ignore_index=True)
    assets["id_number"] = id_number[assets["person"].to_numpy()]
    return assets
