"""The synthetic population's events: disasters, medical claims, employment, schooling, answers.

Pure. Disasters strike townships by season (the same for every chunk);
medical claims follow age and hardship, with bursts after illness; 外出务工,
返乡 and 失业登记 follow migration and job loss; 辍学 follows hardship; the
township's answers follow program entries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.contract import regions
from monitor.synth.calendar import (
    DAY,
    Calendar,
    as_day,
    day_in_month,
    month_of,
    month_start,
)
from monitor.synth.draws import lognormal, person_names, random_surnames


def disaster_clusters(seed: int, cal: Calendar) -> pd.DataFrame:
    """Township-month disasters, the same for every chunk (clustered by township and month).

    Returns a frame with ``township`` (row of :func:`regions.townships`),
    ``month`` (simulated month index), ``disaster_type``, ``intensity`` and
    ``hit_share`` (share of the township's households that suffer a loss).
    """
    rng = np.random.default_rng([seed, 7_777_777])
    n_town = len(regions.townships())
    calendar_month = (np.arange(cal.months) + cal.start_month) % 12
    season = np.array([1, 1, 1, 1.5, 2.5, 4, 5, 4, 2, 1, 1, 1])[calendar_month]
    hit = rng.random((n_town, cal.months)) < 0.0045 * season[None, :]
    town, month = np.nonzero(hit)
    cm = calendar_month[month]
    types = np.array(["洪涝", "地质灾害", "火灾", "风雹", "干旱", "其他"])
    summer = np.array([0.5, 0.25, 0.02, 0.1, 0.1, 0.03])
    winter = np.array([0.02, 0.2, 0.5, 0.03, 0.05, 0.2])
    spring = np.array([0.2, 0.2, 0.1, 0.35, 0.05, 0.1])
    u = rng.random(len(town))
    kind = np.select(
        [(cm >= 5) & (cm <= 8), (cm >= 10) | (cm <= 1)],
        [np.searchsorted(summer.cumsum(), u * 0.99999),
         np.searchsorted(winter.cumsum(), u * 0.99999)],
        np.searchsorted(spring.cumsum(), u * 0.99999),
    )
    return pd.DataFrame({
        "township": town,
        "month": month,
        "disaster_type": types[kind],
        "intensity": np.exp(0.5 * rng.standard_normal(len(town))),
        "hit_share": rng.uniform(0.03, 0.25, len(town)),
        "day": rng.random(len(town)),
    })


def disaster_days(hits: pd.DataFrame, cal: Calendar) -> np.ndarray:
    """The day of each household's disaster: the cluster's day within its month."""
    months = hits["month"].to_numpy()
    start = cal.month_starts[months]
    length = (cal.month_starts[months + 1] - start).astype(np.int64)
    day = start + (hits["day"].to_numpy() * length).astype(np.int64) * DAY
    return np.minimum(day, as_day(cal.as_of))


def medical_claims(rng, cal, chunk_index, hh, age_start, x, ill, birth, death, id_number):
    """Claims: a base rate by age and hardship, plus bursts after illness shocks."""
    P, T = len(hh), cal.months
    base = np.select([age_start < 18, age_start < 60, age_start < 75], [0.03, 0.04, 0.08], 0.11)
    chronic = (age_start >= 55) & (rng.random(P) < 0.3)
    ill_h, ill_m = np.nonzero(ill)
    # the ill member: an elder-weighted random member of the household
    order = np.argsort(hh, kind="stable")
    first = np.searchsorted(hh[order], ill_h)
    count = np.bincount(hh, minlength=x.shape[0])[ill_h]
    ill_p = order[first + (rng.random(len(ill_h)) * count).astype(np.int64)]
    parts = []
    for t in range(T):
        lam = base * np.exp(0.3 * np.maximum(x[hh, t] - 0.5, 0))
        k = rng.poisson(lam)
        idx = np.repeat(np.arange(P), k)
        inpatient = rng.random(len(idx)) < np.where(age_start[idx] >= 60, 0.14, 0.06)
        cat = np.where(chronic[idx] & ~inpatient, "门诊慢特病", "普通")
        cost = np.where(inpatient, lognormal(rng, 5500, 0.8, len(idx)),
                        np.where(chronic[idx], lognormal(rng, 450, 0.7, len(idx)),
                                 lognormal(rng, 160, 0.9, len(idx))))
        sel = ill_m == t
        extra = rng.poisson(1.6, sel.sum()) + 1
        b_idx = np.repeat(ill_p[sel], extra)
        b_month = t + rng.integers(0, 3, len(b_idx))
        severe = rng.random(len(b_idx)) < 0.25
        heavy = lognormal(rng, 45000, 0.7, len(b_idx)) * (rng.pareto(2.5, len(b_idx)) + 1)
        b_cost = np.where(severe, heavy, lognormal(rng, 9000, 0.8, len(b_idx)))
        parts.append(pd.DataFrame({
            "person": np.concatenate([idx, b_idx]),
            "month": np.concatenate([np.full(len(idx), t), b_month]),
            "total_cost": np.concatenate([cost, b_cost]),
            "category": np.concatenate([cat, np.where(severe, "重特大疾病", "普通")]),
            "inpatient": np.concatenate([inpatient, severe | (rng.random(len(b_idx)) < 0.7)]),
        }))
    claims = pd.concat(parts, ignore_index=True)
    claims = claims[claims["month"] < T]
    person = claims["person"].to_numpy()
    date = day_in_month(rng, claims["month"].to_numpy(), cal)
    alive = (date >= birth[person]) & (np.isnat(death[person]) | (date <= death[person]))
    claims = claims[alive]
    date = date[alive]
    person = person[alive]
    total = np.round(claims["total_cost"].to_numpy().clip(5, None), 2)
    share = np.where(claims["inpatient"].to_numpy(), rng.uniform(0.15, 0.45, len(total)),
                     rng.uniform(0.3, 0.8, len(total)))
    order = np.lexsort((person, date))
    serial = np.char.zfill(np.arange(len(total)).astype(str), 9)
    claims_id = np.char.add(f"YB{chunk_index:05d}", serial)
    out = pd.DataFrame({
        "claim_id": claims_id,
        "id_number": id_number[person[order]],
        "settle_date": date[order],
        "total_cost": total[order],
        "out_of_pocket": np.round(total * share, 2)[order],
        "category": claims["category"].to_numpy()[order],
        "inpatient": np.where(claims["inpatient"].to_numpy()[order], "是", "否"),
        "person": person[order],
    })
    return out


def employment_events(rng, cal, hh, migrant, working, jobloss, id_number, birth):
    """外出务工 for migrants (mostly in the warm-up), 返乡 for some, 失业登记 after job loss."""
    T = cal.months
    parts = []
    mig = np.flatnonzero(migrant)
    m_month = np.where(rng.random(len(mig)) < 0.75, rng.integers(0, 12, len(mig)),
                       rng.integers(0, T, len(mig)))
    parts.append((mig, m_month, "外出务工"))
    back = rng.random(len(mig)) < 0.18
    b_month = m_month + rng.integers(3, 30, len(mig))
    ok = back & (b_month < T)
    parts.append((mig[ok], b_month[ok], "返乡"))
    # some who came back register as unemployed, some leave again
    re_un = ok & (rng.random(len(mig)) < 0.3) & (b_month + 1 < T)
    parts.append((mig[re_un], b_month[re_un] + 1, "失业登记"))
    again = ok & ~re_un & (rng.random(len(mig)) < 0.4) & (b_month + 4 < T)
    parts.append((mig[again], b_month[again] + 4, "外出务工"))
    # local workers: registered employment, job loss, re-employment
    local = np.flatnonzero(working & ~migrant)
    reg = rng.random(len(local)) < 0.25
    parts.append((local[reg], rng.integers(0, T, reg.sum()), "就业登记"))
    jl_h, jl_m = np.nonzero(jobloss)
    order = np.argsort(hh[local], kind="stable")
    lh = hh[local][order]
    first = np.searchsorted(lh, jl_h)
    count = np.searchsorted(lh, jl_h, side="right") - first
    has = count > 0
    pick = local[order][(first + (rng.random(len(jl_h)) * np.maximum(count, 1)).astype(np.int64))
                        .clip(0, max(len(local) - 1, 0))] if len(local) else np.empty(0, np.int64)
    pick, jl_m = pick[has], jl_m[has]
    parts.append((pick, jl_m, "失业登记"))
    re_emp = rng.random(len(pick)) < 0.5
    re_m = jl_m + rng.integers(2, 9, len(pick))
    ok = re_emp & (re_m < T)
    parts.append((pick[ok], re_m[ok], "就业登记"))
    person = np.concatenate([p[0] for p in parts])
    month = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    date = day_in_month(rng, month, cal)
    ok = date > birth[person]
    out = pd.DataFrame({"id_number": id_number[person[ok]], "event_date": date[ok],
                        "event_type": kind[ok], "person": person[ok]})
    out = out.drop_duplicates(["id_number", "event_date", "event_type"])
    return out.sort_values(["event_date", "id_number"], kind="stable").reset_index(drop=True)


def school_events(rng, cal, hh, birth, death, x, id_number):
    """在读 every September for ages 6–17, 毕业 at 15 or 18, rare 辍学 (hardship) and 休学."""
    T = cal.months
    first_year = month_start(cal.start_month).year
    parts = []
    for year in range(first_year, cal.as_of.year + 1):
        sep = np.datetime64(f"{year}-09-01")
        jul = np.datetime64(f"{year}-07-01")
        age = (sep - birth).astype(np.int64) / 365.25
        alive = np.isnat(death) | (death > sep)
        school = np.flatnonzero((age >= 6) & (age < 18) & alive)
        parts.append((school, np.full(len(school), sep) + rng.integers(0, 6, len(school)) * DAY,
                      "在读"))
        jage = (jul - birth).astype(np.int64) / 365.25
        grad = np.flatnonzero(((np.abs(jage - 15.5) < 0.5) | (np.abs(jage - 18.5) < 0.5)) & alive)
        grad_day = np.full(len(grad), jul) + rng.integers(0, 10, len(grad)) * DAY
        parts.append((grad, grad_day, "毕业"))
    person = np.concatenate([p[0] for p in parts])
    date = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    # dropouts: a hazard that rises steeply with household hardship (ages 12–17)
    month_idx = np.clip(month_of(date, cal), 0, T - 1)
    age = (date - birth[person]).astype(np.int64) / 365.25
    hard = x[hh[person], month_idx]
    p_drop = np.where((age >= 12) & (kind == "在读"), 0.004 * np.exp(1.3 * (hard - 0.8)), 0)
    drop = rng.random(len(person)) < np.minimum(p_drop, 0.3)
    pause = (kind == "在读") & ~drop & (rng.random(len(person)) < 0.002)
    extra_date = date + rng.integers(30, 200, len(person)) * DAY
    out = pd.DataFrame({
        "person": np.concatenate([person, person[drop], person[pause]]),
        "event_date": np.concatenate([date, extra_date[drop], extra_date[pause]]),
        "status": np.concatenate([kind, np.full(drop.sum(), "辍学"), np.full(pause.sum(), "休学")]),
    })
    # a dropout does not come back: later 在读/毕业 rows removed
    first_drop = np.full(len(birth), np.datetime64("2200-01-01"), dtype="datetime64[D]")
    dropped = out["status"].to_numpy() == "辍学"
    np.minimum.at(first_drop, out["person"].to_numpy()[dropped],
                  out["event_date"].to_numpy()[dropped].astype("datetime64[D]"))
    out = out[out["event_date"].to_numpy() <= first_drop[out["person"].to_numpy()]]
    out = out[out["event_date"] < as_day(cal.as_of) + DAY]
    out = out[out["event_date"].to_numpy() >= cal.month_starts[0]]
    out["id_number"] = id_number[out["person"].to_numpy()]
    out = out.drop_duplicates(["id_number", "event_date"], keep="last")
    return out.sort_values(["event_date", "id_number"], kind="stable").reset_index(drop=True)


def township_feedback(rng, cal, spells, hh, household_id, hh_global, n):
    """Township feedback on warnings: entries that followed a warning, and checked-out ones."""
    first_delivery = as_day(cal.history_start)
    entries = spells[spells["program"].isin(["低保", "低保边缘", "临时救助"])]
    entries = entries.drop_duplicates(["household_id", "program", "start_date"])
    entries = entries[entries["start_date"].to_numpy() > first_delivery + 30 * DAY]
    entries = entries[rng.random(len(entries)) < 0.6]
    action = entries["program"].map({"低保": "纳入低保", "低保边缘": "纳入低保边缘",
                                     "临时救助": "临时救助"}).to_numpy()
    closed = entries["start_date"].to_numpy() - rng.integers(0, 20, len(entries)) * DAY
    hh_of = (entries["person"].to_numpy())
    hh_index = hh[hh_of]
    checked = np.flatnonzero(rng.random(n) < 0.004 * cal.months / 12)
    c_closed = first_delivery + (rng.random(len(checked)) * (as_day(cal.as_of) - first_delivery)
                                 .astype(np.int64)).astype(np.int64) * DAY
    c_action = rng.choice(["无需救助", "定期探访", "转介其他部门", "医疗救助"], len(checked),
                          p=[0.5, 0.3, 0.1, 0.1])
    verified = np.concatenate([np.full(len(hh_index), "属实"),
                               np.where(c_action == "无需救助", "不属实", "属实")])
    households = np.concatenate([hh_index, checked])
    closed = np.concatenate([closed, c_closed])
    opened = closed - rng.integers(3, 25, len(closed)) * DAY
    warning_id = np.char.add(
        np.char.add("YJ", pd.DatetimeIndex(opened).strftime("%Y%m%d").to_numpy(dtype=str)),
        np.char.add("-", np.char.zfill((hh_global[households] % 1_000_000).astype(str), 6)),
    )
    caseworker = person_names(rng, random_surnames(rng, len(households)),
                              rng.random(len(households)) < 0.5)
    out = pd.DataFrame({
        "warning_id": warning_id, "household_id": household_id[households],
        "verified": verified, "action": np.concatenate([action, c_action]),
        "closed_date": closed, "caseworker": caseworker,
    })
    out = out[out["closed_date"].to_numpy() >= first_delivery]
    out = out.drop_duplicates("warning_id")
    return out.sort_values(["closed_date", "warning_id"], kind="stable").reset_index(drop=True)


def disaster_events(disasters: pd.DataFrame, loss: np.ndarray, household_id: np.ndarray,
                    cal: Calendar) -> pd.DataFrame:
    """The disaster source's rows: one per household struck, with its loss."""
    days = disaster_days(disasters, cal)
    struck = household_id[disasters["hh"].to_numpy()]
    return pd.DataFrame({
        "event_id": np.char.add(np.char.add("ZQ", pd.DatetimeIndex(days).strftime(
            "%Y%m%d").to_numpy(dtype=str)), struck),
        "household_id": struck,
        "event_date": days,
        "disaster_type": disasters["disaster_type"].to_numpy(),
        "loss_amount": loss,
    })
