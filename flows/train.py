"""Training the risk model as a Prefect flow: history in, a model artifact and its card out.

Thin orchestration over :mod:`monitor.model.training`::

    ingest → for each as-of date of the plan:
             read (as of the date; assistance and feedback as of the horizon's end)
             → rows (features, outcome; rules baseline on the validation date)
           → fit, calibrate, compare → write models/<version>/ (one rename)
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.nightly import (
    as_date,
    default_task_runner,
    ingest,
    io_task,
    quiet_task,
    run_name,
    say,
)
from monitor.io.config import (
    load_delivery_expectations,
    load_model_settings,
    load_parameters,
    load_rules,
    load_scoring,
)
from monitor.io.lake import counties_as_of, read_as_of, read_source
from monitor.io.lock import home_lock
from monitor.io.models import write_model
from monitor.io.outputs import remove_leftovers
from monitor.io.permissions import keep_private
from monitor.io.runs import TrainingRun
from monitor.model.labels import LABEL_COLUMNS
from monitor.model.risk import ModelSettings
from monitor.model.training import (
    VALIDATION,
    Snapshot,
    TrainingResult,
    combine_rows,
    snapshot_rows,
    train_model,
    training_plan,
)
from monitor.policy.facts import SOURCE_COLUMNS, history_needed
from monitor.policy.params import Parameters
from monitor.policy.rules import Rule
from monitor.policy.scoring import RulesOnlyScore
from monitor.reports.model_card import model_card


@io_task(task_run_name="rows {snapshot.role} {snapshot.as_of}")
def snapshot_task(home: Path, snapshot: Snapshot, params: Parameters, settings: ModelSettings,
                  rules: list[Rule], scoring: RulesOnlyScore) -> pd.DataFrame:
    """Every household's rows for one as-of date (the rules baseline on the validation date).

    Whole dates, not counties, are the unit here: a training reads a few dates,
    and one read of everything costs less than one per county (measured on
    1,000,000 households: under 8.5 GiB at the peak of a whole training).
    """
    if not counties_as_of(home, snapshot.as_of):
        raise ValueError(f"no registry delivered on or before {snapshot.as_of}: not enough "
                         "history for this training date")
    sources = read_as_of(home, snapshot.as_of, columns=SOURCE_COLUMNS,
                         since=history_needed(params, snapshot.as_of))
    at_end = {name: read_source(home, name, snapshot.end, columns=columns)
              for name, columns in LABEL_COLUMNS.items()}
    baseline = (rules, scoring) if snapshot.role == VALIDATION else (None, None)
    return snapshot_rows(sources, at_end["assistance"], at_end["feedback"], snapshot, params,
                         settings, *baseline)


@quiet_task
def fit(rows: pd.DataFrame, settings: ModelSettings, train_date: dt.date) -> TrainingResult:
    """Fit, calibrate and compare the candidates; keep one."""
    return train_model(rows, settings, train_date)


@io_task
def write(home: Path, result: TrainingResult, settings: ModelSettings) -> Path:
    """Write the model folder and publish the card as an artifact."""
    card = model_card(result, settings)
    columns = ["township_code", "county_code", "head_sex", "head_age_band", "label",
               "rules_score", "probability"]
    target = write_model(home, result.model, card, result.validation[columns])
    create_markdown_artifact(card, key="model-card",
                             description=f"风险模型 {result.model.version}")
    return target


@flow(name="train", flow_run_name=run_name("train", "train_date"),
      task_runner=default_task_runner(), log_prints=False, validate_parameters=False)
def train(home: Path, train_date: dt.date | None = None, lock_wait_seconds: float = 0
          ) -> TrainingRun:
    """Train the risk model on the history up to ``train_date``; write it under the home.

    ``train_date`` defaults to today in Asia/Shanghai. Holds the home's lock
    throughout, as a run does.
    """
    home, train_date = Path(home), as_date(train_date)
    keep_private()  # a deployment run starts here, not from the command line
    with home_lock(home, f"monitor train {train_date}", lock_wait_seconds):
        return _train(home, train_date)


def _train(home: Path, train_date: dt.date) -> TrainingRun:
    """The training flow's steps (the home's lock held)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    params = load_parameters(home, train_date)
    settings = load_model_settings()
    remove_leftovers(home)
    rules = load_rules(params)
    scoring = RulesOnlyScore.from_definition(load_scoring())
    say(f"{train_date}: configuration checked; ingesting")
    ingest(home, train_date, load_delivery_expectations(home))
    timings["ingest"] = time.perf_counter() - started
    say(f"ingested ({timings['ingest']:.1f} s)")

    mark = time.perf_counter()
    plan = training_plan(train_date, settings)
    say(f"as-of dates: {len(plan)} to build")
    futures = [snapshot_task.submit(home, snapshot, params, settings, rules, scoring)
               for snapshot in plan]
    built = []
    for number, future in enumerate(futures, start=1):
        built.append(future.result())
        say(f"as-of {plan[number - 1].as_of} ({number}/{len(plan)}): {len(built[-1]):,} rows")
    rows = combine_rows(built)
    timings["rows"] = time.perf_counter() - mark

    mark = time.perf_counter()
    say(f"fitting on {len(rows):,} rows")
    result = fit(rows, settings, train_date)
    timings["fit"] = time.perf_counter() - mark
    say(f"fitted: {result.chosen} chosen ({timings['fit']:.1f} s)")
    mark = time.perf_counter()
    target = write(home, result, settings)
    timings["write"] = time.perf_counter() - mark
    say(f"model written: {target}")
    timings["total"] = time.perf_counter() - started
    return TrainingRun(target, result.model.version, result.chosen,
                       result.model.metadata["validation"], result.row_counts, timings)
