"""`monitor tune` on sample data: one threshold changed, the report's tables against direct counts.

The tune runs once per module on the trained sample county (a model trained
for the tune date, none for the month before). Each expected figure is
counted here straight from the nightly run's own evaluation
(:func:`monitor.triage.evaluation.evaluate_county`, with each parameter set), not
through :mod:`monitor.tuning.compare`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from screenshot import find_chromium, screenshot
from typer.testing import CliRunner

from flows.tune import tune_name
from monitor.cli import app
from monitor.io.config import (
    load_candidate_parameters,
    load_model_settings,
    load_parameters,
    load_rule_definitions,
    load_scoring,
)
from monitor.io.lake import read_as_of, read_source
from monitor.io.models import load_latest_model
from monitor.model.labels import outcome_labels
from monitor.policy.facts import SOURCE_COLUMNS, build_facts
from monitor.policy.rules import LEVELS, parse_rules
from monitor.policy.scoring import RulesOnlyScore
from monitor.triage.evaluation import evaluate_county

COUNTY = "500102"
#: One threshold: the 低保边缘 band widened from 1.5 to 1.7 times the standard.
CANDIDATE = """\
edge_ratio:
  - {from: 2021-01-01, value: 1.7, source: "候选：低保边缘上限提高到1.7倍"}
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def tuned(trained_home, tmp_path_factory):
    home, day = trained_home
    candidate = tmp_path_factory.mktemp("candidate") / "边缘 1.7.yaml"
    folder, tables, output = run_tune(home, day, candidate, CANDIDATE, months=1)
    return {"home": home, "day": day, "candidate": candidate, "folder": folder,
            "tables": tables, "output": output}


def run_tune(home: Path, day: dt.date, candidate: Path, text: str, months: int
             ) -> tuple[Path, dict[str, pd.DataFrame], str]:
    """`monitor tune` with ``text`` as the candidate, from ``months`` before ``day``."""
    candidate.write_text(text, encoding="utf-8")
    first = (pd.Timestamp(day) - pd.DateOffset(months=months)).date()
    result = runner.invoke(app, ["tune", "--home", str(home), "--date", day.isoformat(),
                                 "--parameters", str(candidate), "--from", first.isoformat()])
    assert result.exit_code == 0, result.output
    folder = home / "tune" / tune_name(day, candidate, first, candidate.read_bytes())
    tables = {path.stem: pd.read_parquet(path) for path in (folder / "tables").glob("*.parquet")}
    return folder, tables, " ".join(result.output.split())


def direct(home: Path, day: dt.date, as_of: dt.date, candidate: Path) -> dict:
    """The nightly evaluation of ``as_of`` under each parameter set, as the run does it."""
    current = load_parameters(home, day)
    parameters = {"current": current,
                  "candidate": load_candidate_parameters(current, candidate, day)}
    rules = parse_rules(load_rule_definitions())
    scoring = RulesOnlyScore.from_definition(load_scoring())
    sources = read_as_of(home, as_of, columns=SOURCE_COLUMNS)
    model = load_latest_model(home, as_of)
    return {side: evaluate_county(COUNTY, sources, as_of, params, rules, scoring, model)
            for side, params in parameters.items()} | {"sources": sources,
                                                        "parameters": parameters,
                                                        "model": model}


@pytest.fixture(scope="module")
def counted(tuned):
    """Direct counts on both as-of dates of the tune."""
    dates = sorted(pd.to_datetime(tuned["tables"]["summary"]["as_of"]).dt.date.unique())
    return {as_of: direct(tuned["home"], tuned["day"], as_of, tuned["candidate"])
            for as_of in dates}


def on(table: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    return table[table["as_of"] == pd.Timestamp(as_of)]


def highest_level(hits: pd.DataFrame) -> pd.Series:
    rank = hits["level"].map({level: number for number, level in enumerate(LEVELS)})
    return rank.groupby(hits["household_id"]).min().map(dict(enumerate(LEVELS)))


def test_the_tune_covers_each_month_and_says_where_the_report_is(tuned, counted):
    assert len(counted) == 2
    assert "report.html" in tuned["output"]
    # A line per as-of date as it goes (not on a terminal), then where it wrote, then the
    # summary (the output here has its white space joined).
    output = tuned["output"]
    steps = [output.index("边缘 1.7.yaml against the parameters in force, 2 as-of dates"),
             output.index("(1/2): 1 county compared"),
             output.index("(2/2): 1 county compared"),
             output.index(f"report and tables written: {tuned['folder']}"),
             output.index("Report: ")]
    assert steps == sorted(steps)
    assert (tuned["folder"] / "report.html").stat().st_size > 0
    assert set(tuned["tables"]) == {
        "summary", "parameters", "flagged_by_rule", "flagged_by_level", "flagged_by_county",
        "flagged_by_township", "changes", "history", "history_by_rule", "threshold_curve"}
    for name in tuned["tables"]:
        assert (tuned["folder"] / "tables" / f"{name}.csv").exists()
    parameters = tuned["tables"]["parameters"]
    assert parameters[["parameter", "current", "candidate"]].to_numpy().tolist() == [
        ["edge_ratio", 1.5, 1.7]]


def test_flagged_by_rule_level_and_township_match_a_direct_count(tuned, counted):
    tables = tuned["tables"]
    for as_of, sides in counted.items():
        for side in ("current", "candidate"):
            hits = sides[side].hits
            by_rule = on(tables["flagged_by_rule"], as_of).set_index("rule")[side]
            expected = hits["rule"].value_counts().reindex(by_rule.index, fill_value=0)
            assert by_rule.to_dict() == expected.to_dict(), (as_of, side)
            by_level = on(tables["flagged_by_level"], as_of).set_index("level")[side]
            assert by_level.to_dict() == highest_level(hits).value_counts().reindex(
                list(LEVELS), fill_value=0).to_dict()
            township = hits.drop_duplicates("household_id")["township_code"].value_counts()
            shown = on(tables["flagged_by_township"], as_of).set_index("township_code")[side]
            assert shown[shown > 0].to_dict() == township.to_dict()
            summary = on(tables["summary"], as_of).set_index("side")
            assert summary.loc[side, "households_flagged"] == hits["household_id"].nunique()
    # The widened band flags more households for EDGE_GAP: the test compares something.
    day = tuned["day"]
    assert (counted[day]["candidate"].hits["rule"].eq("EDGE_GAP").sum()
            > counted[day]["current"].hits["rule"].eq("EDGE_GAP").sum())


def test_newly_flagged_and_dropped_households_are_those_of_a_direct_count(tuned, counted):
    for as_of, sides in counted.items():
        before = set(sides["current"].hits["household_id"])
        after = set(sides["candidate"].hits["household_id"])
        changes = on(tuned["tables"]["changes"], as_of)
        assert set(changes.loc[changes["change"] == "newly flagged", "household_id"]) == \
            after - before
        assert set(changes.loc[changes["change"] == "dropped", "household_id"]) == before - after
        assert after - before, "the candidate should flag someone new"
        new = changes[changes["change"] == "newly flagged"]
        assert new["reasons_candidate"].str.contains("【").all()
        assert new["rules_current"].isna().all()


def test_precision_and_recall_match_history_counted_directly(tuned, counted):
    home, day = tuned["home"], tuned["day"]
    settings = load_model_settings()
    feedback = read_source(home, "feedback", day)
    assistance = read_source(home, "assistance", day)
    history = tuned["tables"]["history"]
    for as_of, sides in counted.items():
        since = pd.Timestamp(as_of) - pd.DateOffset(months=settings.label.horizon_months)
        window = feedback[(feedback["closed_date"] > since)
                          & (feedback["closed_date"] <= pd.Timestamp(day))]
        latest = window.sort_values("closed_date", kind="stable").groupby(
            "household_id")["verified"].last()
        facts = build_facts(sides["sources"], as_of, sides["parameters"]["current"])
        entered = outcome_labels(facts, assistance, feedback, day, settings.label)
        positives = set(entered.index[entered["entered_program"]])
        for side in ("current", "candidate"):
            flagged = set(sides[side].hits["household_id"])
            verdicts = latest.reindex(sorted(flagged)).dropna()
            row = on(history, as_of).set_index("side").loc[side]
            assert row["reviewed"] == len(verdicts)
            assert row["verified"] == (verdicts == "属实").sum()
            assert row["reviewed_share"] == pytest.approx(len(verdicts) / len(flagged))
            if as_of < day:
                assert row["later_entries"] == len(positives) > 0
                assert row["recall"] == pytest.approx(len(flagged & positives) / len(positives))
            else:
                # Nothing is known after the tune date yet.
                assert pd.isna(row["recall"])
    assert on(history, day)["reviewed"].sum() > 0


def test_the_model_threshold_curve_at_the_threshold_in_force_lists_the_nightly_households(
        tuned, counted):
    day = tuned["day"]
    sides = counted[day]
    assert sides["model"] is not None, "the sample county is trained for the tune date"
    curve = on(tuned["tables"]["threshold_curve"], day)
    for side in ("current", "candidate"):
        threshold = sides["parameters"][side].value("model_threshold", day, COUNTY)
        at = curve[(curve["side"] == side) & (curve["threshold"] == threshold)].iloc[0]
        assert at["referred"] == sides[side].hits["household_id"].nunique()
        assert at["model_only"] == (sides[side].hits["rule"] == "MODEL_RISK").sum()
    ordered = curve[curve["side"] == "current"].sort_values("threshold")
    assert np.all(np.diff(ordered["referred"]) <= 0)
    assert np.all(np.diff(ordered["expected_recall"]) <= 1e-12)
    # The month before the training date has no model, so no curve.
    assert on(tuned["tables"]["threshold_curve"], min(counted)).empty


def test_the_report_page_shows_the_counts_and_links_nothing_outside(tuned, counted):
    page = (tuned["folder"] / "report.html").read_text(encoding="utf-8")
    day = tuned["day"]
    current = counted[day]["current"].hits["household_id"].nunique()
    candidate = counted[day]["candidate"].hits["household_id"].nunique()
    assert f"现行参数预警 {current:,} 户，候选参数预警 {candidate:,} 户" in page
    for title in ("概要", "预警户数：按规则、等级、区县", "新增与不再预警的户",
                  "乡镇预警户数与核查能力", "与历史对照：精确率与召回率", "模型阈值的容量曲线"):
        assert f">{title}<" in page
    assert page.count('src="data:image/png;base64,') >= 5
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "@font-face" in page


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed "
                    "(apt-get install chromium; .ci/run installs it)")
def test_headless_chromium_renders_the_tune_report(tuned, tmp_path):
    picture = tmp_path / "tune-report.png"
    screenshot(tuned["folder"] / "report.html", picture, width=1280, height=2000)
    pixels = matplotlib.image.imread(picture)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    dark = pixels.max(axis=2) < 0.35
    # Text and charts: plenty of ink, and the chart's blue and orange bars.
    assert dark.mean() > 0.005
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.3)
    orange = (pixels[..., 0] > 0.9) & (pixels[..., 1] > 0.4) & (pixels[..., 1] < 0.6) & (
        pixels[..., 2] < 0.2)
    assert blue.sum() > 1000 and orange.sum() > 1000


def test_a_tune_runs_beside_a_nightly_run_that_holds_the_home(tuned):
    from lock_holder import hold

    home, day = tuned["home"], tuned["day"]
    holder = hold(home, 60)
    try:
        result = runner.invoke(app, ["tune", "--home", str(home), "--date", day.isoformat(),
                                     "--parameters", str(tuned["candidate"])])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 0, result.output
    assert "report.html" in " ".join(result.output.split())


def test_a_candidate_naming_an_unknown_parameter_is_refused_before_anything_starts(
        trained_home, tmp_path):
    home, day = trained_home
    candidate = tmp_path / "typo.yaml"
    candidate.write_text("edge_ration:\n  - {from: 2021-01-01, value: 1.7}\n", encoding="utf-8")
    result = runner.invoke(app, ["tune", "--home", str(home), "--date", day.isoformat(),
                                 "--parameters", str(candidate)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "tune not started:" in output and "typo.yaml" in output
    assert "'edge_ration': unknown name" in output
    assert not list((home / "tune").glob("*typo*"))


def test_a_missing_candidate_file_and_a_backwards_range_are_refused(trained_home, tmp_path):
    home, day = trained_home
    missing = runner.invoke(app, ["tune", "--home", str(home), "--date", day.isoformat(),
                                  "--parameters", str(tmp_path / "nowhere.yaml")])
    assert missing.exit_code == 1
    assert "no such parameter file" in " ".join(missing.output.split())
    backwards = runner.invoke(app, ["tune", "--home", str(home), "--date", day.isoformat(),
                                    "--parameters", str(tmp_path / "nowhere.yaml"),
                                    "--from", (day + dt.timedelta(days=1)).isoformat()])
    assert backwards.exit_code == 2
    assert "is after --date" in " ".join(backwards.output.split())


def test_the_analysts_notebook_example_runs_on_a_home_with_a_run_and_a_tune(tuned, capsys):
    home, day = tuned["home"], tuned["day"]
    result = runner.invoke(app, ["run", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    text = (Path(__file__).parents[2] / "docs" / "analysts.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    assert 'home = Path("demo_home")' in code and "day = dt.date(2026, 6, 30)" in code
    code = code.replace('Path("demo_home")', f"Path({str(home)!r})").replace(
        "dt.date(2026, 6, 30)", f"dt.date.fromisoformat({day.isoformat()!r})")
    # The example's county (万州区) is not in this sample: it reads an empty county.
    exec(compile(code, "docs/analysts.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "households" in printed and "newly flagged" in printed and "precision" in printed


MODEL_CANDIDATE = """\
model_threshold:
  - {from: 2021-01-01, value: 1}
"""


def test_a_lower_model_threshold_backtested_past_the_horizon(trained_home, tmp_path):
    """The model's part of the curve, and recall over whole and cut horizons, counted directly."""
    home, day = trained_home
    candidate = tmp_path / "threshold 1.yaml"
    # Six months back: the first date's horizon ends on the tune date, whole.
    _, tables, _ = run_tune(home, day, candidate, MODEL_CANDIDATE, months=6)
    # The tune date is a month-end, so the as-of dates are month-ends.
    first = (pd.Timestamp(day) - pd.DateOffset(months=6) + pd.offsets.MonthEnd(0)).date()
    history = tables["history"]
    assert sorted(history["as_of"].dt.date.unique())[0] == first
    assert len(history["as_of"].unique()) == 7

    # On the tune date, with the model: at threshold 1 the candidate lists what the nightly
    # evaluation with that threshold lists, the model's own households among them.
    sides = direct(home, day, day, candidate)
    curve = on(tables["threshold_curve"], day)
    at_one = curve[(curve["side"] == "candidate") & (curve["threshold"] == 1)].iloc[0]
    model_only = (sides["candidate"].hits["rule"] == "MODEL_RISK").sum()
    assert model_only > 0
    assert at_one["model_only"] == model_only
    assert at_one["referred"] == sides["candidate"].hits["household_id"].nunique()

    # The oldest date has a whole horizon; the month before the tune date only one month.
    settings = load_model_settings()
    assistance = read_source(home, "assistance", day)
    feedback = read_source(home, "feedback", day)
    for as_of, complete in ((first, True), (sorted(history["as_of"].dt.date.unique())[-2],
                                            False)):
        row = on(history, as_of).set_index("side").loc["current"]
        assert bool(row["window_complete"]) is complete
        end = min((pd.Timestamp(as_of) + pd.DateOffset(months=6)).date(), day)
        assert row["window_end"].date() == end
        evaluated = direct(home, day, as_of, candidate)
        facts = build_facts(evaluated["sources"], as_of, evaluated["parameters"]["current"])
        labels = outcome_labels(facts, assistance, feedback, end, settings.label)
        positives = set(labels.index[labels["entered_program"]])
        flagged = set(evaluated["current"].hits["household_id"])
        assert row["later_entries"] == len(positives) > 0
        assert row["recall"] == pytest.approx(len(flagged & positives) / len(positives))


def test_months_before_the_first_delivery_are_left_out_with_a_notice(trained_home, tmp_path):
    home, _ = trained_home
    candidate = tmp_path / "early.yaml"
    candidate.write_text(CANDIDATE, encoding="utf-8")
    # The sample's first registry delivery is 2023-06-30.
    result = runner.invoke(app, ["tune", "--home", str(home), "--date", "2023-07-31",
                                 "--parameters", str(candidate), "--from", "2023-05-01"])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "no registry delivered yet on 2023-05-31" in output
    assert "the tune starts on 2023-06-30" in output
    (folder,) = (home / "tune").glob("2023-07-31_early_*")
    summary = pd.read_parquet(folder / "tables" / "summary.parquet")
    assert sorted(summary["as_of"].dt.date.astype(str).unique()) == ["2023-06-30", "2023-07-31"]
    assert "以下月份在第一次户籍交换之前" in (folder / "report.html").read_text(encoding="utf-8")
