"""Write a run's outputs atomically, and keep the warning lifecycle in the lake.

Layout under the home folder::

    out/<run_date>/referrals/<county_code>/<township_code>.csv
    out/<run_date>/warnings.parquet
    out/<run_date>/run_manifest.json
    lake/warning_state/<run_date>.parquet     every warning after that run
    lake/warning_events/<run_date>.parquet    that run's state changes

A run's outputs are written into a hidden staging folder beside
``out/<run_date>`` and moved into place in one rename at the end, so a
killed run leaves either the earlier outputs of that date or none, never
half of them. The warning state is kept per run date: a run starts from the
state of the latest run before its date, so running a date again gives the
same result however often it is done.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from monitor import __version__
from monitor.io.files import write_parquet
from monitor.io.home import (
    PENDING,
    REPLACED,
    STAGING,
    Home,
    dated_files,
    temporary_name,
    writer_of,
)
from monitor.triage.lifecycle import EVENT_COLUMNS, empty_state
from monitor.triage.referrals import defuse, referral_files, warnings_table
from monitor.triage.workbook import TownshipPart, TownshipWorkbooks
from monitor.validation.idcard import mask_numbers_in_line

#: Rows per row group of the warning state and events files: one household's rows are read
#: a row group or two at a time (the household file, monitor.io.household), not the whole
#: file (0.2 s at a million households, in one row group).
STATE_ROW_GROUP_ROWS = 16_384


def out_dir(home: Path, run_date: dt.date) -> Path:
    """The outputs folder of one run date."""
    return Home.of(home).out(run_date)




def previous_state(home: Path, run_date: dt.date) -> tuple[pd.DataFrame, dt.date | None]:
    """The warning state left by the latest run before ``run_date``, and that run's date."""
    earlier = {day: path for day, path in dated_files(Home.of(home).warning_state).items()
               if day < run_date}
    if not earlier:
        return empty_state(), None
    latest = max(earlier)
    return pd.read_parquet(earlier[latest]), latest


def previous_hits(home: Path, run_date: dt.date, warning_ids: pd.Series) -> pd.DataFrame:
    """What the run of ``run_date`` said of some warnings: reason, evidence, masked id.

    From its ``warnings.parquet``, read for those warning ids only; empty if
    that run's outputs are gone.
    """
    path = out_dir(home, run_date) / "warnings.parquet"
    columns = ["warning_id", "reason", "evidence", "person_id_masked"]
    if not path.exists() or not len(warning_ids):
        return pd.DataFrame({name: pd.Series(dtype="string") for name in columns})
    return pd.read_parquet(path, columns=columns,
                           filters=[("warning_id", "in", list(warning_ids))]).astype("string")


def stage_state(home: Path, run_date: dt.date, state: pd.DataFrame, events: pd.DataFrame
                ) -> list[tuple[Path, Path]]:
    """Write this run's warning state and changes beside their final names; return the moves.

    Readers ignore the staged files (they do not end in ``.parquet``);
    :func:`commit_state` moves them into place once the outputs are.
    """
    name = f"{run_date.isoformat()}.parquet"
    moves = []
    home = Home.of(home)
    for folder, frame in ((home.warning_events, events.astype(EVENT_COLUMNS)),
                          (home.warning_state, state)):
        final = folder / name
        staged = temporary_name(final, PENDING)
        write_parquet(frame, staged, STATE_ROW_GROUP_ROWS)
        moves.append((staged, final))
    return moves


def commit_state(moves: list[tuple[Path, Path]]) -> None:
    """Move staged state files into place (a rename each)."""
    for staged, final in moves:
        os.replace(staged, final)


def write_state(home: Path, run_date: dt.date, state: pd.DataFrame, events: pd.DataFrame
                ) -> None:
    """Keep this run's warning state and state changes."""
    commit_state(stage_state(home, run_date, state, events))


#: Keys whose values are digests or versions, never a person's number: left as they are (a
#: sha256 ending in 18 decimal digits is not an id number).
_NOT_PERSONAL = ("sha256", "hash", "version", "commit")


def masked(value: object, key: str = "") -> object:
    """A manifest with every full id number and mobile number in its texts masked.

    File names, messages and notices quote what departments sent (a file
    named after a person, a number in a refused cell); digests are left alone.

    Examples
    --------
    >>> masked({"file": "张三110105194912310021.csv", "sha256": "ab110105194912310021"})
    {'file': '张三110105********0021.csv', 'sha256': 'ab110105194912310021'}
    """
    if isinstance(value, dict):
        return {name: masked(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, key) for item in value]
    if isinstance(value, str) and not any(word in key for word in _NOT_PERSONAL):
        return mask_numbers_in_line(value)
    return value


def recent_manifests(home: Path, run_date: dt.date, count: int) -> list[dict]:
    """The run manifests of up to ``count`` latest runs before ``run_date``, oldest first."""
    manifests = {day: folder / "run_manifest.json"
                 for day, folder in dated_files(Home.of(home).outputs, "*").items()
                 if day < run_date and (folder / "run_manifest.json").exists()}
    chosen = sorted(manifests)[-count:] if count > 0 else []
    return [json.loads(manifests[day].read_text(encoding="utf-8")) for day in chosen]


def warning_history(home: Path) -> pd.DataFrame:
    """Every state change of every warning, over all runs (for analysts and tests)."""
    files = dated_files(Home.of(home).warning_events)
    frames = [pd.read_parquet(files[day]) for day in sorted(files)]
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in EVENT_COLUMNS.items()})
    return pd.concat(frames, ignore_index=True)


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` in one rename.

    A rerun replaces the earlier outputs of the date: the old folder is moved
    aside first and removed after the new one is in place.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging, aside = temporary_name(target, STAGING), temporary_name(target, REPLACED)
    for leftover in (staging, aside):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            target.rename(aside)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(home: Path) -> list[Path]:
    """Remove what killed runs left half-written; return what was removed.

    Only the leftovers of processes that no longer exist: the process id is
    in each name, and another run in progress keeps its own.
    """
    leftovers = []
    for path in Home.of(home).leftovers():
        pid = writer_of(path)
        if pid is not None and _is_running(pid):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        leftovers.append(path)
    return leftovers


TABLES_DIR = "tables"
REPORT_NAME = "report.html"


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Each table as ``tables/<name>.parquet`` (for notebooks) and ``.csv`` (for Excel).

    The CSV is UTF-8 with a BOM, as the referral files are, and text that a
    spreadsheet would take for a formula is defused.
    """
    target = folder / TABLES_DIR
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        table.to_parquet(target / f"{name}.parquet", index=False)
        text = table.select_dtypes(include=["object", "string"]).columns
        shown = table.assign(**{column: defuse(table[column].astype("string"))
                                for column in text})
        shown.to_csv(target / f"{name}.csv", index=False, encoding="utf-8-sig")
        written += [f"{TABLES_DIR}/{name}.parquet", f"{TABLES_DIR}/{name}.csv"]
    return written


def write_report_folder(target: Path, html: str, tables: dict[str, pd.DataFrame], about: dict,
                        extra: dict[str, bytes] | None = None) -> Path:
    """A report folder (``monitor tune``): report.html, its tables, a manifest, in one rename."""
    with staged_folder(Path(target)) as staging:
        (staging / REPORT_NAME).write_text(html, encoding="utf-8")
        files = write_tables(staging, tables)
        for name, content in (extra or {}).items():
            (staging / name).write_bytes(content)
        (staging / "manifest.json").write_text(
            json.dumps({**about, "files": [REPORT_NAME, *files, *(extra or {})]},
                       ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return Path(target)


#: Workbooks are made in worker processes once the lists have this many rows (below, the
#: start of a process costs more than it saves).
PARALLEL_WORKBOOK_ROWS = 20_000
#: Workbooks handed to each worker ahead of the one it is making.
WORKBOOKS_IN_FLIGHT = 4


def _write_workbook(target: Path, part: TownshipPart) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(part.workbook())


def write_workbooks(folder: Path, workbooks: TownshipWorkbooks | None,
                    workers: int | None = None,
                    parallel_rows: int = PARALLEL_WORKBOOK_ROWS) -> int:
    """Write each township's workbook as ``<county>/<township>.xlsx``; return how many.

    XlsxWriter is pure Python: a night's workbooks of ``parallel_rows`` rows
    or more are made on every core (``workers``, default: all), each process
    writing its own files.
    """
    if workbooks is None:
        return 0
    workers = workers or os.cpu_count() or 1
    if workers < 2 or workbooks.rows < parallel_rows:  # noqa: PLR2004
        return _write_each(folder, workbooks.parts())
    # Spawned, not forked: the run's threads (Prefect's) must not be copied mid-flight.
    parts = workbooks.parts()
    written = 0
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            # A few townships in flight per worker: their cells are held only until written.
            pending: set = set()
            for part in parts:
                pending.add(pool.submit(_write_workbook, _target(folder, part), part))
                if len(pending) >= workers * WORKBOOKS_IN_FLIGHT:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    written += _count_done(done)
            written += _count_done(wait(pending)[0])
    except BrokenProcessPool:
        # A worker could not start (a caller's script that starts work on import): one process.
        return _write_each(folder, workbooks.parts())
    return written



def _target(folder: Path, part: TownshipPart) -> Path:
    return folder / part.county / f"{part.township}.xlsx"


def _write_each(folder: Path, parts: Iterable[TownshipPart]) -> int:
    written = 0
    for part in parts:
        _write_workbook(_target(folder, part), part)
        written += 1
    return written


def _count_done(done: set) -> int:
    for future in done:
        future.result()  # a worker's error is the run's
    return len(done)


def write_outputs(home: Path, run_date: dt.date, referrals: pd.DataFrame,
                  warnings: pd.DataFrame, manifest: dict, report: str | None = None,
                  report_tables: dict[str, pd.DataFrame] | None = None,
                  workbooks: TownshipWorkbooks | None = None) -> Path:
    """Write the referral files, warnings.parquet and run_manifest.json; return the folder.

    ``referrals`` is :func:`monitor.triage.referrals.triage`'s table, ordered by
    county and township (one file per township with a row); ``manifest`` gets
    the number of files and warnings written. ``report`` (HTML) and its
    ``report_tables`` go beside them, in the same rename, and so do the
    township ``workbooks`` (:class:`monitor.triage.workbook.TownshipWorkbooks`), each
    beside its township's CSV.
    """
    target = out_dir(home, run_date)
    started = time.perf_counter()
    with staged_folder(target) as staging:
        if report is not None:
            (staging / REPORT_NAME).write_text(report, encoding="utf-8")
        if report_tables:
            write_tables(staging, report_tables)
        written = []
        for county, township, content in referral_files(referrals):
            path = staging / "referrals" / county / f"{township}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path.relative_to(staging).as_posix())
        books = write_workbooks(staging / "referrals", workbooks)
        pq.write_table(warnings_table(warnings), staging / "warnings.parquet")
        manifest = {**manifest, "outputs": {"referral_files": len(written),
                                            "workbooks": books, "warnings": len(warnings)}}
        if "stage_seconds" in manifest:
            manifest["stage_seconds"] = {**manifest["stage_seconds"],
                                         "outputs": time.perf_counter() - started}
        (staging / "run_manifest.json").write_text(
            json.dumps(masked(manifest), ensure_ascii=False, indent=2, default=str) + "\n",
            encoding="utf-8")
    return target


def code_version(checkout: Path | None = None) -> str:
    """The package version, with the git commit when running from a checkout."""
    checkout = checkout or Path(__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return __version__
    try:
        described = subprocess.run(
            ["git", "-C", str(checkout), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{described}"
