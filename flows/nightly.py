"""The nightly run as a Prefect flow: deliveries in, township referral lists out.

Thin orchestration; every task is one call into :mod:`monitor`::

    ingest → delivery health (held and stale sources; warnings resting on them)
           → for each county: read → evaluate (facts, rules, score)
           → track warnings (lifecycle) → triage → report.html → write outputs
           → summary artifact

Counties are independent tasks, so a Dask task runner can spread them over a
cluster. Tasks keep no cache and persist no results: a run's inputs are the
lake, and its outputs are written atomically at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from monitor.contract.dates import BUREAU_TIME_ZONE
from monitor.io.config import (
    Configuration,
    load_configuration,
)
from monitor.io.deliveries import home_delivery_health
from monitor.io.fonts import FontSubsets, font_subsets, use_cjk_font
from monitor.io.ingest import IngestReport, ingest_landing
from monitor.io.lake import (
    LakeView,
    counties_as_of,
    lake_view,
    quarantine_counts,
    read_as_of,
    read_manifest,
    read_source,
    rows_ingested_on,
)
from monitor.io.lock import home_lock
from monitor.io.log_masking import log_records_without_full_numbers
from monitor.io.outputs import (
    commit_state,
    previous_hits,
    previous_state,
    recent_manifests,
    remove_leftovers,
    stage_state,
    write_outputs,
)
from monitor.io.permissions import keep_private
from monitor.io.runs import (
    NightlyRun,
    health_line,
    ingest_line,
    run_manifest,
    unanswered_rows,
)
from monitor.policy.facts import SOURCE_COLUMNS, history_needed
from monitor.policy.params import Parameters
from monitor.reports.summary import (
    TREND_RUNS,
    nightly_report,
    report_tables,
    run_summary,
    summary_markdown,
)
from monitor.triage import deliveries
from monitor.triage.deliveries import DeliveryExpectations
from monitor.triage.evaluation import CountyEvaluation, combine, evaluate_county
from monitor.triage.lifecycle import Lifecycle, carried_warnings, track
from monitor.triage.referrals import TownshipLists, overdue_by_township, township_lists
from monitor.triage.workbook import TownshipWorkbooks, feedback_receipts

# Every log record of a process that runs these tasks has its id and phone numbers masked:
# a Dask worker imports this module to run the county tasks, and masks its records so too.
log_records_without_full_numbers()

#: Where a run is, a line per stage (and per county): the command line shows these as they
#: come (monitor.cli), and each also goes to the run's Prefect log.
PROGRESS = logging.getLogger("monitor.progress")


def say(message: str) -> None:
    """One line of progress: to :data:`PROGRESS` and, inside a Prefect run, to its log."""
    PROGRESS.info(message)
    counted(message)


def counted(message: str) -> None:
    """One line of what a task did (rows read, households, warnings) in its Prefect log."""
    # Outside a flow or task run (a test calling a task's function) there is no run log.
    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


# Inputs are DataFrames and the lake: hashing them for a cache key would cost more than the work.
quiet_task = task(cache_policy=NO_CACHE, persist_result=False)

#: Seconds before each retry of a task that reads or writes the home.
IO_RETRY_DELAYS = [2, 10, 30]


def retry_on_io_error(task: object, task_run: object, state: object) -> bool:
    """Retry a task only when it failed on an OSError (a disk or network hiccup).

    A bad delivery is rejected inside ingest and never raises; a bug, a bad
    parameter or a broken model raises something else and is not retried, so
    nothing is tried again that cannot come out differently.
    """
    try:
        state.result()
    except OSError:
        return True
    except BaseException:
        return False
    return False


#: For tasks that touch the home: three tries more, with backoff, on an OSError only.
io_task = task(cache_policy=NO_CACHE, persist_result=False, retries=len(IO_RETRY_DELAYS),
               retry_delay_seconds=IO_RETRY_DELAYS, retry_condition_fn=retry_on_io_error)


@dataclass
class CountySources:
    """One county's sources as of the run date, and the seconds the read took."""

    county: str
    sources: dict[str, pd.DataFrame]
    seconds: float


@dataclass
class PreviousRun:
    """The warning state the latest earlier run left, and the warnings it keeps open today."""

    state: pd.DataFrame
    #: Open warnings of rules that read a stale source, with that run's reasons and evidence:
    #: they stay listed while the source is stale (see monitor.triage.deliveries).
    carried: pd.DataFrame


@io_task
def ingest(home: Path, run_date: dt.date, expectations: DeliveryExpectations) -> IngestReport:
    """Ingest the deliveries dated on or before the run date that are new (holding broken ones)."""
    report = ingest_landing(home, run_date, expectations=expectations)
    counted(ingest_line(report))
    return report


@io_task
def check_deliveries(home: Path, run_date: dt.date, expectations: DeliveryExpectations,
                     manifest: pd.DataFrame) -> pd.DataFrame:
    """Each source's last delivery, age, rows and status (ok, stale, held) on the run date."""
    return home_delivery_health(home, expectations, run_date, manifest)


@io_task
def read_previous_run(home: Path, run_date: dt.date, health: pd.DataFrame,
                      configuration: Configuration) -> PreviousRun:
    """The latest earlier run's warning state, and its open warnings resting on stale sources."""
    state, previous_date = previous_state(home, run_date)
    resting = deliveries.stale_rules(health, configuration.rules)
    if not resting or previous_date is None:
        return PreviousRun(state, carried_warnings(state.iloc[:0], resting, None))
    candidates = state[state["rule"].isin(list(resting)).to_numpy(dtype=bool)]
    return PreviousRun(state, carried_warnings(
        candidates, resting, previous_hits(home, previous_date, candidates["warning_id"])))


@io_task
def list_counties(home: Path, run_date: dt.date) -> list[str]:
    """The counties with registry rows in force."""
    return counties_as_of(home, run_date)


@io_task
def view_lake(home: Path, run_date: dt.date, manifest: pd.DataFrame) -> LakeView:
    """What every county's read shares (deliveries in force, files, moves), worked out once."""
    return lake_view(home, run_date, manifest)


@io_task(task_run_name="read {county}")
def read_county(home: Path, run_date: dt.date, county: str, params: Parameters,
                view: LakeView) -> CountySources:
    """One county's sources as of the run date (only the columns and history the facts use)."""
    started = time.perf_counter()
    sources = read_as_of(home, run_date, county=county, columns=SOURCE_COLUMNS,
                         since=history_needed(params, run_date), view=view)
    counted(f"county {county}: {sum(map(len, sources.values())):,} rows read from "
            f"{len(sources)} sources")
    return CountySources(county, sources, time.perf_counter() - started)


@quiet_task(task_run_name="evaluate {county.county}")
def evaluate(county: CountySources, run_date: dt.date, configuration: Configuration,
             carried: pd.DataFrame) -> CountyEvaluation:
    """Facts, rule hits and risk scores for one county (and how long its read took)."""
    result = evaluate_county(county.county, county.sources, run_date, configuration.params,
                             configuration.rules, configuration.scoring, configuration.model,
                             carried)
    result.timings["read"] = county.seconds
    counted(f"county {county.county}: {result.households_evaluated:,} households, "
            f"{result.persons_evaluated:,} persons evaluated; {len(result.hits):,} hits")
    return result


@io_task
def read_feedback(home: Path, run_date: dt.date) -> pd.DataFrame:
    """Every feedback row delivered up to the run date."""
    return read_source(home, "feedback", run_date)


@quiet_task
def track_warnings(previous: PreviousRun, run_date: dt.date, hits: pd.DataFrame,
                   feedback: pd.DataFrame, configuration: Configuration) -> Lifecycle:
    """Carry the warnings of the latest earlier run forward to this run."""
    return track(previous.state, hits, feedback, run_date, configuration.roster_rules)


@quiet_task(name="triage")
def triage_households(lifecycle: Lifecycle, households: pd.DataFrame,
                      configuration: Configuration, run_date: dt.date,
                      health: pd.DataFrame) -> TownshipLists:
    """One referral row per household listed; and apart, its warnings and its visits due."""
    return township_lists(lifecycle.hits, households, configuration.rules, configuration.params,
                          run_date, deliveries.stale_remarks(health))


@io_task
def read_answers(home: Path, run_date: dt.date, ingest_manifest: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feedback rows the run of this date took in: accepted and quarantined."""
    return rows_ingested_on(home, "feedback", run_date, ingest_manifest)


@quiet_task
def receipts_of(answers: tuple[pd.DataFrame, pd.DataFrame], lifecycle: Lifecycle,
                configuration: Configuration) -> pd.DataFrame:
    """What each township sent back, and what became of each row (the workbook's 反馈回执)."""
    accepted, quarantined = answers
    return feedback_receipts(accepted, quarantined, lifecycle.state,
                             lifecycle.unmatched_feedback, configuration.roster_rules,
                             lifecycle.events)


@io_task
def report_inputs(home: Path, run_date: dt.date, ingest_manifest: pd.DataFrame
                  ) -> tuple[list[dict], pd.DataFrame]:
    """The recent earlier runs' manifests (the trend) and this date's quarantined rows."""
    return (recent_manifests(home, run_date, TREND_RUNS - 1),
            quarantine_counts(home, run_date, ingest_manifest))


@quiet_task
def render_report(run_date: dt.date, summary: dict, inputs: tuple[list[dict], pd.DataFrame],
                  configuration: Configuration, rejected_files: list[str],
                  ingest_manifest: pd.DataFrame, overdue: pd.DataFrame, font: FontSubsets
                  ) -> tuple[str, dict[str, pd.DataFrame]]:
    """The run's report.html and its tables, Chinese set in the font the project installs."""
    earlier, quarantine = inputs
    tables = report_tables(run_date.isoformat(), summary, earlier, quarantine,
                           configuration.rules,
                           deliveries.delivery_rows(ingest_manifest, run_date), overdue)
    html = nightly_report(run_date.isoformat(), summary, tables, configuration.model_manifest,
                          rejected_files, font_family=use_cjk_font(), font=font)
    return html, tables


@io_task
def write_run(home: Path, run_date: dt.date, referrals: pd.DataFrame, lifecycle: Lifecycle,
              manifest: dict, report: tuple[str | None, dict[str, pd.DataFrame]],
              workbooks: TownshipWorkbooks) -> Path:
    """Write the outputs (one rename at the end) and keep the warning state for the next run."""
    # The state for the next run goes into place right after the outputs, never before:
    # a run that fails leaves neither (and rerunning its date repairs either).
    staged = stage_state(home, run_date, lifecycle.state, lifecycle.events)
    html, tables = report
    target = write_outputs(home, run_date, referrals, lifecycle.hits, manifest, html, tables,
                           workbooks)
    commit_state(staged)
    return target


@quiet_task
def report(run_date: dt.date, summary: dict, quarantined: dict[str, int], model: dict) -> str:
    """Publish the run summary as a Markdown artifact."""
    markdown = summary_markdown(run_date.isoformat(), summary, quarantined, model)
    create_markdown_artifact(markdown, key="nightly-summary",
                             description=f"监测预警 run of {run_date.isoformat()}")
    return markdown


def as_date(value: dt.date | str | None) -> dt.date:
    """A flow's date parameter: a date, its ISO text (from the API), or None for today.

    Today is the bureau's: Asia/Shanghai, whatever the machine's time zone.
    """
    if value is None:
        return dt.datetime.now(BUREAU_TIME_ZONE).date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _county_result(read: PrefectFuture, evaluation: PrefectFuture) -> CountyEvaluation:
    """A county's evaluation; if its read failed, the read's own error.

    (A failed read leaves its evaluation never run. The read's result, a whole
    county's sources, is fetched only then: on a cluster it stays on its worker.)
    """
    evaluation.wait()
    if not evaluation.state.is_completed():
        read.wait()
        if read.state.is_failed():
            read.result()
    return evaluation.result()


def default_task_runner() -> ThreadPoolTaskRunner:
    """One county at a time in this process.

    Measured on 1,000,000 households: two threads took as long as one (the
    facts and rules hold the GIL) and blurred the stage timings. Counties run
    in parallel on separate processes with ``monitor run --dask-address``.
    """
    return ThreadPoolTaskRunner(max_workers=1)


def run_name(flow_name: str, date_parameter: str,
             detail: Callable[[dict], str] | None = None) -> Callable[[], str]:
    """A flow run's name: the flow and its date (``nightly-2026-06-30``), then any ``detail``.

    A scheduled run given no date is named by today in the bureau's time zone,
    as it runs. Instead of Prefect's random names, so that the UI and a
    notification say which night a run was.
    """
    def name() -> str:
        from prefect.runtime import flow_run

        parameters = flow_run.parameters or {}
        parts = [flow_name, as_date(parameters.get(date_parameter)).isoformat()]
        if detail is not None:
            parts.append(detail(parameters))
        return "-".join(parts)

    return name


@flow(name="nightly", flow_run_name=run_name("nightly", "run_date"),
      task_runner=default_task_runner(), log_prints=False, validate_parameters=False)
def nightly(home: Path, run_date: dt.date | None = None, lock_wait_seconds: float = 0
            ) -> NightlyRun:
    """Ingest new deliveries, evaluate every household as of the date, write the referral lists.

    ``run_date`` defaults to today in Asia/Shanghai (a scheduled run). Holds
    the home's lock throughout (see :mod:`monitor.io.lock`); waits up to
    ``lock_wait_seconds`` for a run already on the home.
    """
    home, run_date = Path(home), as_date(run_date)
    keep_private()  # a deployment run starts here, not from the command line
    with home_lock(home, f"monitor run {run_date}", lock_wait_seconds):
        return _nightly(home, run_date)


def _evaluate_counties(home: Path, run_date: dt.date, counties: list[str],
                       configuration: Configuration, carried: pd.DataFrame,
                       view: LakeView) -> tuple[list[CountyEvaluation], PrefectFuture]:
    """Each county read and evaluated as its own tasks (on a cluster, on its workers).

    ``carried``: the warnings kept open on stale data, handed to their county.
    Returns the evaluations, in county order, and the feedback being read.
    """
    reads = [read_county.submit(home, run_date, county, configuration.params, view)
             for county in counties]
    by_county = carried.groupby("county_code", sort=False)
    evaluations = [evaluate.submit(read, run_date, configuration,
                                   by_county.get_group(county) if county in by_county.groups
                                   else carried.iloc[:0])
                   for read, county in zip(reads, counties, strict=True)]
    feedback = read_feedback.submit(home, run_date)
    results = []
    for number, (read, evaluation, county) in enumerate(zip(reads, evaluations, counties,
                                                            strict=True), start=1):
        results.append(_county_result(read, evaluation))
        say(f"county {county} ({number}/{len(counties)}): "
            f"{results[-1].households_evaluated:,} households")
    return results, feedback


def _report_or_notice(home: Path, run_date: dt.date, summary: dict,
                      configuration: Configuration, manifest: dict,
                      ingest_manifest: pd.DataFrame, overdue: pd.DataFrame
                      ) -> tuple[tuple[str | None, dict[str, pd.DataFrame]], list[str]]:
    """The run's report and its tables, or none and a notice saying why it was not drawn.

    The referral lists matter more than their report: they are written
    without it, and the notice says so.
    """
    try:
        return render_report(run_date, summary, report_inputs(home, run_date, ingest_manifest),
                             configuration, manifest["rejected_files"], ingest_manifest,
                             overdue, font_subsets(home)), []
    except Exception as error:
        return (None, {}), [f"report.html not written: "
                            f"{type(error).__name__}: {' '.join(str(error).split())}"]


def _nightly(home: Path, run_date: dt.date) -> NightlyRun:
    """The nightly flow's steps (the home's lock held)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    configuration = load_configuration(home, run_date)
    remove_leftovers(home)
    say(f"{run_date}: configuration checked; ingesting")
    ingest_report = ingest(home, run_date, configuration.deliveries)
    timings["ingest"] = time.perf_counter() - started
    say(f"{ingest_line(ingest_report)} ({timings['ingest']:.1f} s)")

    mark = time.perf_counter()
    ingest_manifest = read_manifest(home)
    health = check_deliveries(home, run_date, configuration.deliveries, ingest_manifest)
    previous = read_previous_run(home, run_date, health, configuration)
    timings["deliveries"] = time.perf_counter() - mark
    say(f"deliveries checked: {health_line(health)}")

    mark = time.perf_counter()
    counties = list_counties(home, run_date)
    say(f"counties: {len(counties)} to evaluate")
    results, feedback = _evaluate_counties(home, run_date, counties, configuration,
                                           previous.carried,
                                           view_lake(home, run_date, ingest_manifest))
    timings["counties"] = time.perf_counter() - mark
    say(f"counties evaluated: {sum(r.households_evaluated for r in results):,} households in "
        f"{timings['counties']:.1f} s")
    for stage in ("read", "facts", "model", "rules", "score"):
        timings[f"{stage} (sum over counties)"] = sum(result.timings[stage]
                                                      for result in results)

    mark = time.perf_counter()
    hits, households = combine(results)
    lifecycle = track_warnings(previous, run_date, hits, feedback.result(), configuration)
    timings["lifecycle"] = time.perf_counter() - mark
    say(f"warnings tracked: {len(lifecycle.hits):,} hits today")

    mark = time.perf_counter()
    lists = triage_households(lifecycle, households, configuration, run_date, health)
    referrals = lists.every
    receipts = receipts_of(read_answers(home, run_date, ingest_manifest), lifecycle,
                           configuration)
    overdue = overdue_by_township(lists)
    timings["triage"] = time.perf_counter() - mark
    say(f"lists made: {len(referrals):,} households listed")

    summary = {**run_summary(lifecycle, referrals, overdue, receipts,
                             unanswered_rows(ingest_manifest, run_date)),
               "deliveries": deliveries.deliveries_summary(
                   health, ingest_report.decisions_of_the_day, lifecycle.hits)}
    manifest = run_manifest(run_date, configuration, counties, results, ingest_report,
                             ingest_manifest, summary)
    mark = time.perf_counter()
    report_html, report_notices = _report_or_notice(home, run_date, summary, configuration,
                                                    manifest, ingest_manifest, overdue)
    manifest["notices"] = [*manifest["notices"], *report_notices]
    timings["report"] = time.perf_counter() - mark
    say("report drawn; writing the referral files and workbooks")

    mark = time.perf_counter()
    manifest["stage_seconds"] = timings
    target = write_run(home, run_date, referrals, lifecycle, manifest, report_html,
                       TownshipWorkbooks(lists.verification, lists.roster, receipts,
                                         configuration.rules, run_date))
    timings["outputs"] = time.perf_counter() - mark
    say(f"outputs written: {target} ({timings['outputs']:.1f} s)")
    report(run_date, summary, {row["source"]: int(row["rows_quarantined"])
                               for row in manifest["ingested_this_run"]},
           configuration.model_manifest)
    timings["total"] = time.perf_counter() - started
    return NightlyRun(target, summary, timings, ingest_report, configuration.model_manifest,
                      report_notices, summary["deliveries"])
