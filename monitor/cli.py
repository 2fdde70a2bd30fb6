"""The ``monitor`` command: sample data, ingest, the rules, and the nightly run.

The only layer besides ``monitor.io`` and ``flows`` that reads the clock or
the environment: ``--date`` defaults to today in Asia/Shanghai, the bureau's
time zone, and ``monitor run`` sets Prefect's defaults before Prefect loads.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from monitor.contract.dates import BUREAU_TIME_ZONE
from monitor.io.log_masking import log_records_without_full_numbers

if TYPE_CHECKING:
    from monitor.io.runs import NightlyRun

app = typer.Typer(
    help="农村低收入人口动态监测预警 — dynamic monitoring of the rural low-income population.",
    no_args_is_help=True,
    add_completion=False,
)


class _MaskedConsole(Console):
    """A console that never prints a full id number or mobile number, whatever it is given.

    Messages quote file names, cells and exceptions, any of which may hold
    one (a file named after a person, a number in a crash's message).
    """

    def print(self, *objects: object, **options: object) -> None:
        from monitor.validation.idcard import mask_numbers_in_line

        super().print(*(mask_numbers_in_line(item) if isinstance(item, str) else item
                        for item in objects), **options)


console = _MaskedConsole()
#: Messages are never wrapped: one message is one line of a log, however long.
errors = _MaskedConsole(stderr=True, soft_wrap=True)

ERROR_LINE_LENGTH = 500
#: `monitor run --strict`: the run completed, but a delivery is held or a source is stale.
STRICT_EXIT = 3
#: Seconds a command-line run waits for Prefect's temporary server to start.
TEMPORARY_SERVER_STARTUP_SECONDS = 120

HomeOption = Annotated[Path, typer.Option("--home", help="The deployment's home folder.")]
DateOption = Annotated[
    str | None,
    typer.Option("--date", help="Run date YYYY-MM-DD (default: today in Asia/Shanghai)."),
]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", help="Show Prefect's log of flow and task runs.")]
WaitOption = Annotated[float, typer.Option(
    "--wait", help="Seconds to wait while another run holds the home (default: none; "
                   "then stop with a message).")]


@app.callback()
def _private_files() -> None:
    """Every command creates files readable by their owner only (see monitor.io.permissions)."""
    from monitor.io.permissions import PermissionSettingError, keep_private

    try:
        keep_private()
    except PermissionSettingError as error:
        errors.print(escape(str(error)), soft_wrap=True)
        raise typer.Exit(2) from None


def _run_date(text: str | None) -> dt.date:
    if text is None:
        return dt.datetime.now(BUREAU_TIME_ZONE).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.print(f"--date: '{text}' is not a date YYYY-MM-DD")
        raise typer.Exit(2) from None


@app.command()
def sample(
    home: HomeOption,
    households: Annotated[int, typer.Option(help="Number of households.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    date: DateOption = None,
    places: Annotated[str | None, typer.Option(
        "--places", help="Comma-separated county or township codes to place households in "
        "(default: all of Chongqing).")] = None,
) -> None:
    """Write a synthetic population's deliveries of all 12 sources into HOME/landing."""
    from monitor.io.sample_writer import write_sample

    as_of = _run_date(date)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=not sys.stdout.isatty()) as progress:
        task = progress.add_task("households", total=households)
        summary = write_sample(home, households, seed, as_of,
                               progress=lambda done: progress.update(task, completed=done),
                               places=tuple(places.split(",")) if places else None)
    table = Table(title=f"Sample written to {home / 'landing'}")
    for column in ("source", "deliveries", "rows"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, figures in summary.items():
        table.add_row(source, f"{figures['deliveries']:,}", f"{figures['rows']:,}")
    console.print(table)


def _print_ingest_problems(report: object) -> None:
    """Notices about skipped paths, rejected files and held deliveries, on stderr."""
    for notice in report.notices:
        errors.print(f"[yellow]notice[/]: {escape(notice)}", soft_wrap=True)
    for outcome in report.files:
        if outcome.status == "rejected":
            errors.print(f"[red]rejected[/]: {escape(outcome.message)}", soft_wrap=True)
    for decision in report.decisions:
        errors.print(f"[yellow]{decision.decision}[/]: {decision.source} {decision.delivery_date}: "
                     f"{escape(decision.reasons)}", soft_wrap=True)


@app.command("ingest")
def ingest_command(home: HomeOption, date: DateOption = None, wait: WaitOption = 0) -> None:
    """Ingest every delivery dated on or before the date that is not in the lake yet."""
    from monitor.io.config import load_delivery_expectations
    from monitor.io.ingest import ingest_landing
    from monitor.io.lock import HomeBusy, home_lock
    from monitor.io.outputs import remove_leftovers
    from monitor.io.pseudonym_key import PseudonymError
    from monitor.policy.params import ParameterError

    run_date = _run_date(date)
    try:
        expectations = load_delivery_expectations(home)
        with home_lock(home, "monitor ingest", wait), console.status("ingesting") as status:
            # What a killed ingest left half-written (a large file's staged lake files).
            remove_leftovers(home)
            report = ingest_landing(home, run_date, progress=lambda what: status.update(
                f"ingesting {what}"), expectations=expectations)
    except (HomeBusy, PseudonymError, ParameterError) as error:
        errors.print(escape(f"ingest not started: {_one_line(error)}"), soft_wrap=True)
        raise typer.Exit(1) from None
    _print_ingest_problems(report)
    totals = report.by_source()
    table = Table(title=f"Ingested deliveries up to {run_date}")
    for column in ("source", "files", "rejected", "held", "read", "accepted", "quarantined"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in totals.to_dict("records"):
        table.add_row(row["source"], str(row["files"]), str(row["rejected"]), str(row["held"]),
                      f"{row['rows_read']:,}", f"{row['rows_accepted']:,}",
                      f"{row['rows_quarantined']:,}")
    console.print(table)
    if totals.empty:
        console.print("Nothing new to ingest.")
    console.print(f"Lake: {Path(home) / 'lake'}   Quarantine: {Path(home) / 'quarantine'}   "
                  f"Manifest: {Path(home) / 'state' / 'ingest_manifest.parquet'}")


ListingFormatOption = Annotated[str, typer.Option(
    "--format", help="table (for a terminal), csv, json or markdown (for a script or a file).")]
LISTING_FORMATS = ("table", "csv", "json", "markdown")
#: `monitor rules` headings for people (table, markdown); CSV and JSON keep the English keys.
RULE_HEADINGS = {"name": "名称", "level": "等级", "scope": "范围", "measure": "建议措施",
                 "office": "责任科室"}
FACT_HEADINGS = {"entity": "对象", "unit": "单位", "label": "含义", "source": "来源",
                 "parameters": "参数"}


@app.command("rules")
def rules_command(
    date: DateOption = None,
    region: Annotated[str, typer.Option(
        help="A region-code prefix (county or village) whose parameter values to show.")] = "50",
    home: Annotated[Path | None, typer.Option(
        "--home", help="Apply this home's parameters.yaml override.")] = None,
    output_format: ListingFormatOption = "table",
    parameters: Annotated[bool, typer.Option(
        "--parameters", help="With --format csv: the parameters in force instead of the rules "
                             "(a CSV holds one table).")] = False,
    facts: Annotated[bool, typer.Option(
        "--facts", help="The catalogue of facts the rules may name instead (name, household or "
                        "person, unit, Chinese label, source, parameters).")] = False,
) -> None:
    """List every rule, and every parameter value in force for the date and region, with sources.

    ``--format csv`` writes one table (the rules, or with ``--parameters``
    the parameters), ``json`` both as one object, ``markdown`` both as pipe
    tables. The table never splits a code or a name; piped, it is as wide as
    its longest line needs.
    """
    from monitor.io.config import load_parameters, load_rules
    from monitor.policy.params import ParameterError
    from monitor.policy.rules import RuleError

    run_date = _run_date(date)
    if output_format not in LISTING_FORMATS:
        errors.print(f"--format: '{output_format}' is not one of {', '.join(LISTING_FORMATS)}")
        raise typer.Exit(2)
    if facts:
        _print_listing(output_format, (f"Facts ({len(fact_rows())})",), (fact_rows(),),
                       ("facts",), FACT_HEADINGS, {"name"})
        return
    try:
        params = load_parameters(home, run_date)
        rules = load_rules(params)
        in_force = params.in_force(run_date, region)
    except (ParameterError, RuleError) as error:
        errors.print(escape(str(error)), soft_wrap=True)
        raise typer.Exit(1) from None
    rule_rows = [{"code": rule.code, "name": rule.name, "level": rule.level, "scope": rule.scope,
                  "measure": rule.measure, "office": rule.office,
                  "condition": rule.condition.text, "roster": rule.roster}
                 for rule in rules]
    parameter_rows = [{"parameter": entry["name"], "value": entry["value"],
                       "from": entry["from"].date().isoformat(),
                       "region": entry["region"] or "(all)", "source": entry["source"],
                       "origin": entry["origin"]}
                      for entry in in_force.to_dict("records")]
    titles = (f"Rules ({len(rules)})", f"Parameters in force on {run_date} for region {region}")
    _print_listing(output_format, titles, (rule_rows, parameter_rows), ("rules", "parameters"),
                   RULE_HEADINGS, {"code", "parameter", RULE_HEADINGS["scope"]},
                   1 if parameters else 0)
    missing = sorted(set(params.names) - set(in_force["name"]))
    if missing:
        errors.print(f"no value in force for region {region} on {run_date}: {', '.join(missing)}")
        raise typer.Exit(1)


def fact_rows() -> list[dict]:
    """The catalogue of facts as listing rows (English keys)."""
    from monitor.policy.catalogue import CATALOGUE

    return [{"name": fact.name, "entity": fact.entity, "unit": fact.unit, "label": fact.label,
             "source": fact.source, "parameters": ", ".join(fact.parameters)}
            for fact in CATALOGUE]


def _print_listing(output_format: str, titles: tuple[str, ...], tables: tuple[list[dict], ...],
                   keys: tuple[str, ...], headings: dict[str, str], identifiers: set[str],
                   csv_table: int = 0) -> None:
    """Listings in a format: a table or Markdown (Chinese headings), CSV or JSON (English)."""
    if output_format in ("table", "markdown"):
        # For people: the words under Chinese headings (those of the referral files).
        tables = (*([{headings.get(key, key): value for key, value in row.items()}
                     for row in tables[0]],), *tables[1:])
    if output_format == "table":
        _print_tables(titles, tables, identifiers=identifiers)
    else:
        print(_listing_text(output_format, titles, tables, csv_table, keys), end="")


def _listing_text(output_format: str, titles: tuple[str, ...],
                  tables: tuple[list[dict], ...], csv_table: int,
                  keys: tuple[str, ...] = ("rules", "parameters")) -> str:
    """Listings as CSV (one of them), JSON (all, by title order) or Markdown pipe tables."""
    import csv
    import io
    import json

    if output_format == "json":
        return json.dumps(dict(zip(keys, tables, strict=True)), ensure_ascii=False,
                          indent=2) + "\n"
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(tables[csv_table][0]),
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(tables[csv_table])
        return buffer.getvalue()
    lines = []
    for title, rows in zip(titles, tables, strict=True):
        columns = list(rows[0])
        lines += [f"## {title}", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_markdown_cell(row[column]) for column in columns) + " |"
                  for row in rows]
        lines.append("")
    return "\n".join(lines)


def _markdown_cell(value: object) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _print_tables(titles: tuple[str, ...], tables: tuple[list[dict], ...],
                  identifiers: set[str]) -> None:
    """Rich tables on the console: identifier columns never wrapped, nothing cut when piped.

    On a terminal the other columns wrap at spaces (Chinese at any character);
    a column of conditions is at least as wide as its longest name. Piped or
    redirected, the console is as wide as the longest row needs, so a file
    gets whole lines.
    """
    output = console if console.is_terminal else Console(width=100_000, soft_wrap=False)
    for title, rows in zip(titles, tables, strict=True):
        table = Table(title=title, show_lines=True)
        for column in rows[0]:
            words = [word for row in rows for word in str(row[column]).split()]
            table.add_column(column, no_wrap=column in identifiers,
                             overflow="ellipsis" if column in identifiers else "fold",
                             min_width=max(map(len, words), default=1)
                             if column in ("condition", "source") else None)
        for row in rows:
            table.add_row(*(escape(_cell(value)) for value in row.values()))
        # (Measured as if the console were unbounded: a measure is clamped to its width.)
        if Measurement.get(output, output.options.update_width(1_000_000), table).minimum \
                <= output.width:
            output.print(table)
            continue
        # Too narrow a terminal for the table without splitting a name: a block per row,
        # the first column as its heading, lines wrapped between words.
        output.print(f"[b]{escape(title)}[/b]")
        for row in rows:
            first, *rest = row.items()
            output.print(f"\n[b]{escape(_cell(first[1]))}[/b]")
            for column, value in rest:
                output.print(f"  {escape(column)}: {escape(_cell(value))}")


def _cell(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


FormatOption = Annotated[str, typer.Option(
    "--format", help="table (for a terminal) or json (for a script).")]


@app.command("deliveries")
def deliveries_command(home: HomeOption, date: DateOption = None,
                       output_format: FormatOption = "table") -> None:
    """One line per source: its last accepted delivery, age, rows and status (ok, stale, held).

    A held delivery waits for `monitor release` or `monitor reject`; a stale
    source's rules keep their warnings open.
    """
    import json

    from monitor.io.config import load_delivery_expectations
    from monitor.io.deliveries import home_delivery_health
    from monitor.policy.params import ParameterError
    from monitor.triage.deliveries import health_records

    as_of = _run_date(date)
    if output_format not in ("table", "json"):
        errors.print(f"--format: '{output_format}' is not table or json")
        raise typer.Exit(2)
    try:
        health = home_delivery_health(home, load_delivery_expectations(home), as_of)
    except ParameterError as error:
        errors.print(escape(str(error)), soft_wrap=True)
        raise typer.Exit(1) from None
    records = health_records(health)
    if output_format == "json":
        print(json.dumps({"as_of": as_of.isoformat(), "sources": records}, ensure_ascii=False,
                         indent=2))
        return
    # Fits 80 columns; the held deliveries and their reasons follow, a line each.
    table = Table(title=f"Deliveries on {as_of}", box=box.SIMPLE_HEAD)
    for column in ("source", "status", "last delivery", "age", "max age", "rows"):
        table.add_column(column, justify="right" if column in ("age", "max age", "rows")
                         else "left", no_wrap=True)
    colours = {"ok": "green", "stale": "yellow", "held": "red", "never delivered": "yellow"}
    for row in records:
        table.add_row(row["source"], f"[{colours[row['status']]}]{row['status']}[/]",
                      row["last_delivery"] or "-", _count(row["age_days"]),
                      _count(row["max_age_days"]), _count(row["rows"]))
    console.print(table)
    for row in records:
        if row["held_deliveries"]:
            why = row["hold_reasons"] or row["held_deliveries"]
            console.print(escape(f"{row['source']} held {why}"), soft_wrap=True)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _decide(home: Path, source: str, delivery: str, reason: str, release: bool,
            wait: float) -> None:
    """Release or reject a held delivery under the home's lock; one line either way."""
    from monitor.io.deliveries import record_decision
    from monitor.io.lock import HomeBusy, home_lock

    what = "release" if release else "reject"
    day = _run_date(delivery)
    if not reason.strip():
        errors.print(f"{what}: --reason must say why (it is recorded with the decision)")
        raise typer.Exit(2)
    try:
        with home_lock(home, f"monitor {what}", wait):
            decision = record_decision(home, source, day, release, reason.strip())
    except (HomeBusy, ValueError) as error:
        errors.print(escape(f"{what}: {_one_line(error)}"), soft_wrap=True)
        raise typer.Exit(1) from None
    effect = ("the next run uses it" if release else
              "its rows never count; the source's previous delivery stays in use")
    console.print(f"{decision.source} {decision.delivery_date} {decision.decision}: {effect}. "
                  f"Recorded in {Path(home) / 'state' / 'delivery_decisions.parquet'}.",
                  soft_wrap=True)


SourceOption = Annotated[str, typer.Option("--source", help="The source of the held delivery.")]
DeliveryOption = Annotated[str, typer.Option(
    "--delivery", help="The held delivery's date YYYY-MM-DD (its landing folder).")]
ReasonOption = Annotated[str, typer.Option(
    "--reason", help="Why (recorded with the time, e.g. who confirmed it with the department).")]


@app.command("release")
def release_command(home: HomeOption, source: SourceOption, delivery: DeliveryOption,
                    reason: ReasonOption, wait: WaitOption = 0) -> None:
    """Release a held delivery: the next run uses it (see `monitor deliveries`)."""
    _decide(home, source, delivery, reason, release=True, wait=wait)


@app.command("reject")
def reject_command(home: HomeOption, source: SourceOption, delivery: DeliveryOption,
                   reason: ReasonOption, wait: WaitOption = 0) -> None:
    """Reject a held delivery: its rows never count; the previous delivery stays in use."""
    _decide(home, source, delivery, reason, release=False, wait=wait)


HOUSEHOLD_FORMATS = ("text", "json", "html")


@app.command("household")
def household_command(
    home: HomeOption,
    household_id: Annotated[str, typer.Option("--id", help="The household's 户编号.")],
    date: Annotated[str | None, typer.Option(
        "--date", help="As of YYYY-MM-DD (default: the date of the latest run).")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="text (80 columns), json, or html (a page to print).")] = "text",
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write to this file instead of the standard output.")] = None,
) -> None:
    """The household file (一户一档): one household's facts, rules, score and warnings.

    Read from the lake as of the date, with the rules, parameters and model
    the nightly run would use; no full id number or phone number is shown.
    """
    from monitor.io.config import load_parameters, load_rules, load_scoring
    from monitor.io.files import atomic_path
    from monitor.io.fonts import font_subsets
    from monitor.io.household import HouseholdNotFound, read_household, run_dates
    from monitor.io.lake import LakeLayoutError
    from monitor.io.models import load_latest_model
    from monitor.policy.params import ParameterError
    from monitor.policy.rules import RuleError
    from monitor.policy.scoring import RulesOnlyScore
    from monitor.reports.household import household_file
    from monitor.reports.household_views import household_html, household_json, household_text

    if output_format not in HOUSEHOLD_FORMATS:
        errors.print(f"--format: '{output_format}' is not text, json or html")
        raise typer.Exit(2)
    household_id = household_id.strip().lstrip("'")  # as the list showed it, quote and all
    if date is None:
        runs = run_dates(home)
        if not runs:
            errors.print(escape(f"household: {home} has no run yet; give --date"),
                         soft_wrap=True)
            raise typer.Exit(1)
        as_of = runs[-1]
    else:
        as_of = _run_date(date)
    try:
        rows = read_household(home, household_id, as_of)
        params = load_parameters(home, as_of)
        file = household_file(
            household_id, rows.sources, rows.income_history, rows.state, rows.events, as_of,
            rows.run_date, params, load_rules(params),
            RulesOnlyScore.from_definition(load_scoring()), load_latest_model(home, as_of))
    except (HouseholdNotFound, LakeLayoutError, ParameterError, RuleError, OSError) as error:
        errors.print(escape(f"household: {_one_line(error)}"), soft_wrap=True)
        raise typer.Exit(1) from None
    if output_format == "html":
        text = household_html(file, font_subsets(home))
    else:
        text = household_json(file) if output_format == "json" else household_text(file)
    if output is None:
        sys.stdout.write(text)
        return
    with atomic_path(Path(output)) as temporary:
        temporary.write_text(text, encoding="utf-8")
    console.print(escape(f"{output}"), soft_wrap=True)


def _prefect_defaults(verbose: bool) -> None:
    """Prefect settings for a command-line run, unless the operator has set them.

    No usage analytics leave the machine. Without ``PREFECT_API_URL`` Prefect
    starts a temporary local server for the run, given up to 2 minutes to
    start; its own log (which reports harmless errors when it is stopped at
    exit) is silenced. Prefect's console
    log is shown with ``--verbose``; the API (server UI) gets it either way.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        # Prefect gives its temporary server 20 s to start; on a loaded machine (seen with
        # three test processes on two cores) that failed a run that had not begun.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                              str(TEMPORARY_SERVER_STARTUP_SECONDS))
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= ERROR_LINE_LENGTH else text[:ERROR_LINE_LENGTH - 3] + "..."


def _checked_flow(what: str, check: Callable[[], object],
                  check_errors: tuple[type[Exception], ...], start: Callable[[], dict],
                  home: Path, wait: float, lock: bool = True) -> dict:
    """Check the configuration, take the home's lock (unless ``lock`` is false), run a flow.

    A bad configuration or a busy home exits 1 with "<what> not started: …",
    a failed flow with "<what> failed: …": one line, as the contract asks,
    not a traceback.
    """
    from monitor.io.lock import HomeBusy, home_lock

    def stop(message: str) -> typer.Exit:
        errors.print(escape(message), soft_wrap=True)
        return typer.Exit(1)

    try:
        check()
    except (*check_errors, OSError) as error:
        raise stop(f"{what} not started: {_one_line(error)}") from None
    with ExitStack() as held:
        try:
            if lock:
                held.enter_context(home_lock(home, f"monitor {what}", wait))
        except (HomeBusy, OSError) as error:
            # A home that cannot be written (read-only, full, gone) is said in one line.
            raise stop(f"{what} not started: {_one_line(error)}") from None
        try:
            return start()
        except Exception as error:
            raise stop(f"{what} failed: {type(error).__name__}: {_one_line(error)}") from None


@contextmanager
def _progress(what: str) -> Iterator[None]:
    """Show the flow's progress lines (logger ``monitor.progress``) as they come.

    On a terminal, a status line says where the run is and each stage's line
    stays above it; otherwise (cron, a pipe) each is one plain line with the
    time, flushed at once, so that a log shows where a run was if it died.
    """
    import logging

    logger = logging.getLogger("monitor.progress")

    class Lines(logging.Handler):
        def __init__(self, show: Callable[[str], None]) -> None:
            super().__init__(logging.INFO)
            self.show = show

        def emit(self, record: logging.LogRecord) -> None:
            clock = dt.datetime.now(BUREAU_TIME_ZONE).strftime("%H:%M:%S")
            self.show(f"{clock} {record.getMessage()}")

    with ExitStack() as stack:
        if console.is_terminal:
            status = stack.enter_context(console.status(what))

            def show(line: str) -> None:
                console.print(f"[dim]{escape(line)}[/]", soft_wrap=True)
                status.update(escape(f"{what}: {line.split(' ', 1)[1]}"))
        else:
            def show(line: str) -> None:
                try:
                    print(line, flush=True)
                except UnicodeEncodeError:
                    # A console that cannot print Chinese (PYTHONIOENCODING=ascii) still gets
                    # the line, escaped, and the run goes on.
                    encoding = sys.stdout.encoding or "ascii"
                    print(line.encode(encoding, "backslashreplace").decode(encoding), flush=True)
        handler = Lines(show)
        level, propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # shown here only, not again by a root handler
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _nightly_flow(nightly: object, dask_address: str | None) -> object:
    """The nightly flow, its counties sent to a Dask cluster when an address is given."""
    if not dask_address:
        return nightly
    from prefect_dask import DaskTaskRunner

    return nightly.with_options(task_runner=DaskTaskRunner(address=dask_address))


@app.command("run")
def run_command(
    home: HomeOption,
    date: DateOption = None,
    verbose: VerboseOption = False,
    wait: WaitOption = 0,
    dask_address: Annotated[str | None, typer.Option(
        "--dask-address", help="Run the per-county tasks on this Dask scheduler "
                               "(tcp://HOST:PORT); workers need this package and the home's "
                               "path.")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 3 (after a completed run) when a delivery is held or a source "
                         "is stale, so that cron mails it.")] = False,
) -> None:
    """The nightly job: ingest new deliveries, evaluate every household, write referral lists."""
    run_date = _run_date(date)
    if dask_address and not dask_address.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        errors.print(escape(f"run not started: --dask-address {dask_address!r} is not a Dask "
                            "scheduler address (tcp://HOST:PORT)"), soft_wrap=True)
        raise typer.Exit(1)
    _prefect_defaults(verbose)
    from flows.nightly import nightly
    from monitor.io.config import load_configuration
    from monitor.io.models import ModelError
    from monitor.io.pseudonym_key import PseudonymError
    from monitor.policy.params import ParameterError
    from monitor.policy.rules import RuleError

    # A bad parameter file stops the run before anything is ingested or written.
    with _progress(f"run {run_date}"):
        result = _checked_flow("run", lambda: load_configuration(home, run_date),
                               (ParameterError, RuleError, ModelError, PseudonymError),
                               lambda: _nightly_flow(nightly, dask_address)(
                                   home=home, run_date=run_date), home, wait)
    _print_run(result)
    from monitor.triage.deliveries import attention_line

    attention = attention_line(result.deliveries)
    if attention:
        # Last, so that a cron log's final line says what needs doing.
        errors.print(f"[yellow]{escape(attention)}[/]", soft_wrap=True)
        if strict:
            raise typer.Exit(STRICT_EXIT)


def _print_run(result: NightlyRun) -> None:
    report, summary = result.ingest, result.summary
    _print_ingest_problems(report)
    for notice in result.notices:
        errors.print(f"[yellow]notice[/]: {escape(notice)}")
    ingested = report.by_source()
    if len(ingested):
        console.print(f"Ingested {int(ingested['files'].sum()):,} files: "
                      f"{int(ingested['rows_accepted'].sum()):,} rows accepted, "
                      f"{int(ingested['rows_quarantined'].sum()):,} quarantined, "
                      f"{int(ingested['rejected'].sum()):,} files rejected.")
    households, warnings = summary["households"], summary["warnings"]
    table = Table(title="Households listed for verification")
    for column in ("预警等级", "households", "warnings"):
        table.add_column(column, justify="left" if column == "预警等级" else "right")
    for level, count in households["by_level"].items():
        table.add_row(level, f"{count:,}", f"{warnings['by_level'][level]:,}")
    console.print(table)
    console.print(f"{households['listed']:,} households in {households['townships']:,} "
                  f"townships: {households['new']:,} 新增, {households['continuing']:,} 持续. "
                  f"Closed: {warnings['closed_by_run']:,} no longer triggered, "
                  f"{warnings['closed_by_feedback']:,} by feedback.")
    model = result.model
    if model["version"] is None:
        console.print("风险评分 from the rules alone: no model trained yet (`monitor train`).")
    else:
        console.print(f"风险评分 from model {model['version']} ({model['kind']}, trained "
                      f"{model['trained_on']}).")
    console.print(f"Referral files: {result.out / 'referrals'}")
    if (result.out / "report.html").exists():
        console.print(f"Report: {result.out / 'report.html'}", soft_wrap=True)
    console.print(f"Warnings and manifest: {result.out}  "
                  f"({result.stage_seconds['total']:.1f} s)")


@app.command("train")
def train_command(
    home: HomeOption,
    date: DateOption = None,
    verbose: VerboseOption = False,
    wait: WaitOption = 0,
) -> None:
    """Train the risk model on the history up to the date; write it and its card under the home."""
    train_date = _run_date(date)
    _prefect_defaults(verbose)
    from flows.train import train
    from monitor.io.config import (
        load_delivery_expectations,
        load_model_settings,
        load_parameters,
    )
    from monitor.io.pseudonym_key import PseudonymError, lake_pseudonym_key
    from monitor.model.risk import ModelSettingsError
    from monitor.policy.params import ParameterError

    with _progress(f"train {train_date}"):
        result = _checked_flow("training", lambda: (load_parameters(home, train_date),
                                                    load_model_settings(),
                                                    load_delivery_expectations(home),
                                                    lake_pseudonym_key(home, create=False)),
                               (ParameterError, ModelSettingsError, PseudonymError),
                               lambda: train(home=home, train_date=train_date), home, wait)
    figures = result.validation
    console.print(f"Model {result.version} ({result.chosen}), trained on "
                  f"{result.rows['training']:,} rows; validated on "
                  f"{figures['households']:,} households ({figures['positives']:,} positive).")
    console.print(f"Recall at {figures['capacity_per_township']} per township: model "
                  f"{figures['recall_at_capacity']:.3f}, rules only "
                  f"{figures['rules_recall_at_capacity']:.3f}; ROC AUC "
                  f"{figures['roc_auc']:.3f}.")
    seconds = result.stage_seconds
    console.print(f"Model card: {result.folder / 'MODEL_CARD.md'}")
    console.print(f"Seconds: ingest {seconds['ingest']:.1f}, rows {seconds['rows']:.1f}, "
                  f"fit {seconds['fit']:.1f}, write {seconds['write']:.1f}; "
                  f"total {seconds['total']:.1f}.")


@app.command("tune")
def tune_command(
    home: HomeOption,
    parameters: Annotated[Path, typer.Option(
        "--parameters", help="Candidate parameter file, in the form of HOME/parameters.yaml: "
                             "the parameters it names replace those in force.")],
    date: DateOption = None,
    from_date: Annotated[str | None, typer.Option(
        "--from", help="Also backtest each month from this date YYYY-MM-DD to --date.")] = None,
    capacity: Annotated[int | None, typer.Option(
        "--capacity", help="Households a township's caseworkers can verify (default: "
                           "capacity.per_township of rules/model.yaml).")] = None,
    verbose: VerboseOption = False,
) -> None:
    """Compare the parameters in force with a candidate file on the same facts; write a report.

    Takes no lock: it reads the lake as it was when it started, beside any run.
    """
    tune_date = _run_date(date)
    first = _run_date(from_date) if from_date else None
    if first is not None and first > tune_date:
        errors.print(f"tune not started: --from {first} is after --date {tune_date}")
        raise typer.Exit(2)
    _prefect_defaults(verbose)
    from flows.tune import tune
    from monitor.io.config import load_candidate_parameters, load_parameters
    from monitor.policy.params import ParameterError

    with _progress(f"tune {tune_date}"):
        result = _checked_flow("tune", lambda: load_candidate_parameters(
                                   load_parameters(home, tune_date), parameters, tune_date),
                               (ParameterError,),
                               lambda: tune(home=home, candidate=parameters,
                                            tune_date=tune_date, from_date=first,
                                            capacity=capacity), home, 0, lock=False)
    tables, about = result.tables, result.about
    if about["dates_before_any_delivery"]:
        errors.print(f"[yellow]notice[/]: no registry delivered yet on "
                     f"{', '.join(about['dates_before_any_delivery'])}: those months are left "
                     f"out; the tune starts on {about['as_of_dates'][0]}.")
    summary = tables["summary"][tables["summary"]["as_of"] == tables["summary"]["as_of"].max()]
    flagged = summary.set_index("side")["households_flagged"]
    changes = tables["changes"]
    latest = changes[changes["as_of"] == changes["as_of"].max()]["change"].value_counts()
    console.print(f"Households flagged on {tune_date}: current {flagged['current']:,}, "
                  f"candidate {flagged['candidate']:,} ({latest.get('newly flagged', 0):,} "
                  f"newly flagged, {latest.get('dropped', 0):,} dropped, "
                  f"{latest.get('rules changed', 0):,} with other rules).")
    # Unwrapped: a path broken over two lines cannot be copied.
    console.print(f"Report: {result.folder / 'report.html'}", soft_wrap=True)
    console.print(f"Tables: {result.folder / 'tables'}  ({about['seconds']:.1f} s)",
                  soft_wrap=True)


@app.command("serve")
def serve_command(
    home: HomeOption,
    cron: Annotated[str, typer.Option(
        help="When the nightly run starts (cron, in --timezone).")] = "0 2 * * *",
    training_cron: Annotated[str, typer.Option(
        help="When the model is trained again (cron; default Sunday 23:00).")] = "0 23 * * 0",
    timezone: Annotated[str, typer.Option(help="Time zone of both schedules.")] = (
        "Asia/Shanghai"),
    verbose: VerboseOption = False,
) -> None:
    """Serve the nightly run and the weekly training as Prefect deployments, on a schedule.

    Needs a Prefect server (`prefect server start`) and PREFECT_API_URL
    pointing at it; runs until stopped. Each run's date is its day in the
    time zone.
    """
    if not os.environ.get("PREFECT_API_URL"):
        errors.print("serve not started: no Prefect server: start one with `prefect server "
                      "start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)",
                      soft_wrap=True)
        raise typer.Exit(1)
    _prefect_defaults(verbose)
    from prefect import serve
    from prefect.schedules import Cron

    from flows.nightly import nightly
    from flows.train import train

    parameters = {"home": str(Path(home).resolve())}
    try:
        deployments = [
            nightly.to_deployment(name="nightly", schedule=Cron(cron, timezone=timezone),
                                  parameters=parameters, concurrency_limit=1),
            train.to_deployment(name="training", schedule=Cron(training_cron,
                                                               timezone=timezone),
                                parameters=parameters, concurrency_limit=1),
        ]
    except ValueError as error:
        errors.print(escape(f"serve not started: {_one_line(error)}"), soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"Serving nightly ({cron}) and training ({training_cron}), {timezone}, "
                  f"for {parameters['home']}. Stop with Ctrl-C.")
    serve(*deployments, print_starting_message=False)


def _streams_that_never_fail() -> None:
    """Standard output and error that cannot fail on a character the console cannot show.

    On a console that cannot print Chinese (``PYTHONIOENCODING=ascii``, a bare
    cron environment) a character is written as a backslash escape instead of
    stopping a completed run with exit 1.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "预警".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="backslashreplace")


def main() -> None:
    """Run the command line: every failure is one line on stderr, never a traceback."""
    _streams_that_never_fail()
    log_records_without_full_numbers()
    try:
        app()
    except KeyboardInterrupt:
        errors.print("monitor: interrupted")
        raise SystemExit(130) from None
    except Exception as error:  # the last guard: one masked line, exit 1
        errors.print(escape(f"monitor: {type(error).__name__}: {_one_line(error)}"))
        raise SystemExit(1) from None


@app.command("alerts")
def alerts_command(
    block: Annotated[str, typer.Option(
        "--block", help="The Prefect notification block to send through, as <block type>/"
                        "<name> (e.g. slack-webhook/bureau-alerts), made on the server first.")],
    hours: Annotated[float, typer.Option(
        help="Alert when no nightly run has completed for this many hours.")] = 26,
) -> None:
    """Install the automations that notify when a nightly run fails, is late or is missing.

    On the Prefect server PREFECT_API_URL names (the one `monitor serve`
    reports to). Run again, it replaces them.
    """
    if not os.environ.get("PREFECT_API_URL"):
        errors.print("alerts not installed: no Prefect server: start one with `prefect server "
                     "start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)",
                     soft_wrap=True)
        raise typer.Exit(1)
    _prefect_defaults(verbose=False)
    from flows.alerts import install_nightly_alerts

    try:
        names = install_nightly_alerts(block, hours)
    except ValueError as error:
        errors.print(escape(f"alerts not installed: {_one_line(error)}"), soft_wrap=True)
        raise typer.Exit(1) from None
    for name in names:
        console.print(f"installed: {name} (notifies through {block})", soft_wrap=True)
