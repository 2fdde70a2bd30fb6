"""``monitor tune`` as a Prefect flow: the current and a candidate parameter set on the same facts.

Thin orchestration over :mod:`monitor.tuning.compare`::

    for each as-of date (the tune date, or each month from --from to it):
        for each county: read the lake as of that date → evaluate under both
        parameter sets → combine the counties → compare
    → report (HTML with charts, tables) → HOME/tune/<name>/ (one rename)

A tune reads the lake and writes only its own folder: it ingests nothing and
changes no warning, and it takes no lock (it reads through the ingest
manifest as it was when it started), so it can be run at any time, beside a
nightly run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import pandas as pd
from prefect import flow

from flows.nightly import as_date, default_task_runner, io_task, quiet_task, run_name, say
from monitor.io.config import (
    load_candidate_parameters,
    load_model_settings,
    load_parameters,
    load_rules,
    read_candidate,
)
from monitor.io.fonts import FontSubsets, font_subsets, use_cjk_font
from monitor.io.home import Home
from monitor.io.lake import (
    LakeView,
    counties_as_of,
    lake_view,
    read_as_of,
    read_manifest,
    read_source,
)
from monitor.io.models import load_latest_model
from monitor.io.outputs import write_report_folder
from monitor.io.permissions import keep_private
from monitor.io.runs import TuneRun, tune_manifest
from monitor.model.labels import LABEL_COLUMNS
from monitor.model.risk import RiskModel
from monitor.policy.facts import SOURCE_COLUMNS
from monitor.policy.params import Parameters
from monitor.policy.rules import Rule
from monitor.reports.tune_page import tune_report
from monitor.tuning.compare import (
    CANDIDATE,
    CURRENT,
    CountyComparison,
    History,
    changed_parameters,
    combine_dates,
    compare_date,
    evaluate_county_sides,
    history_needed_by_all,
    months_back,
)
from monitor.validation.idcard import mask_numbers_in_line

#: The outcome labels' columns, and the warning a verdict is about (precision by rule).
HISTORY_COLUMNS = {**LABEL_COLUMNS, "feedback": ["warning_id", *LABEL_COLUMNS["feedback"]]}


def tune_name(tune_date: dt.date, candidate: Path, from_date: dt.date | None,
              candidate_text: bytes) -> str:
    """The tune's folder name: its date, the candidate's name and content, the first date.

    The content's hash keeps two candidates of the same name apart.

    Examples
    --------
    >>> tune_name(dt.date(2026, 6, 30), Path("edge 1.6.yaml"), dt.date(2026, 1, 1), b"")
    '2026-06-30_edge_1.6_e3b0c442_from_2026-01-01'
    """
    stem = "".join(char if char.isalnum() or char in "._-" else "_" for char in candidate.stem)
    digest = hashlib.sha256(candidate_text).hexdigest()[:8]
    return f"{tune_date.isoformat()}_{stem}_{digest}" + (
        f"_from_{from_date.isoformat()}" if from_date else "")


@io_task(task_run_name="compare {county} {as_of}")
def compare_county(home: Path, as_of: dt.date, county: str, view: LakeView,
                   parameters: dict[str, Parameters], rules: list[Rule], model: RiskModel | None,
                   history: History) -> CountyComparison:
    """One county under both parameter sets, on the lake as it was on ``as_of``."""
    sources = read_as_of(home, as_of, county=county, columns=SOURCE_COLUMNS,
                         since=history_needed_by_all(parameters, as_of), view=view)
    return evaluate_county_sides(county, sources, as_of, parameters, rules, model, history)


@quiet_task(task_run_name="compare {as_of}")
def compare(counties: list[CountyComparison], as_of: dt.date, rules: list[Rule],
            history: History, capacity: int, model: RiskModel | None
            ) -> dict[str, pd.DataFrame]:
    """Every table of one as-of date, the counties combined as the nightly run combines them."""
    return compare_date(counties, as_of, rules, history, capacity,
                        model.version if model is not None else None)


@quiet_task
def render(tables: dict[str, pd.DataFrame], about: dict, font: FontSubsets) -> str:
    """The tune's HTML report, its Chinese set in the font the project installs."""
    return tune_report(tables, about, font_family=use_cjk_font(), font=font)


@io_task
def write(target: Path, html: str, tables: dict[str, pd.DataFrame], about: dict,
          candidate_text: bytes) -> Path:
    """The report, its tables, the candidate file and the tune's manifest, in one rename.

    The candidate file's copy has any id or mobile number in it masked (a
    source naming the person who set a value); its sha256 in the manifest is
    of the file as given.
    """
    shown = mask_numbers_in_line(candidate_text.decode("utf-8", "replace")).encode("utf-8")
    return write_report_folder(target, html, tables, about,
                               extra={"candidate_parameters.yaml": shown})


@flow(name="tune", flow_run_name=run_name(
    "tune", "tune_date", lambda parameters: Path(str(parameters.get("candidate", ""))).stem),
      task_runner=default_task_runner(), log_prints=False, validate_parameters=False)
def tune(home: Path, candidate: Path, tune_date: dt.date | None = None,
         from_date: dt.date | None = None, capacity: int | None = None) -> TuneRun:
    """Compare the parameters in force with ``candidate`` on the tune date (or each month since).

    ``capacity`` is the households a township's caseworkers can verify (by
    default the model settings' ``capacity.per_township``). A tune takes no
    lock: it reads the lake through the ingest manifest as it was when it
    started, so it never holds up a nightly run and a run never disturbs it.
    """
    home, tune_date = Path(home), as_date(tune_date)
    keep_private()  # a deployment run starts here, not from the command line
    from_date = as_date(from_date) if from_date is not None else None
    candidate = Path(candidate)
    started = time.perf_counter()
    manifest = read_manifest(home)
    wanted = months_back(tune_date, from_date) if from_date else [tune_date]
    counties_on = {as_of: counties_as_of(home, as_of, manifest) for as_of in wanted}
    dates = [as_of for as_of in wanted if counties_on[as_of]]
    if not dates:
        raise ValueError(f"no registry delivered on or before {tune_date}: nothing to tune on")
    current = load_parameters(home, tune_date)
    # Read once: the copy kept beside the report and its hash are of the bytes evaluated.
    candidate_text = read_candidate(candidate)
    parameters = {CURRENT: current, CANDIDATE: load_candidate_parameters(
        current, candidate, tune_date, candidate_text)}
    for params in parameters.values():
        for as_of in dates:
            params.check_in_force(as_of)
    rules = load_rules(current)
    settings = load_model_settings()
    capacity = settings.capacity if capacity is None else capacity
    history = History(
        **{name: read_source(home, name, tune_date, columns=columns, manifest=manifest)
           for name, columns in HISTORY_COLUMNS.items()},
        known_until=tune_date, label=settings.label)
    per_date = []
    say(f"{tune_date}: {candidate.name} against the parameters in force, "
        f"{len(dates)} as-of date{'s' if len(dates) > 1 else ''}")
    # Date by date: only one date's households are held at a time.
    for number, as_of in enumerate(dates, start=1):
        model = load_latest_model(home, as_of)
        # What every county's read of the date shares, worked out once.
        view = lake_view(home, as_of, manifest)
        counties = [compare_county.submit(home, as_of, county, view, parameters, rules,
                                          model, history)
                    for county in counties_on[as_of]]
        per_date.append(compare(counties, as_of, rules, history, capacity, model))
        say(f"as-of {as_of} ({number}/{len(dates)}): {len(counties)} "
            f"count{'y' if len(counties) == 1 else 'ies'} compared")
    tables = combine_dates(per_date)
    tables["parameters"] = changed_parameters(current, parameters[CANDIDATE], tune_date)
    about = tune_manifest(tune_date, dates, wanted, candidate, candidate_text, capacity,
                          settings, parameters)
    html = render(tables, about, font_subsets(home))
    target = write(Home.of(home).tune / tune_name(tune_date, candidate, from_date, candidate_text),
                   html, tables, about, candidate_text)
    say(f"report and tables written: {target}")
    about["seconds"] = time.perf_counter() - started
    return TuneRun(target, tables, about)
