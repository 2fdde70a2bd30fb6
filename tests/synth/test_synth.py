"""Tests of the synthetic population generator and its sample writer."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.contract.sources import SOURCES
from monitor.io.sample_writer import FORMATS, delivery_plan, write_sample
from monitor.synth.calendar import calendar, dibao_standard, month_of
from monitor.synth.chunk import Population, generate_chunk
from monitor.synth.deliveries import (
    COLUMNS,
    EVENT_DATE,
    EVENT_SOURCES,
    SNAPSHOT_SOURCES,
    event_deliveries,
    snapshot,
)
from monitor.synth.faults import faulty_text
from monitor.validation import idcard

AS_OF = dt.date(2026, 6, 30)
SEED = 11


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_chunk(SEED, 0, 0, 3000, AS_OF)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("sample")
    done = []
    summary = write_sample(home, 1500, SEED, AS_OF, chunk_households=600, progress=done.append)
    assert done == [600, 1200, 1500]
    return home, summary


def _digests(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*")) if p.is_file()
    }


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=str)
    encoding = FORMATS[path.parent.parent.name][1]
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


def test_deterministic_bytes(sample, tmp_path):
    home, summary = sample
    again = write_sample(tmp_path, 1500, SEED, AS_OF, chunk_households=600)
    assert again == summary
    assert _digests(tmp_path) == _digests(home)
    other = write_sample(tmp_path / "other", 1500, SEED + 1, AS_OF, chunk_households=600)
    assert other != summary


def test_all_sources_with_history(sample):
    home, summary = sample
    assert set(summary) == set(SOURCES)
    for source, deliveries in delivery_plan(AS_OF).items():
        folders = sorted(p.name for p in (home / "landing" / source).iterdir())
        assert folders == sorted({d.isoformat() for d, _ in deliveries})
        first = dt.date.fromisoformat(folders[0])
        assert folders[-1] == AS_OF.isoformat()
        assert (AS_OF - first).days >= 36 * 30
        assert len(folders) >= (7 if source in SNAPSHOT_SOURCES else 36)
        files = list((home / "landing" / source).rglob("*.*"))
        assert {f.suffix for f in files} == {"." + FORMATS[source][0]}
        assert summary[source]["rows"] > 0


def test_headers_and_encodings(sample):
    home, _ = sample
    income = next((home / "landing" / "income" / AS_OF.isoformat()).iterdir())
    assert income.read_bytes().decode("gb18030").startswith("户编号,核算日期")
    registry = next((home / "landing" / "registry" / AS_OF.isoformat()).iterdir())
    assert registry.read_bytes().startswith(b"\xef\xbb\xbfid_number,")
    for source in SOURCES:
        path = next(p for p in (home / "landing" / source).rglob("*.*"))
        frame = _read(path)
        expected = [name for name, _ in COLUMNS[source]]
        zh = {s.name: s.zh for s in SOURCES[source].columns}
        assert list(frame.columns) in (expected, [zh[c] for c in expected])


def test_ids_valid_and_match_births(population):
    persons = population.persons
    ids, reason = idcard.normalize_id_numbers(persons["id_number"])
    assert reason.isna().all()
    assert persons["id_number"].is_unique
    births = idcard.birth_dates(ids)
    assert (births.to_numpy() == persons["birth"].to_numpy().astype("datetime64[ns]")).all()
    sexes = idcard.sexes(ids)
    assert ((sexes == "男").to_numpy() == persons["male"].to_numpy()).all()


def test_ids_unique_across_chunks():
    a = generate_chunk(SEED, 0, 0, 800, AS_OF)
    b = generate_chunk(SEED, 1, 800, 800, AS_OF, taken_ids=a.new_ids)
    assert not set(a.persons["id_number"]) & set(b.persons["id_number"])
    assert not set(a.households["household_id"]) & set(b.households["household_id"])


def test_written_ids_mostly_valid(sample):
    home, summary = sample
    path = home / "landing" / "registry" / AS_OF.isoformat() / f"registry_{AS_OF}.csv"
    frame = _read(path)
    _, reason = idcard.normalize_id_numbers(frame["id_number"])
    bad = reason.notna().mean()
    assert 0 < bad < 0.01
    assert (frame["id_number"].str.len() == 15).any() or summary["registry"]["faults"]["legacy_15"]


def test_population_shape(population):
    persons = population.persons
    age = (pd.Timestamp(AS_OF) - persons["birth"]).dt.days / 365.25
    assert 2.5 < len(persons) / len(population.households) < 3.1
    assert 0.22 < (age >= 60).mean() < 0.33
    heads = persons[persons["relation"] == "户主"]["household_id"]
    assert heads.is_unique and set(heads) == set(persons["household_id"])
    working = (age >= 18) & (age < 60)
    assert 0.3 < persons.loc[working, "migrant"].mean() < 0.5


def test_program_and_disability_shares(population):
    persons = len(population.persons)
    snap = snapshot(population, "assistance", AS_OF)
    active = snap[snap["end_date"].isna()]
    share = active.drop_duplicates(["id_number", "program"])["program"].value_counts() / persons
    assert 0.025 < share["低保"] < 0.06
    assert 0.003 < share["特困"] < 0.013
    assert 0.008 < share["低保边缘"] < 0.025
    assert 0.04 < len(snapshot(population, "disability", AS_OF)) / persons < 0.08
    tk = active[active["program"] == "特困"]["monthly_amount"]
    assert (tk < 1.3 * 680).any() and (tk >= 1.3 * 680).mean() > 0.8
    rr = snapshot(population, "rural_revitalization", AS_OF)["status"].value_counts()
    assert 0.08 < (rr.get("脱贫户", 0) + rr.get("脱贫不稳定户", 0)) / 3000 < 0.17
    registry = snapshot(population, "registry", AS_OF)
    dead = set(registry.loc[registry["status"] == "死亡", "id_number"])
    assert active["id_number"].isin(dead).any()  # deceased recipients left active


def test_snapshots_are_as_of_their_date(population):
    cal = calendar(AS_OF)
    for day in cal.snapshot_dates:
        stamp = pd.Timestamp(day)
        reg = snapshot(population, "registry", day)
        assert (reg["status_date"].dropna() <= stamp).all()
        births = idcard.birth_dates(reg["id_number"])
        assert (births <= stamp).all()
        spells = snapshot(population, "assistance", day)
        assert (spells["start_date"] <= stamp).all()
        assert (spells["end_date"].dropna() <= stamp).all()
        assert (snapshot(population, "income", day)["assess_date"] <= stamp).all()
    first = snapshot(population, "registry", cal.snapshot_dates[0])
    last = snapshot(population, "registry", AS_OF)
    assert len(first) < len(last)
    assert (first["status"] == "死亡").sum() < (last["status"] == "死亡").sum()


def test_no_event_after_delivery(sample):
    home, summary = sample
    late = 0
    total = 0
    for source in EVENT_SOURCES:
        column = dict(zip([n for n, _ in COLUMNS[source]],
                          [s.zh for s in SOURCES[source].columns], strict=True))
        for day, name in delivery_plan(AS_OF)[source]:
            frame = _read(home / "landing" / source / day.isoformat() / name)
            col = EVENT_DATE[source]
            values = frame[col] if col in frame else frame[column[col]]
            dates = pd.to_datetime(values, errors="coerce", format="mixed")
            late += int((dates > pd.Timestamp(day)).sum())
            total += len(frame)
        assert late <= sum(summary[s]["faults"].get("future_date", 0) for s in EVENT_SOURCES)
    assert total > 0


def test_income_tracks_hardship_and_standard(population):
    income = snapshot(population, "income", AS_OF)
    registry = snapshot(population, "registry", AS_OF)
    living = registry[registry["status"] == "正常"].groupby("household_id").size()
    net = income["annual_income"] - income["employment_cost"]
    per_capita = net / income["household_id"].map(living)
    assert 14_000 < per_capita.median() < 26_000
    spells = snapshot(population, "assistance", AS_OF)
    active = spells[spells["end_date"].isna() & (spells["program"] == "低保")]
    standard = dibao_standard(np.array([np.datetime64(AS_OF)]))[0]
    ratio = per_capita[income["household_id"].isin(active["household_id"])] / 12 / standard
    assert (ratio < 1).mean() > 0.4
    assert ((ratio >= 1) & (ratio < 1.5)).any()
    assert (ratio >= 1.5).any()


def test_signals_precede_program_entries(population):
    """In the 6 months before a new 低保/低保边缘 entry, signals run above the average."""
    cal = calendar(AS_OF)
    hh = population.households
    start = pd.to_datetime(np.where(hh["in_dibao"], hh["dibao_start"], hh["edge_start"]))
    entering = np.asarray(start > pd.Timestamp(cal.month_starts[6]))
    assert entering.sum() >= 10
    x = population.hardship
    months = month_of(start.to_numpy().astype("datetime64[D]"), cal)
    rows = np.flatnonzero(entering)
    before = np.array([x[r, max(m - 6, 0):m].mean() for r, m in zip(rows, months[rows],
                                                                     strict=True)])
    early = np.array([x[r, max(m - 18, 0):max(m - 12, 1)].mean()
                      for r, m in zip(rows, months[rows], strict=True)])
    assert before.mean() > early.mean()
    # observable signals: medical costs and 失业登记 in the 6 months before entry
    med = population.events["medical"].merge(
        population.persons[["id_number", "household_id"]], on="id_number")
    med_month = month_of(med["settle_date"].to_numpy().astype("datetime64[D]"), cal)
    index = pd.Index(hh["household_id"])
    med_hh = index.get_indexer(med["household_id"])
    cost = np.zeros(x.shape)
    np.add.at(cost, (med_hh, np.clip(med_month, 0, x.shape[1] - 1)), med["out_of_pocket"])
    signal_before = np.array([cost[r, max(m - 6, 0):m].sum() for r, m in zip(rows, months[rows],
                                                                              strict=True)])
    baseline = cost.sum(axis=1) / x.shape[1] * 6
    assert signal_before.mean() > baseline.mean()


def test_faults_injected(sample):
    _, summary = sample
    kinds = {}
    for entry in summary.values():
        for kind, count in entry["faults"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    for kind in ("bad_check_digit", "bad_date", "duplicate_row", "unknown_code",
                 "negative_amount", "legacy_15", "lower_x"):
        assert kinds[kind] > 0, kind
    rows = sum(entry["rows"] for entry in summary.values())
    faults = sum(v for k, v in kinds.items() if k not in ("legacy_15", "lower_x"))
    assert faults / rows < 0.006


def test_faulty_text_values():
    frame = pd.DataFrame({"household_id": ["000000000001"] * 2000,
                          "assess_date": np.full(2000, np.datetime64("2025-01-05")),
                          "annual_income": np.full(2000, 12000.5),
                          "employment_cost": np.zeros(2000)})
    text, counts = faulty_text(frame, "income", np.random.default_rng(1), AS_OF)
    assert len(text["household_id"]) == 2000 + counts["duplicate_row"]
    bad_dates = {v for v in text["assess_date"] if v != "2025-01-05"}
    assert bad_dates <= {"2026-02-30", "2026-13-01", "2025-02-30", "2025-13-01"}
    assert {v for v in text["annual_income"]} <= {"12000.50", "-12000.50"}


def test_keys_unique_before_faults(population):
    cal = calendar(AS_OF)
    for source in SNAPSHOT_SOURCES:
        frame = snapshot(population, source, AS_OF)
        assert not frame.duplicated(list(SOURCES[source].key)).any(), source
    for source in EVENT_SOURCES:
        for frame in event_deliveries(population, source, cal).values():
            assert not frame.duplicated(list(SOURCES[source].key)).any(), source
    medical = population.events["medical"]
    assert (medical["out_of_pocket"] <= medical["total_cost"]).all()
