"""Small random draws of the synthetic population: amounts, digit strings, Chinese names.

Pure: each takes the generator it draws from.
"""

from __future__ import annotations

import numpy as np
from faker.providers.person.zh_CN import Provider as _ZhNames

_LAST = np.array(list(_ZhNames.last_names.keys()))
_LAST_P = np.array(list(_ZhNames.last_names.values()), dtype=float)
_LAST_P /= _LAST_P.sum()
_MALE = np.array(_ZhNames.first_names_male)
_FEMALE = np.array(_ZhNames.first_names_female)


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    """``n`` log-normal amounts around ``median``."""
    return median * np.exp(sigma * rng.standard_normal(n))


def digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random strings of ``width`` digits."""
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width)


def _given_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    n = len(male)
    first = np.where(male, rng.choice(_MALE, n), rng.choice(_FEMALE, n))
    second = np.where(male, rng.choice(_MALE, n), rng.choice(_FEMALE, n))
    two = (rng.random(n) < 0.65) & (np.char.str_len(first.astype(str)) == 1)
    return np.where(two, np.char.add(first, second), first)


def person_names(rng: np.random.Generator, surnames: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Chinese names from Faker's zh_CN lists, drawn vectorised."""
    return np.char.add(surnames.astype(str), _given_names(rng, male))


def random_surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    """Surnames weighted as in Faker's zh_CN provider."""
    return rng.choice(_LAST, n, p=_LAST_P)
