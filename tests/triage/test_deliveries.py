"""Delivery health: held deliveries, stale sources, and what the operator sees.

A department that stops delivering, or sends half a file, must never silently
change who is listed. The checks are pure (:mod:`monitor.triage.deliveries`) and
tested at their bounds here; the ingest holds a broken delivery (tested on a
synthetic county's real deliveries); and whole runs show that a held
delivery leaves the lists as if it had not come, that a release applies it,
and that a stale source keeps its warnings open.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.contract.sources import SOURCES
from monitor.io.config import load_delivery_expectations, load_parameters, load_rule_definitions
from monitor.io.deliveries import read_decisions, record_decision
from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_as_of, read_manifest, read_source
from monitor.io.sample_writer import write_sample
from monitor.policy.facts import (
    FACTS_FROM_EVERY_SOURCE,
    FACTS_FROM_SOURCE,
    SOURCE_COLUMNS,
    build_facts,
)
from monitor.policy.rules import parse_rules
from monitor.triage import deliveries
from monitor.triage.deliveries import DeliveryProfile, hold_reasons

DAY = dt.date(2026, 6, 30)
PLACES = ("500101001", "500101002", "500102001")
runner = CliRunner()
EXPECTATIONS = load_delivery_expectations()


def days(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


# --------------------------------------------------------------------------- the checks


def profile(rows_by_county: dict[str, int], empty: dict[str, int] | None = None,
            files: tuple = (), day: str = "2026-05-30") -> DeliveryProfile:
    rows = sum(rows_by_county.values())
    return DeliveryProfile(day, files or (("f.csv", rows, 0),), rows, rows_by_county,
                           empty or {})


def checks(current: DeliveryProfile, previous: DeliveryProfile | None,
           source: str = "registry") -> list[str]:
    return [reason.check for reason in hold_reasons(SOURCES[source], current, previous,
                                                    EXPECTATIONS, DAY)]


def test_a_county_at_the_ratio_passes_and_just_below_it_is_held():
    previous = profile({"500101": 1000, "500102": 500})
    assert checks(profile({"500101": 800, "500102": 500}), previous) == []
    assert checks(profile({"500101": 799, "500102": 500}), previous) == ["county_rows"]


def test_a_county_missing_from_a_snapshot_is_held_with_its_name():
    previous = profile({"500101": 1000, "500102": 500})
    reasons = hold_reasons(SOURCES["assistance"], profile({"500101": 1000}), previous,
                           EXPECTATIONS, DAY)
    assert [reason.check for reason in reasons] == ["county_missing"]
    assert "500102 (涪陵区) is missing: 500 rows in the 2026-05-30 delivery" in reasons[0].text
    assert "缺少涪陵区（500102）的数据" in reasons[0].text_zh


def test_small_counties_and_unmatched_rows_are_not_judged_and_events_have_no_county_check():
    previous = profile({"500101": 1000, "500102": 49, "unmatched": 300})
    assert checks(profile({"500101": 1000}), previous) == []
    assert checks(profile({"500101": 1000, "500102": 50}), profile({"500101": 1000,
                                                                     "500102": 50})) == []
    assert checks(profile({"500101": 1000}), profile({"500101": 1000, "500102": 50})) \
        == ["county_missing"]
    # An events delivery holds new rows, not the state: its size may vary freely.
    assert checks(profile({"500101": 10}), profile({"500101": 1000}), "medical") == []


def test_quarantined_share_at_the_bound_passes_and_above_it_is_held():
    at = profile({"500101": 95}, files=(("at.csv", 100, 5),))
    above = profile({"500101": 94}, files=(("above.csv", 100, 6),))
    assert checks(at, None, "medical") == []
    reasons = hold_reasons(SOURCES["medical"], above, None, EXPECTATIONS, DAY)
    assert [reason.check for reason in reasons] == ["quarantined_share"]
    assert reasons[0].text == "above.csv: 6 of 100 rows quarantined (6.0%; at most 5% expected)"
    # A file too small to judge by a share.
    assert checks(profile({"500101": 30}, files=(("small.csv", 49, 19),)), None, "medical") == []


def test_a_column_emptied_past_the_bound_is_held():
    previous = profile({"500101": 1000}, {"end_date": 100})
    assert checks(profile({"500101": 1000}, {"end_date": 400}), previous, "assistance") == []
    held = hold_reasons(SOURCES["assistance"], profile({"500101": 1000}, {"end_date": 401}),
                        previous, EXPECTATIONS, DAY)
    assert [reason.check for reason in held] == ["empty_share"]
    assert "column end_date (终止日期) is empty in 40% of the rows, against 10%" in held[0].text


def test_a_source_is_stale_one_day_past_its_max_age_and_not_at_it():
    manifest = pd.DataFrame({
        "source": ["medical", "registry"], "delivery_date": [DAY.isoformat()] * 2,
        "status": ["accepted", "accepted"], "file": ["m", "r"], "rows_accepted": [10, 20],
        "rows_read": [10, 20], "rows_quarantined": [0, 0], "lake_file": ["m", "r"],
        "hold": pd.array([None, None], dtype="string"),
        "rows_by_county": [None, None], "empty_by_column": [None, None]})
    at = deliveries.delivery_health(manifest, EXPECTATIONS, days(35)).set_index("source")
    past = deliveries.delivery_health(manifest, EXPECTATIONS, days(36)).set_index("source")
    assert at.loc["medical", "status"] == "ok" and at.loc["medical", "age_days"] == 35
    assert past.loc["medical", "status"] == "stale" and bool(past.loc["medical", "stale"])
    assert past.loc["income", "status"] == "never delivered"
    assert past.loc["feedback", "max_age_days"] is pd.NA  # townships are never stale


def test_the_rules_of_a_source_come_from_the_facts_they_name():
    reading = deliveries.rules_reading(parse_rules(load_rule_definitions()))
    assert reading["medical"] == ("SINGLE_PERSON", "MEDICAL_BURDEN", "MODEL_RISK")
    assert reading["disaster"] == ("SUDDEN_HARDSHIP", "MODEL_RISK")
    assert set(reading["assistance"]) < set(reading["registry"])
    assert len(reading["registry"]) == 20 and reading["feedback"] == ()


@pytest.mark.parametrize(("override", "message"), [
    ("regsitry:\n  max_age_days: 30\n",
     "deliveries.yaml: 'regsitry': unknown source (known: defaults, registry,"),
    ("medical:\n  max_age_days: -3\n",
     "deliveries.yaml: setting 'medical.max_age_days': entry 1: -3 is out of range"),
    ("defaults:\n  min_rows_ratio: [{from: 2024-01-01, value: ten}]\n",
     "deliveries.yaml: setting 'defaults.min_rows_ratio': entry 1: 'value' must be a number"),
    ("medical:\n  max_age_dayz: 10\n",
     "setting 'medical.max_age_dayz': unknown setting (known: max_age_days,"),
])
def test_a_bad_override_stops_the_run_before_it_starts_naming_the_file_and_entry(
        home, override, message):
    write_sample(home, 20, 3, DAY, places=("500101001",))
    (home / "deliveries.yaml").write_text(override, encoding="utf-8")
    result = runner.invoke(app, ["run", "--home", str(home), "--date", DAY.isoformat()])
    assert result.exit_code == 1
    assert result.output.startswith("run not started: ") and message in result.output
    assert str(home / "deliveries.yaml") in result.output
    assert not (home / "state" / "ingest_manifest.parquet").exists()
    ingest = runner.invoke(app, ["ingest", "--home", str(home), "--date", DAY.isoformat()])
    assert ingest.exit_code == 1 and message in ingest.output


def test_an_override_replaces_one_setting_of_one_source(tmp_path):
    (tmp_path / "deliveries.yaml").write_text(
        "medical:\n  max_age_days: 10\nfeedback:\n  max_age_days: 40\n", encoding="utf-8")
    expectations = load_delivery_expectations(tmp_path)
    assert expectations.value("medical", "max_age_days", DAY) == 10
    assert expectations.value("feedback", "max_age_days", DAY) == 40
    assert expectations.value("registry", "max_age_days", DAY) == 35
    assert expectations.value("medical", "min_rows_ratio", DAY) == 0.8


def test_a_delivery_dated_before_every_entry_is_judged_by_the_earliest_one(tmp_path):
    (tmp_path / "deliveries.yaml").write_text(
        "registry:\n  min_rows_ratio:\n    values:\n"
        "      - {from: 2027-01-01, value: 0.9, source: agreed}\n"
        "defaults:\n  max_quarantined_share:\n    values:\n"
        "      - {from: 2027-01-01, value: 0.1, source: agreed}\n", encoding="utf-8")
    expectations = load_delivery_expectations(tmp_path)
    backfill = dt.date(2019, 6, 30)
    assert expectations.value("registry", "min_rows_ratio", backfill) == 0.9
    assert expectations.value("medical", "max_quarantined_share", backfill) == 0.1
    # A source's own entry not yet started falls back to the default in force.
    assert expectations.value("registry", "min_rows_ratio", DAY) == 0.8
    current, previous = profile({"500101": 850}), profile({"500101": 1000})
    assert [reason.check for reason in hold_reasons(
        SOURCES["registry"], current, previous, expectations, backfill)] == ["county_rows"]


# --------------------------------------------------------------------------- a county's deliveries


@pytest.fixture
def lake(night_home, tmp_path) -> Path:
    """The sample county's lake after its first night (:func:`conftest.night_home`)."""
    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    return home


def delivered(home: Path, source: str, day: dt.date = DAY) -> tuple[pd.DataFrame, Path]:
    """A sample delivery of DAY as text, and its file."""
    path = next((home / "landing" / source / day.isoformat()).iterdir())
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype("string"), path
    encoding = "gb18030" if source == "income" else "utf-8-sig"
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding), path


def deliver(home: Path, source: str, frame: pd.DataFrame, day: dt.date, name: str = "data"
            ) -> None:
    folder = home / "landing" / source / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    if name.endswith(".parquet"):
        frame.to_parquet(folder / name, index=False)
    else:
        frame.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8-sig")


def half_of_county(registry: pd.DataFrame, county: str) -> pd.DataFrame:
    """The registry with every other household of a county left out."""
    in_county = registry["region_code"].str.startswith(county)
    households = sorted(set(registry.loc[in_county, "household_id"]))
    dropped = set(households[::2])
    return registry[~registry["household_id"].isin(dropped)]


def test_no_delivery_of_the_sample_is_held_and_twelve_nights_are_all_ok(tmp_path):
    # The sample on the schedule rules/deliveries.yaml expects (registry, assistance monthly).
    ingested = tmp_path / "home"
    write_sample(ingested, 120, 11, DAY, places=PLACES)
    ingest_landing(ingested, DAY)
    manifest = read_manifest(ingested)
    assert manifest["hold"].isna().all(), manifest[manifest["hold"].notna()]
    assert read_decisions(ingested).empty
    for night in range(-11, 1):
        health = deliveries.delivery_health(manifest, EXPECTATIONS, days(night))
        assert (health["status"] == "ok").all(), health[health["status"] != "ok"]
    result = runner.invoke(app, ["deliveries", "--home", str(ingested), "--date",
                                 DAY.isoformat(), "--format", "json"])
    shown = json.loads(result.output)
    assert [row["status"] for row in shown["sources"]] == ["ok"] * len(SOURCES)
    assert {row["source"] for row in shown["sources"]} == set(SOURCES)
    table = runner.invoke(app, ["deliveries", "--home", str(ingested), "--date",
                                DAY.isoformat()])
    assert table.exit_code == 0 and table.output.count(" ok ") == len(SOURCES)


def test_a_registry_with_half_of_a_county_is_held_and_the_state_stays(lake):
    registry, _ = delivered(lake, "registry")
    deliver(lake, "registry", half_of_county(registry, "500102"), days(1))
    report = ingest_landing(lake, days(1))
    assert [(d.source, d.delivery_date, d.decision) for d in report.decisions] == [
        ("registry", days(1).isoformat(), "held")]
    assert "county 500102 (涪陵区) has" in report.decisions[0].reasons
    assert [outcome.status for outcome in report.files] == ["held"]
    before = read_source(lake, "registry", DAY)
    assert read_source(lake, "registry", days(1)).equals(before)
    health = deliveries.delivery_health(read_manifest(lake), EXPECTATIONS, days(1))
    row = health.set_index("source").loc["registry"]
    assert row["status"] == "held" and row["held_deliveries"] == days(1).isoformat()
    assert row["last_delivery"] == DAY.isoformat()

    decision = record_decision(lake, "registry", days(1), release=True,
                               note="公安 confirmed the county's records were archived")
    assert decision.decision == "released"
    logged = read_decisions(lake).iloc[-1]
    assert logged["note"] == "公安 confirmed the county's records were archived"
    assert logged["decided_by"] == "operator" and logged["decided_at"].startswith("20")
    assert len(read_source(lake, "registry", days(1))) < len(before)
    with pytest.raises(ValueError, match="registry has no held delivery dated 2026-07-01"):
        record_decision(lake, "registry", days(1), release=True, note="again")


def test_a_county_missing_from_an_assistance_snapshot_is_held(lake):
    assistance, _ = delivered(lake, "assistance")
    households = set(read_source(lake, "registry", DAY, county="500101")["household_id"])
    deliver(lake, "assistance", assistance[~assistance["household_id"].isin(households)],
            days(1))
    report = ingest_landing(lake, days(1))
    assert [d.decision for d in report.decisions] == ["held"]
    assert "county 500101 (万州区) is missing" in report.decisions[0].reasons
    assert read_source(lake, "assistance", days(1)).equals(read_source(lake, "assistance", DAY))
    # Rejected by an operator: its rows never count, and the command says so.
    result = runner.invoke(app, ["reject", "--home", str(lake), "--source", "assistance",
                                 "--delivery", days(1).isoformat(), "--reason", "民政 resent"])
    assert result.exit_code == 0 and "assistance 2026-07-01 rejected" in result.output
    assert read_manifest(lake).query("delivery_date == '2026-07-01'")["hold"].tolist() == [
        "rejected"]
    assert read_source(lake, "assistance", days(2)).equals(read_source(lake, "assistance", DAY))


def test_a_corrected_file_sent_after_a_rejection_is_judged_on_its_own(lake):
    registry, _ = delivered(lake, "registry")
    deliver(lake, "registry", half_of_county(registry, "500102"), days(1), name="half")
    assert [d.decision for d in ingest_landing(lake, days(1)).decisions] == ["held"]
    record_decision(lake, "registry", days(1), release=False, note="公安 will resend")
    moved_away = registry["household_id"].iloc[-1]  # one household fewer: other bytes
    corrected = registry[registry["household_id"] != moved_away]
    deliver(lake, "registry", corrected, days(1), name="corrected")
    report = ingest_landing(lake, days(2))
    assert report.decisions == [] and report.files[0].status == "accepted"
    # The rejected file's keys are not the delivery's: none of the corrected rows repeats them.
    assert "duplicate_key" not in report.files[0].reasons
    before = set(read_source(lake, "registry", DAY)["household_id"])
    assert set(read_source(lake, "registry", days(2))["household_id"]) == before - {moved_away}


def test_a_file_added_to_a_released_delivery_is_held_alone(lake):
    registry, _ = delivered(lake, "registry")
    households = sorted(set(registry.loc[registry["region_code"].str.startswith("500102"),
                                         "household_id"]))
    first = registry[~registry["household_id"].isin(households[len(households) // 2:])]
    deliver(lake, "registry", half_of_county(first, "500102"), days(1), name="part")
    ingest_landing(lake, days(1))
    record_decision(lake, "registry", days(1), release=True, note="the rest follows")
    released = len(read_source(lake, "registry", days(1)))
    # A file of only a few of 涪陵区's people: the delivery fails again, but the released file
    # stays released; only the new one waits.
    deliver(lake, "registry", registry[registry["household_id"] == households[-1]], days(1),
            name="late")
    assert [d.decision for d in ingest_landing(lake, days(2)).decisions] == ["held"]
    manifest = read_manifest(lake).query("delivery_date == '2026-07-01'").set_index("file")
    assert manifest["hold"].isna().sum() == 1 and (manifest["hold"] == "held").sum() == 1
    assert len(read_source(lake, "registry", days(2))) == released


def test_a_file_with_a_fifth_of_its_rows_quarantined_is_held(lake):
    income, _ = delivered(lake, "income")
    broken = income.copy()
    bad = np.arange(len(broken)) % 5 == 0
    broken.loc[bad, broken.columns[2]] = "-100"  # 家庭年收入: a negative amount
    deliver(lake, "income", broken, days(1))
    report = ingest_landing(lake, days(1))
    outcome = report.files[0]
    # The sample's own faults come on top of the planted ones.
    assert outcome.status == "held" and outcome.rows_quarantined >= int(bad.sum())
    assert [d.decision for d in report.decisions] == ["held"]
    share = outcome.rows_quarantined / outcome.rows_read
    assert f"rows quarantined ({share:.1%}; at most 5% expected)" in report.decisions[0].reasons
    assert read_source(lake, "income", days(1)).equals(read_source(lake, "income", DAY))
    # An events delivery is held the same way: its claims are not in the history.
    medical, _ = delivered(lake, "medical")
    claims = pd.concat([medical] * 3, ignore_index=True)
    claims["claim_id"] = [f"X{number}" for number in range(len(claims))]
    claims.loc[np.arange(len(claims)) % 5 == 0, "settle_date"] = "2026-13-01"
    deliver(lake, "medical", claims, days(1), name="claims.parquet")
    assert [d.decision for d in ingest_landing(lake, days(1)).decisions] == ["held"]
    history = read_source(lake, "medical", days(1))
    assert not history["claim_id"].str.startswith("X").any()


def test_a_complete_file_added_later_accepts_a_held_delivery_and_a_later_one_supersedes(lake):
    registry, _ = delivered(lake, "registry")
    half = half_of_county(registry, "500102")
    rest = registry[~registry["id_number"].isin(half["id_number"])]
    deliver(lake, "registry", half, days(1), name="part1")
    assert [d.decision for d in ingest_landing(lake, days(1)).decisions] == ["held"]
    deliver(lake, "registry", rest, days(1), name="part2")
    assert [d.decision for d in ingest_landing(lake, days(2)).decisions] == ["accepted"]
    assert len(read_source(lake, "registry", days(2))) == len(read_source(lake, "registry", DAY))

    deliver(lake, "registry", half, days(3), name="half")
    deliver(lake, "registry", registry, days(4), name="whole")
    made = ingest_landing(lake, days(4)).decisions
    assert [(d.delivery_date, d.decision) for d in made] == [
        (days(3).isoformat(), "held"), (days(3).isoformat(), "superseded")]
    assert deliveries.delivery_health(read_manifest(lake), EXPECTATIONS, days(4)).set_index(
        "source").loc["registry", "status"] == "ok"


def test_each_fact_comes_only_from_the_sources_the_catalogue_names(night_home):
    # A ten-year disaster window, so that the county's few disasters count.
    params = load_parameters(None, DAY).with_override(
        {"sudden_window_days": [{"from": dt.date(2020, 1, 1), "value": 3650}]}, "test")
    sources = read_as_of(night_home, DAY, columns=SOURCE_COLUMNS)
    if sources["disaster"].empty:  # a small sample may have none: plant one
        sources["disaster"] = pd.DataFrame({
            "household_id": sources["registry"]["household_id"].iloc[:1].to_numpy(),
            "event_date": [pd.Timestamp(days(-10))], "loss_amount": [50_000.0]})
    full = build_facts(sources, DAY, params)
    declared = set().union(*FACTS_FROM_SOURCE.values())
    every_fact = set(full.households.columns) | set(full.persons.columns)
    assert declared <= every_fact, declared - every_fact
    # The model's facts are given to the rules beside the facts, not built with them.
    assert not FACTS_FROM_EVERY_SOURCE & every_fact
    for source in FACTS_FROM_SOURCE:
        emptied = {**sources, source: sources[source].iloc[:0]}
        facts = build_facts(emptied, DAY, params)
        changed = {
            name for table in ("households", "persons")
            for name in getattr(full, table).columns
            if not getattr(full, table)[name].equals(getattr(facts, table)[name])}
        assert changed, f"emptying {source} changed no fact: is it read at all?"
        assert changed <= FACTS_FROM_SOURCE[source], (source, changed - FACTS_FROM_SOURCE[source])


# --------------------------------------------------------------------------- whole runs


def run(home: Path, day: dt.date, *options: str) -> object:
    return runner.invoke(app, ["run", "--home", str(home), "--date", day.isoformat(), *options])


def referral_files(home: Path, day: dt.date) -> dict[str, bytes]:
    folder = home / "out" / day.isoformat() / "referrals"
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.glob("*/*.csv"))}


def listed(home: Path, day: dt.date) -> pd.DataFrame:
    frames = [pd.read_csv(pd.io.common.BytesIO(content), encoding="utf-8-sig", dtype=str)
              for content in referral_files(home, day).values()]
    return pd.concat(frames, ignore_index=True)


def run_manifest(home: Path, day: dt.date) -> dict:
    return json.loads((home / "out" / day.isoformat() / "run_manifest.json").read_text("utf-8"))


@pytest.fixture
def first_run(night_home) -> Path:
    """The sample after the nightly run of DAY (:func:`conftest.night_home`; copy it first).

    One household has a disaster that leaves its window between DAY and DAY
    + 35: a warning that closes by itself when the source is not stale.
    """
    return night_home


def copy_of(home: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(home, target)
    return target


def test_a_held_registry_leaves_the_lists_as_if_it_had_not_come_until_released(
        first_run, tmp_path):
    control, home = copy_of(first_run, tmp_path, "control"), copy_of(first_run, tmp_path, "held")
    registry, _ = delivered(home, "registry")
    deliver(home, "registry", half_of_county(registry, "500102"), days(1))

    held = run(home, days(1), "--strict")
    assert held.exit_code == 3, held.output
    assert held.output.rstrip().splitlines()[-1] == "Deliveries: held registry 2026-07-01"
    assert run(control, days(1)).exit_code == 0
    assert referral_files(home, days(1)) == referral_files(control, days(1))
    section = run_manifest(home, days(1))["deliveries"]
    assert section["held"] == ["registry 2026-07-01"] and section["decisions"][0]["decision"] \
        == "held"
    report = (home / "out" / days(1).isoformat() / "report.html").read_text("utf-8")
    assert "数据报送情况" in report and "暂缓采用" in report
    # The same date again reads nothing new, and its manifest still says what was decided.
    assert run(home, days(1), "--strict").exit_code == 3
    assert run_manifest(home, days(1))["deliveries"]["decisions"] == section["decisions"]

    released = runner.invoke(app, ["release", "--home", str(home), "--source", "registry",
                                   "--delivery", days(1).isoformat(), "--reason",
                                   "confirmed with 公安: half the county moved to a new system"])
    assert released.exit_code == 0 and "the next run uses it" in released.output
    assert run(home, days(2)).exit_code == 0
    kept = set(read_source(home, "registry", days(2))["household_id"])
    before, after = listed(home, days(1)), listed(home, days(2))
    gone = set(before["户编号"]) - kept
    assert gone, "the half registry should leave some listed households out"
    assert not gone & set(after["户编号"])
    assert run_manifest(home, days(2))["deliveries"]["held"] == []


def test_a_stale_source_keeps_its_warnings_open_past_its_max_age_and_not_at_it(
        first_run, tmp_path):
    at, past = copy_of(first_run, tmp_path, "at"), copy_of(first_run, tmp_path, "past")
    assert run(at, days(35)).exit_code == 0
    closed = pd.read_parquet(at / "lake" / "warning_events" / f"{days(35).isoformat()}.parquet")
    closed = closed[closed["event"] == "closed"]
    assert len(closed) > 0, "some warning should close by itself within 35 days"
    assert run_manifest(at, days(35))["deliveries"]["stale"] == []

    result = run(past, days(36))
    assert result.exit_code == 0, result.output
    last = result.output.rstrip().splitlines()[-1]
    assert last.startswith("Deliveries: stale registry, assistance, medical, employment, "
                           "education, disaster (") and "warnings kept open" in last
    events = pd.read_parquet(past / "lake" / "warning_events"
                             / f"{days(36).isoformat()}.parquet")
    assert (events["event"] == "closed").sum() == 0
    state = pd.read_parquet(past / "lake" / "warning_state" / f"{days(36).isoformat()}.parquet")
    assert set(closed["warning_id"]) <= set(state.loc[state["status"] == "open", "warning_id"])
    rows = listed(past, days(36)).set_index("户编号")
    for household in set(closed["household_id"]):
        reason = rows.loc[household, "预警原因"]
        assert reason.endswith("相关预警暂不关闭）"), reason
        assert "户籍人口（公安）数据最后报送于2026-06-30（已36天未更新）" in reason
    kept = run_manifest(past, days(36))["deliveries"]["warnings_kept_open"]
    assert kept["total"] >= len(closed)


def test_warnings_kept_open_when_the_previous_outputs_are_gone_still_list(first_run, tmp_path):
    home = copy_of(first_run, tmp_path, "gone")
    shutil.rmtree(home / "out" / DAY.isoformat())
    result = run(home, days(36))
    assert result.exit_code == 0, result.output
    rows = listed(home, days(36))
    # Those no rule hits today are kept open on the stale sources, in general words.
    kept = rows["预警原因"].str.contains("上次运行的预警原因记录已不可得")
    assert kept.any() and rows.loc[kept, "预警原因"].str.endswith("相关预警暂不关闭）").all()
    assert set(listed(first_run, DAY)["户编号"]) <= set(rows["户编号"])  # none closed
