"""`monitor train` end to end, then `monitor run` scoring with the model it wrote.

One small synthetic county is trained on once per module (on the temporary
Prefect server); the tests read what the commands left.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.models import CARD_FILE, METADATA_FILE, MODEL_FILE, VALIDATION_FILE
from tests.deliveries import DELIVERY, good_frame, write_delivery

DAY = dt.date(2026, 6, 30)
EARLIER = DAY - dt.timedelta(days=1)
runner = CliRunner()


def command(*arguments: str):
    return runner.invoke(app, [*arguments])


@pytest.fixture(scope="module")
def trained(trained_home, tmp_path_factory):
    shared, day = trained_home
    # A copy: the shared home stays as `monitor train` left it.
    home = tmp_path_factory.mktemp("scored") / "home"
    shutil.copytree(shared, home)
    # A low threshold, so that the model lists some households on its own.
    (home / "parameters.yaml").write_text(
        "model_threshold:\n  - {from: 2020-01-01, value: 4}\n", encoding="utf-8")
    seen = {"home": home, "train": home.joinpath("train-output.txt").read_text("utf-8")}
    seen["folders"] = sorted(path for path in (home / "models").iterdir())
    seen["run"] = command("run", "--home", str(home), "--date", day.isoformat())
    seen["earlier"] = command("run", "--home", str(home), "--date", EARLIER.isoformat())
    return seen


def manifest(home: Path, day: dt.date) -> dict:
    return json.loads((home / "out" / day.isoformat() / "run_manifest.json").read_text("utf-8"))


def test_train_writes_the_artifact_and_the_card(trained):
    assert "Recall at 10 per township" in trained["train"]
    # Not on a terminal: a line per stage and per as-of date as it goes, the summary after.
    lines = trained["train"].splitlines()
    built = [line for line in lines if re.match(r"\d\d:\d\d:\d\d as-of \d{4}-\d\d-\d\d \(", line)]
    assert len(built) == 7 and built[-1].split(" (")[1].startswith("7/7)")
    stages = ["configuration checked; ingesting", "as-of dates: 7 to build", "fitting on ",
              "fitted: ", "model written: "]
    at = [next(number for number, line in enumerate(lines) if stage in line)
          for stage in stages]
    summary = next(number for number, line in enumerate(lines) if line.startswith("Model "))
    assert at == sorted(at) and at[-1] < summary
    (folder,) = trained["folders"]
    assert {path.name for path in folder.iterdir()} == {MODEL_FILE, METADATA_FILE, CARD_FILE,
                                                        VALIDATION_FILE}
    metadata = json.loads((folder / METADATA_FILE).read_text("utf-8"))
    assert metadata["version"] == folder.name and folder.name.startswith("2026-06-30-")
    assert metadata["trained_on"] == "2026-06-30"
    assert metadata["as_of_dates"]["validation"] == ["2025-12-30"]
    assert max(metadata["as_of_dates"]["training"]) == "2025-06-30"
    assert metadata["as_of_dates"]["calibration"] == metadata["as_of_dates"]["training"]
    assert len(metadata["data_sha256"]) == 64
    for figure in ("roc_auc", "recall_at_capacity", "rules_recall_at_capacity"):
        assert 0 <= metadata["validation"][figure] <= 1
    card = (folder / CARD_FILE).read_text("utf-8")
    for heading in ("## Against the rules alone, at capacity 10 per township",
                    "## Calibration (validation)", "### sex of the household head",
                    "### age band of the household head", "### Groups called out"):
        assert heading in card
    validation = pd.read_parquet(folder / VALIDATION_FILE)
    assert len(validation) == metadata["rows"]["validation"]
    assert not any("id_number" in column for column in validation.columns)


def test_the_run_scores_with_the_model_and_explains_model_warnings(trained):
    result, home = trained["run"], trained["home"]
    assert result.exit_code == 0, result.output
    (folder,) = trained["folders"]
    assert f"风险评分 from model {folder.name}" in result.output
    model = manifest(home, DAY)["model"]
    assert model["version"] == folder.name and model["trained_on"] == "2026-06-30"
    warnings = pd.read_parquet(home / "out" / DAY.isoformat() / "warnings.parquet")
    model_risk = warnings[warnings["rule"] == "MODEL_RISK"]
    assert len(model_risk), "a threshold of 4 should list some households on the model alone"
    # Each names what raised its score, or says that no single feature did.
    factors = model_risk["reason"].str.extract(r"；主要因素：(.+)$")[0]
    assert factors.notna().all()
    named = factors.str.fullmatch(r"[^；]+（\+\d+分）(；[^；]+（\+\d+分）){0,2}")
    assert named.mean() > 0.5
    assert set(factors[~named]) <= {"多项因素共同作用，无单一突出因素"}
    # A household listed on the model alone has no other warning.
    others = warnings[warnings["household_id"].isin(model_risk["household_id"])]
    assert set(others["rule"]) == {"MODEL_RISK"}


def test_a_run_before_the_training_date_scores_on_rules_alone(trained):
    result, home = trained["earlier"], trained["home"]
    assert result.exit_code == 0, result.output
    assert "风险评分 from the rules alone: no model trained yet" in result.output
    model = manifest(home, EARLIER)["model"]
    assert model["version"] is None and model["risk_score"].startswith("rules-only")


def test_a_model_that_cannot_be_loaded_stops_the_run_before_it_starts(trained, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained["home"] / "models", home / "models")
    (folder,) = (home / "models").iterdir()
    (folder / MODEL_FILE).write_bytes(b"not a model")
    result = command("run", "--home", str(home), "--date", DAY.isoformat())
    assert result.exit_code == 1
    assert "run not started:" in result.output and "cannot load the model" in result.output
    assert not (home / "out").exists()


def test_training_without_enough_history_says_so(tmp_path, prefect_server):
    home = tmp_path / "home"
    # One registry delivery: the earliest as-of date of the plan is a year and more before it.
    write_delivery(home, "registry", good_frame("registry"), DELIVERY)
    result = command("train", "--home", str(home), "--date", DELIVERY.isoformat())
    assert result.exit_code == 1
    assert "training failed:" in result.output and "not enough history" in result.output
