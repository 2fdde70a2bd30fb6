"""``monitor tune`` as a Prefect flow: the current and a candidate parameter set on the same facts.

Thin orchestration over :mod:`monitor.tuning`::

    for each as-of date (the tune date, or each month from --from to it):
        read the lake as of that date → evaluate under both parameter sets
    → report (HTML with charts, tables) → HOME/tune/<name>/ (one rename)

A tune reads the lake and writes only its own folder: it ingests nothing and
changes no warning, so it can be run at any time (it takes the home's lock,
so that it never reads a lake a run is writing).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import pandas as pd
from prefect import flow

from flows.nightly import as_date, default_task_runner, io_task, quiet_task
from monitor.facts import SOURCE_COLUMNS
from monitor.io.config import (
    load_candidate_parameters,
    load_model_settings,
    load_parameters,
    load_rule_definitions,
)
from monitor.io.fonts import cjk_font_bytes, use_cjk_font
from monitor.io.lake import counties_as_of, read_as_of, read_source
from monitor.io.lock import home_lock
from monitor.io.models import load_latest_model
from monitor.io.outputs import code_version, write_report_folder
from monitor.params import Parameters
from monitor.rules import Rule, parse_rules
from monitor.tune_report import tune_report
from monitor.tuning import (
    CANDIDATE,
    CURRENT,
    History,
    changed_parameters,
    combine_dates,
    compare_date,
    history_needed_by_all,
    months_back,
)

#: The region-code prefix of the whole bureau (Chongqing).
BUREAU_REGION = "50"
HISTORY_COLUMNS = {"assistance": ["id_number", "program", "start_date"],
                   "feedback": ["warning_id", "household_id", "verified", "closed_date"]}


def tune_name(tune_date: dt.date, candidate: Path, from_date: dt.date | None) -> str:
    """The tune's folder name: its date, the candidate file's name, and the first as-of date.

    Examples
    --------
    >>> tune_name(dt.date(2026, 6, 30), Path("edge 1.6.yaml"), dt.date(2026, 1, 1))
    '2026-06-30_edge_1.6_from_2026-01-01'
    """
    stem = "".join(char if char.isalnum() or char in "._-" else "_" for char in candidate.stem)
    return f"{tune_date.isoformat()}_{stem}" + (f"_from_{from_date.isoformat()}"
                                                 if from_date else "")


@io_task(task_run_name="compare {as_of}")
def compare(home: Path, as_of: dt.date, parameters: dict[str, Parameters], rules: list[Rule],
            history: History, capacity: int) -> dict[str, pd.DataFrame]:
    """Both parameter sets on the lake as it was on ``as_of``, with that date's model."""
    if not counties_as_of(home, as_of):
        raise ValueError(f"no registry delivered on or before {as_of}: nothing to tune on")
    sources = read_as_of(home, as_of, columns=SOURCE_COLUMNS,
                         since=history_needed_by_all(parameters, as_of))
    model = load_latest_model(home, as_of)
    return compare_date(sources, as_of, parameters, rules, model, history, capacity)


@quiet_task
def render(tables: dict[str, pd.DataFrame], about: dict) -> str:
    """The tune's HTML report, its Chinese set in the font the project installs."""
    return tune_report(tables, about, font_family=use_cjk_font(), font=cjk_font_bytes())


@io_task
def write(target: Path, html: str, tables: dict[str, pd.DataFrame], about: dict,
          candidate_text: bytes) -> Path:
    """The report, its tables, the candidate file and the tune's manifest, in one rename."""
    return write_report_folder(target, html, tables, about,
                               extra={"candidate_parameters.yaml": candidate_text})


@flow(name="tune", task_runner=default_task_runner(), log_prints=False,
      validate_parameters=False)
def tune(home: Path, candidate: Path, tune_date: dt.date | None = None,
         from_date: dt.date | None = None, capacity: int | None = None,
         lock_wait_seconds: float = 0) -> dict:
    """Compare the parameters in force with ``candidate`` on the tune date (or each month since).

    ``capacity`` is the households a township's caseworkers can verify (by
    default the model settings' ``capacity.per_township``).
    """
    home, tune_date = Path(home), as_date(tune_date)
    from_date = as_date(from_date) if from_date is not None else None
    with home_lock(home, f"monitor tune {tune_date}", lock_wait_seconds):
        return _tune(home, Path(candidate), tune_date, from_date, capacity)


def _tune(home: Path, candidate: Path, tune_date: dt.date, from_date: dt.date | None,
          capacity: int | None) -> dict:
    """The tune flow's steps (the home's lock held)."""
    started = time.perf_counter()
    dates = months_back(tune_date, from_date) if from_date else [tune_date]
    current = load_parameters(home, tune_date)
    parameters = {CURRENT: current,
                  CANDIDATE: load_candidate_parameters(current, candidate, tune_date)}
    for params in parameters.values():
        for as_of in dates:
            params.check_in_force(as_of)
    rules = parse_rules(load_rule_definitions())
    settings = load_model_settings()
    capacity = settings.capacity if capacity is None else capacity
    history = History(
        **{name: read_source(home, name, tune_date, columns=columns)
           for name, columns in HISTORY_COLUMNS.items()},
        known_until=tune_date, label=settings.label)
    futures = [compare.submit(home, as_of, parameters, rules, history, capacity)
               for as_of in dates]
    tables = combine_dates([future.result() for future in futures])
    tables["parameters"] = changed_parameters(current, parameters[CANDIDATE], tune_date)
    candidate_text = candidate.read_bytes()
    about = {
        "tune_date": tune_date.isoformat(),
        "as_of_dates": [day.isoformat() for day in dates],
        "candidate": str(candidate),
        "candidate_sha256": hashlib.sha256(candidate_text).hexdigest(),
        "capacity_per_township": capacity,
        "horizon_months": settings.label.horizon_months,
        # Bureau-wide (a region's own entry may differ): marked on the capacity curve.
        "model_threshold": {side: params.value("model_threshold", tune_date, BUREAU_REGION)
                            for side, params in parameters.items()},
        "code_version": code_version(),
    }
    html = render(tables, about)
    target = write(home / "tune" / tune_name(tune_date, candidate, from_date), html, tables,
                   about, candidate_text)
    about["seconds"] = time.perf_counter() - started
    return {"folder": str(target), "tables": tables, "about": about}
