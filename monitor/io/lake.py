"""The Parquet lake: ingest landing files into it atomically, and read sources as of a date.

Layout under the home folder (plain Parquet, readable by DuckDB or pandas
without this project)::

    lake/<source>/county_code=<6 digits|unmatched>/<delivery_date>_<sha16>.parquet
    quarantine/<source>/<delivery_date>_<sha16>.parquet
    state/ingest_manifest.parquet
    state/county_moves/<registry delivery>.parquet

The manifest is written last, atomically, after the lake and quarantine files
of a delivery; readers use only files the manifest names. A run killed midway
therefore leaves the lake as it was, and the next run rewrites the same file
names and completes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitor import deliveries, ingest
from monitor.asof import (
    DELIVERY_DATE,
    LIVE_STATUSES,
    deliveries_in_force,
    deliveries_in_force_all,
    latest_rows,
)
from monitor.deliveries import DeliveryExpectations
from monitor.io.landing import (
    DEFAULT_BATCHING,
    Batching,
    FileRejected,
    LandingFile,
    RawBatch,
    RawFile,
    discover,
    open_delivered_file,
    sha256_of,
)
from monitor.keys import positions_in_many
from monitor.sources import SOURCES, Source

MANIFEST_COLUMNS = {
    "file": "string", "source": "string", "delivery_date": "string", "sha256": "string",
    "size_bytes": "int64", "format": "string", "encoding": "string", "status": "string",
    # The file's modification time when it was ingested: unchanged size and time, the bytes
    # are not hashed again on every run (empty for entries made before it was recorded).
    "mtime_ns": "Int64",
    "message": "string", "rows_read": "int64", "rows_accepted": "int64",
    "rows_quarantined": "int64", "lake_file": "string", "ingest_order": "int64",
    "ingested_on": "string",
    # Rows of a returned township workbook that nobody answered: not read, not faults; and
    # the township it was written for (its receipt goes there).
    "rows_unanswered": "int64", "workbook_township": "string",
    # What an accepted file holds, for the delivery checks (monitor.deliveries): JSON counts of
    # accepted rows per county partition and of empty values per column.
    "rows_by_county": "string", "empty_by_column": "string",
    # Set while a delivery is kept from the state: held (waiting for an operator), rejected or
    # superseded (monitor.deliveries); empty for the rest.
    "hold": "string",
}
_SHA_PREFIX = 16
READ_THREADS = 2


def lake_dir(home: Path, source: str) -> Path:
    """The lake folder of one source."""
    return home / "lake" / source


def moves_dir(home: Path) -> Path:
    """Where each registry delivery's county moves are kept."""
    return home / "state" / "county_moves"


def manifest_path(home: Path) -> Path:
    """Where the ingest manifest lives."""
    return home / "state" / "ingest_manifest.parquet"


def temporary_path(target: Path) -> Path:
    """The name a file has while it is written: hidden, with the writer's process id.

    Two processes never share one; readers never look at it (it lacks the
    ``.parquet`` suffix), and :func:`monitor.io.outputs.remove_leftovers`
    removes a dead process's.
    """
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a :func:`temporary_path` for ``target``; move it into place if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_table(table: pa.Table, target: Path) -> None:
    """Write an Arrow table to Parquet atomically."""
    with atomic_path(target) as temporary:
        pq.write_table(table, temporary)


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    """Write a DataFrame to Parquet atomically."""
    write_table(pa.Table.from_pandas(frame, preserve_index=False), target)


def read_manifest(home: Path) -> pd.DataFrame:
    """The ingest manifest: one row per landing file seen, with its outcome and counts."""
    path = manifest_path(home)
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in
                             MANIFEST_COLUMNS.items()})
    # reindex: a manifest written before a column was added reads it as missing.
    manifest = pd.read_parquet(path).reindex(columns=list(MANIFEST_COLUMNS))
    return manifest.fillna({"rows_unanswered": 0}).astype(MANIFEST_COLUMNS)


@dataclass
class FileOutcome:
    """What happened to one landing file in this ingest."""

    file: str
    source: str
    delivery_date: str
    status: str
    message: str = ""
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    #: Rows of a returned township workbook left unanswered (not read, not faults).
    rows_unanswered: int = 0
    #: The township a returned workbook was written for.
    workbook_township: str | None = None
    #: Accepted rows per county partition, and accepted rows with each column empty.
    rows_by_county: dict[str, int] | None = None
    empty_by_column: dict[str, int] | None = None


@dataclass
class IngestReport:
    """Outcome of one ingest: each new file's result and notices about skipped paths."""

    files: list[FileOutcome] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    #: What was decided about the deliveries ingested: held, accepted once complete, superseded.
    decisions: list[deliveries.Decision] = field(default_factory=list)
    #: Every decision the ingests of the run date made, this one's and an earlier run's of
    #: the same date (what the run manifest reports, the same on a rerun).
    decisions_of_the_day: list[deliveries.Decision] = field(default_factory=list)

    def by_source(self) -> pd.DataFrame:
        """Rows read, accepted and quarantined per source, and files rejected."""
        if not self.files:
            return pd.DataFrame(columns=["source", "files", "rejected", "held", "rows_read",
                                         "rows_accepted", "rows_quarantined"])
        frame = pd.DataFrame([{"source": outcome.source, "file": outcome.file,
                               "status": outcome.status, "rows_read": outcome.rows_read,
                               "rows_accepted": outcome.rows_accepted,
                               "rows_quarantined": outcome.rows_quarantined}
                              for outcome in self.files])
        frame["rejected"] = frame["status"] == "rejected"
        frame["held"] = frame["status"] == deliveries.HELD
        return frame.groupby("source", sort=False).agg(
            files=("file", "size"), rejected=("rejected", "sum"), held=("held", "sum"),
            rows_read=("rows_read", "sum"), rows_accepted=("rows_accepted", "sum"),
            rows_quarantined=("rows_quarantined", "sum"),
        ).reset_index()


def ingest_landing(home: Path, run_date: dt.date,
                   progress: Callable[[str], None] | None = None,
                   batching: Batching = DEFAULT_BATCHING,
                   expectations: DeliveryExpectations | None = None) -> IngestReport:
    """Ingest every delivery dated on or before ``run_date`` that has not been ingested yet.

    Deliveries are taken in date order, the registry first on each date, so
    that other sources can be placed in the county of their household. Each
    file is read in batches (``batching``), so memory does not grow with it.
    Each delivery is then checked against the source's previous accepted one
    (``expectations``, default: the home's, see
    :func:`monitor.deliveries.judge_delivery`) and held if it looks broken.
    """
    from monitor.io.config import load_delivery_expectations
    from monitor.io.deliveries import (
        append_decisions,
        decided_on,
        operator_decided,
        read_decisions,
    )
    from monitor.io.pseudonyms import lake_pseudonym_key

    home = Path(home)
    key = lake_pseudonym_key(home)
    if expectations is None:
        expectations = load_delivery_expectations(home)
    manifest = read_manifest(home)
    decisions = read_decisions(home)
    decided = operator_decided(decisions)
    files, notices = discover(home, run_date)
    report = IngestReport(notices=notices)
    # Held deliveries included: the same bytes again are not read again (and are judged so).
    live = manifest[manifest["status"].isin(LIVE_STATUSES)]
    lake_file_of = {(s, h): f for s, h, f in zip(live["source"], live["sha256"],
                                                   live["lake_file"], strict=True)}
    order = int(manifest["ingest_order"].max()) + 1 if len(manifest) else 0
    pending, superseded, touched = _new_files(files, manifest)
    if touched:
        manifest = _with_times(manifest, touched)
        write_parquet(manifest, manifest_path(home))
    registry_cache: dict[str, pd.DataFrame] = {}
    for (delivery_date, _, source_name), group_files in sorted(pending.items()):
        source = SOURCES[source_name]
        if progress:
            progress(f"{source_name} {delivery_date}")
        replaced = [item[0].relative_path for item in group_files
                    if item[0].relative_path in superseded]
        if replaced:
            # Retired in the same manifest write that adds their replacements.
            manifest.loc[manifest["file"].isin(replaced), "status"] = "superseded"
        outcomes, entries = _ingest_delivery(home, source, delivery_date, group_files, manifest,
                                             order, run_date, registry_cache, lake_file_of, key,
                                             batching)
        order += len(entries)
        manifest = _append(manifest, entries)
        manifest, made = deliveries.judge_delivery(
            manifest, source, delivery_date.isoformat(), expectations,
            (source_name, delivery_date.isoformat()) in decided,
            {entry["file"] for entry in entries})
        report.files.extend(_with_holds(outcomes, manifest))
        report.decisions.extend(made)
        # Before the manifest: killed in between, the rerun judges the delivery again.
        decisions = append_decisions(home, decisions, made, run_date)
        # Written last: the delivery's lake files exist before the manifest names them.
        write_parquet(manifest, manifest_path(home))
    report.decisions_of_the_day = decided_on(decisions, run_date)
    return report


def _new_files(files: list[LandingFile], manifest: pd.DataFrame
               ) -> tuple[dict[tuple[dt.date, int, str], list[tuple[LandingFile, str]]],
                          set[str], dict[str, int]]:
    """The landing files to ingest, by delivery (date, the registry first, source), with hashes.

    Also the paths whose new bytes replace an ingested file's, and the paths
    whose bytes are the same but whose modification time is new (to note).
    A file with the size and time it was ingested with is not hashed again.
    """
    seen_paths = dict(zip(manifest["file"], manifest["sha256"], strict=True))
    seen_stats = dict(zip(manifest["file"], zip(
        manifest["size_bytes"].tolist(),
        manifest["mtime_ns"].astype(object).where(manifest["mtime_ns"].notna(), None).tolist(),
        strict=True), strict=True))
    source_rank = {name: rank for rank, name in enumerate(SOURCES)}
    pending: dict[tuple[dt.date, int, str], list[tuple[LandingFile, str]]] = {}
    superseded: set[str] = set()
    touched: dict[str, int] = {}
    for landing_file in files:
        stat = landing_file.path.stat()
        if seen_stats.get(landing_file.relative_path) == (stat.st_size, stat.st_mtime_ns):
            continue  # the same size and modification time as when it was ingested
        sha = sha256_of(landing_file.path)
        previous = seen_paths.get(landing_file.relative_path)
        if previous == sha:
            # The same bytes with a new time (copied, touched; or ingested before times were
            # kept): noted, so that they are not hashed again.
            touched[landing_file.relative_path] = stat.st_mtime_ns
            continue
        if previous is not None:
            # Same path, new bytes: the department replaced the file.
            superseded.add(landing_file.relative_path)
        group = (landing_file.delivery_date, source_rank[landing_file.source], landing_file.source)
        pending.setdefault(group, []).append((landing_file, sha))
    return pending, superseded, touched


def _with_times(manifest: pd.DataFrame, times: dict[str, int]) -> pd.DataFrame:
    """The manifest with each file's latest entry given its new modification time."""
    manifest = manifest.copy()
    latest = manifest.reset_index(drop=True).drop_duplicates("file", keep="last")
    latest = latest[latest["file"].isin(list(times)).to_numpy(dtype=bool)]
    manifest.iloc[latest.index.to_numpy(), manifest.columns.get_loc("mtime_ns")] = \
        latest["file"].map(times).to_numpy(dtype="int64")
    return manifest.astype(MANIFEST_COLUMNS)


def _with_holds(outcomes: list[FileOutcome], manifest: pd.DataFrame) -> list[FileOutcome]:
    """Outcomes of accepted files whose delivery is held, with the status ``held``."""
    held = set(manifest.loc[(manifest["hold"] == deliveries.HELD).fillna(False).to_numpy(
        dtype=bool), "file"])
    for outcome in outcomes:
        if outcome.status in LIVE_STATUSES and outcome.file in held:
            outcome.status = deliveries.HELD
    return outcomes


def _stem(delivery_date: dt.date, sha: str) -> str:
    """The lake and quarantine file name of a delivered file's rows."""
    return f"{delivery_date.isoformat()}_{sha[:_SHA_PREFIX]}"


def _append(manifest: pd.DataFrame, entries: list[dict]) -> pd.DataFrame:
    if not entries:
        return manifest
    # Typed as built (an astype of the whole frame costs more than the few rows).
    added = pd.DataFrame({name: pd.array([entry[name] for entry in entries], dtype=kind)
                          for name, kind in MANIFEST_COLUMNS.items()})
    return pd.concat([manifest, added], ignore_index=True) if len(manifest) else added


def _entry(outcome: FileOutcome, sha: str, landing_file: LandingFile, raw: RawFile | None,
           lake_file: str | None, order: int, run_date: dt.date) -> dict:
    return {
        "file": outcome.file, "source": outcome.source, "delivery_date": outcome.delivery_date,
        "sha256": sha, "size_bytes": (stat := landing_file.path.stat()).st_size,
        "mtime_ns": stat.st_mtime_ns,
        "format": raw.file_format if raw else landing_file.path.suffix.lstrip(".").lower(),
        "encoding": (raw.encoding if raw else None), "status": outcome.status,
        "message": outcome.message, "rows_read": outcome.rows_read,
        "rows_accepted": outcome.rows_accepted, "rows_quarantined": outcome.rows_quarantined,
        "rows_unanswered": outcome.rows_unanswered,
        "workbook_township": outcome.workbook_township, "lake_file": lake_file,
        "ingest_order": order, "ingested_on": run_date.isoformat(),
        "hold": None,
        **{column: None if getattr(outcome, column) is None else
           deliveries.profile_text(getattr(outcome, column))
           for column in deliveries.PROFILE_COLUMNS},
    }


def _ingest_delivery(home: Path, source: Source, delivery_date: dt.date,
                     group_files: list[tuple[LandingFile, str]], manifest: pd.DataFrame,
                     order: int, run_date: dt.date, registry_cache: dict,
                     lake_file_of: dict[tuple[str, str], str],
                     pseudonym_key: str | None = None,
                     batching: Batching = DEFAULT_BATCHING) -> tuple[list[FileOutcome],
                                                                     list[dict]]:
    """Ingest the new files of one (source, delivery date), one file and one batch at a time.

    ``lake_file_of`` maps (source, sha256) of every accepted file to its lake
    file; a file with the same bytes as one of them is recorded as a duplicate
    and not read again. It is updated as files here are accepted. With a
    ``pseudonym_key``, id numbers are pseudonymised once checked, before
    anything compares or writes them.
    """
    outcomes: list[FileOutcome] = []
    entries: list[dict] = []
    repeats: list[tuple[LandingFile, str]] = []
    first_of: dict[str, str] = {}

    def record(outcome: FileOutcome, sha: str, landing_file: LandingFile,
               raw: RawFile | None, lake_file: str | None) -> None:
        outcomes.append(outcome)
        entries.append(_entry(outcome, sha, landing_file, raw, lake_file, order + len(entries),
                              run_date))

    to_read = []
    for landing_file, sha in group_files:
        if (source.name, sha) in lake_file_of or sha in first_of:
            repeats.append((landing_file, sha))
        else:
            first_of[sha] = landing_file.relative_path
            to_read.append((landing_file, sha))
    if to_read:
        # A key may appear once per delivery, across its files and their batches, and
        # across files of the same delivery ingested by earlier runs.
        seen = ingest.KeysSeen(source.key)
        earlier = _earlier_keys(home, source, delivery_date, manifest)
        if earlier is not None:
            seen.add(seen.hashes(earlier))
            seen.commit()
        placement = _registry_placement(
            home, delivery_date - dt.timedelta(days=1) if source.name == "registry"
            else delivery_date, manifest, registry_cache)
    for landing_file, sha in to_read:
        raw = None
        try:
            raw = open_delivered_file(landing_file.path, source, landing_file.relative_path,
                                      batching)
            outcome = _ingest_file(home, source, delivery_date, landing_file, sha, raw, seen,
                                   placement, pseudonym_key)
        except FileRejected as rejection:
            seen.rollback()
            record(FileOutcome(landing_file.relative_path, source.name,
                               delivery_date.isoformat(), "rejected", str(rejection)),
                   sha, landing_file, raw, None)
            continue
        seen.commit()
        stem = _stem(delivery_date, sha)
        record(outcome, sha, landing_file, raw, stem)
        lake_file_of[(source.name, sha)] = stem

    for landing_file, sha in repeats:
        original = lake_file_of.get((source.name, sha))
        if original is not None:
            outcome = FileOutcome(landing_file.relative_path, source.name,
                                  delivery_date.isoformat(), "duplicate",
                                  "same bytes as a file already ingested; rows not read again")
        else:
            # The first copy in this delivery was rejected: so is this one, for the same reason.
            first = next(o for o in outcomes if o.file == first_of[sha])
            outcome = FileOutcome(landing_file.relative_path, source.name,
                                  delivery_date.isoformat(), "rejected",
                                  f"same bytes as {first.file}, rejected: {first.message}")
        record(outcome, sha, landing_file, None, original)
    return outcomes, entries


def _ingest_file(home: Path, source: Source, delivery_date: dt.date, landing_file: LandingFile,
                 sha: str, raw: RawFile, seen: ingest.KeysSeen,
                 placement: dict[str, pd.Series] | None,
                 pseudonym_key: str | None) -> FileOutcome:
    """Check one file batch by batch and write its lake, quarantine and moves files together.

    Every output is staged under a temporary name and moved into place only
    when the whole file has been read, so a file rejected part way leaves
    nothing behind. ``placement``: the registry's counties (for the registry
    itself, as of the day before, to find who moved).

    Raises
    ------
    FileRejected
        When the file's rows cannot be read or checked.
    """
    label = landing_file.relative_path
    stem = _stem(delivery_date, sha)
    base = lake_dir(home, source.name)
    accepted_rows = quarantined_rows = read_rows = 0
    reasons: Counter[str] = Counter()
    # The file's profile, for the delivery checks: accepted rows per county, empty values.
    by_county: Counter[str] = Counter()
    empty: Counter[str] = Counter()
    contract_columns = [spec.name for spec in source.columns]
    # The registry's keys and counties, to find who moved once the whole file is read (one
    # lookup in the previous placement, not one per batch).
    placed: list[pd.DataFrame] = []
    empty_lake_table: pa.Table | None = None
    quarantine_schema: pa.Schema | None = None
    def stage(batch: RawBatch, staged: _StagedFiles) -> tuple[int, pd.DataFrame]:
        """Check one batch and append it to the staged files: rows accepted, rows quarantined."""
        nonlocal empty_lake_table, quarantine_schema
        accepted, counties, quarantined = _check_batch(
            _with_warning_townships(home, batch), source, delivery_date, seen, placement,
            pseudonym_key, placed)
        by_county.update(counties.value_counts().to_dict())
        empty.update(accepted[contract_columns].isna().sum().to_dict())
        if empty_lake_table is None:
            empty_lake_table = pa.Table.from_pandas(accepted.iloc[:0], preserve_index=False)
        for county, table in _county_tables(accepted, counties):
            staged.write(base / f"county_code={county}" / f"{stem}.parquet", table)
        quarantined = pd.concat([quarantined, _malformed_rows(batch)], ignore_index=True)
        if len(quarantined):
            if quarantine_schema is None:
                quarantine_schema = _quarantine_schema(batch.frame)
            staged.write(home / "quarantine" / source.name / f"{stem}.parquet",
                         _quarantine_table(quarantined, quarantine_schema, label,
                                           delivery_date))
        return len(accepted), quarantined

    with _StagedFiles() as staged:
        for batch in raw.batches:
            accepted_count, quarantined = _this_file_only(label, stage, batch, staged)
            reasons.update(quarantined[ingest.REASON].value_counts().to_dict()
                           if len(quarantined) else {})
            read_rows += batch.rows_read
            accepted_rows += accepted_count
            quarantined_rows += len(quarantined)
        if not accepted_rows:
            # An empty file still marks the delivery, so that a snapshot can be empty.
            staged.write(base / f"county_code={ingest.UNMATCHED_COUNTY}" / f"{stem}.parquet",
                         empty_lake_table)
        if placed:
            _stage_moves(staged, placed, placement, moves_dir(home) / f"{stem}.parquet")
        # A run killed midway may have placed some of these rows in other counties (the
        # registry can differ on a rerun); the manifest does not name this file yet, so
        # its old pieces can go.
        staged.commit(replacing=base.glob(f"county_code=*/{stem}.parquet"))
    outcome = FileOutcome(label, source.name, delivery_date.isoformat(), "accepted",
                          f"{raw.file_format}" + (f" {raw.encoding}" if raw.encoding else ""),
                          read_rows, accepted_rows, quarantined_rows, dict(reasons),
                          raw.unanswered, raw.township, dict(by_county),
                          {column: empty[column] for column in contract_columns})
    assert outcome.rows_read == outcome.rows_accepted + outcome.rows_quarantined
    return outcome


def _this_file_only(label: str, stage: Callable, *arguments: object) -> tuple:
    """``stage(*arguments)``, an error in it rejecting this file (a disk error stops the ingest).

    Raises
    ------
    FileRejected
        On anything but an ``OSError``: a bug or an input nobody foresaw loses
        this file only.
    """
    try:
        return stage(*arguments)
    except OSError:
        raise  # the disk's or the folder's problem, not this file's
    except Exception as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise FileRejected(
            f"{label}: rows could not be validated ({type(error).__name__}: "
            f"{first_line}); please report this file") from error


def _quarantine_table(quarantined: pd.DataFrame, schema: pa.Schema, label: str,
                      delivery_date: dt.date) -> pa.Table:
    """A batch's quarantined rows in the file's quarantine schema, with their file and date.

    Text columns as pandas strings in every batch, so that the file's pandas
    metadata (taken from its first batch) reads each back the same way.
    """
    quarantined = quarantined.assign(
        _file=label, _delivery_date=delivery_date.isoformat()
    ).reindex(columns=schema.names).astype(
        dict.fromkeys(schema.names, "string") | {ingest.ROW: "int64"})
    return pa.Table.from_pandas(quarantined, schema=schema, preserve_index=False)


def _stage_moves(staged: _StagedFiles, placed: list[pd.DataFrame],
                 placement: dict[str, pd.Series] | None, target: Path) -> None:
    """The registry file's county moves against the previous registry, if any moved."""
    registry = pd.concat(placed, ignore_index=True)
    moves = ingest.county_moves(registry, registry[ingest.COUNTY], placement)
    if len(moves):
        staged.write(target, pa.Table.from_pandas(moves, preserve_index=False))


def _with_warning_townships(home: Path, batch: RawBatch) -> RawBatch:
    """A returned workbook's rows with the township of the warning each names.

    From the latest warning state (only the ids the rows name are read); a
    row whose warning is unknown keeps none (its 村(社区) is used instead).
    """
    frame = batch.frame
    if ingest.WORKBOOK_TOWNSHIP not in frame or frame.empty:
        return batch  # not a returned workbook: every other batch of every file
    states = sorted((home / "lake" / "warning_state").glob("*.parquet"))
    if not states:
        return batch
    ids = frame["warning_id"].astype("string").str.strip()
    known = pd.read_parquet(states[-1], columns=["warning_id", "township_code"],
                            filters=[("warning_id", "in", sorted(set(ids.dropna())))])
    lookup = known.drop_duplicates("warning_id").set_index("warning_id")["township_code"]
    return dataclasses.replace(batch, frame=frame.assign(
        **{ingest.WARNING_TOWNSHIP: ids.map(lookup).astype("string")}))


def _check_batch(batch: RawBatch, source: Source, delivery_date: dt.date,
                 seen: ingest.KeysSeen, placement: dict[str, pd.Series] | None,
                 pseudonym_key: str | None, placed: list[pd.DataFrame]
                 ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Accepted rows with their counties, and quarantined rows, of one batch.

    The accepted rows' keys join ``seen`` (pending); a registry batch adds its
    keys and counties to ``placed``.
    """
    parsed = ingest.parse_rows(batch.frame, source, delivery_date)
    if pseudonym_key is not None:
        parsed = ingest.pseudonymise_rows(parsed, source, pseudonym_key)
    parsed = ingest.flag_repeated_keys(parsed, source, seen)
    accepted, quarantined = ingest.split_rows(batch.frame, parsed)
    if source.name == "registry":
        accepted = ingest.add_person_facts(accepted)
        counties = accepted.pop(ingest.COUNTY)
        placed.append(pd.DataFrame({"household_id": accepted["household_id"],
                                    "id_number": accepted["id_number"],
                                    ingest.COUNTY: counties}))
    else:
        counties = ingest.place_in_counties(accepted, source, placement)
    accepted[DELIVERY_DATE] = pd.Timestamp(delivery_date)
    return accepted, counties, quarantined


def _county_tables(accepted: pd.DataFrame, counties: pd.Series) -> list[tuple[str, pa.Table]]:
    """Accepted rows as one Arrow table per county, in delivered order within each."""
    if accepted.empty:
        return []
    # Convert once, then cut the county slices out of one sorted table (zero-copy).
    codes, uniques = pd.factorize(counties, sort=True)
    order = np.argsort(codes, kind="stable")
    table = pa.Table.from_pandas(accepted.iloc[order], preserve_index=False)
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return [(county, table.slice(bounds[number], bounds[number + 1] - bounds[number]))
            for number, county in enumerate(uniques)]


def _quarantine_schema(frame: pd.DataFrame) -> pa.Schema:
    """Quarantine columns: the file's text columns as delivered, the line, row and reason."""
    text = [name for name in frame.columns if name != ingest.ROW]
    return pa.schema([*((name, pa.string()) for name in text), ("_raw_line", pa.string()),
                      (ingest.ROW, pa.int64()),
                      *((name, pa.string()) for name in (ingest.REASON, ingest.REASON_COLUMN,
                                                         ingest.REASON_DETAIL, "_file",
                                                         "_delivery_date"))])


class _StagedFiles:
    """Parquet files written batch by batch under temporary names, moved into place together.

    Nothing reaches its final name before :meth:`commit`; leaving the block
    with an error removes the temporary files (:func:`temporary_path`), so a
    rejected file leaves no part of itself.
    """

    def __init__(self) -> None:
        self._open: dict[Path, tuple[Path, pq.ParquetWriter]] = {}

    def __enter__(self) -> _StagedFiles:
        return self

    def __exit__(self, *error: object) -> None:
        for temporary, writer in self._open.values():
            writer.close()
            temporary.unlink(missing_ok=True)
        self._open.clear()

    def write(self, target: Path, table: pa.Table) -> None:
        """Append ``table`` to the file that will become ``target``."""
        if target not in self._open:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = temporary_path(target)
            self._open[target] = (temporary, pq.ParquetWriter(temporary, table.schema))
        writer = self._open[target][1]
        if not table.schema.equals(writer.schema, check_metadata=False):
            # A batch may infer a narrower type (e.g. a column empty throughout it).
            table = table.cast(writer.schema)
        writer.write_table(table)

    def commit(self, replacing: Iterable[Path] = ()) -> None:
        """Close every file and move each into place, removing the ``replacing`` files first."""
        for _, writer in self._open.values():
            writer.close()
        for old in list(replacing):
            if old not in self._open:
                old.unlink(missing_ok=True)
        for target, (temporary, _) in list(self._open.items()):
            _move_into_place(temporary, target)
            del self._open[target]


def _move_into_place(temporary: Path, target: Path) -> None:
    """Give a finished file its name (one place, so that a test can kill a run between files)."""
    os.replace(temporary, target)


def _malformed_rows(batch: RawBatch) -> pd.DataFrame:
    """Lines the CSV parser could not split into the header's columns, as quarantine rows."""
    if not batch.malformed_lines:
        return pd.DataFrame()
    count = len(batch.malformed_lines)
    return pd.DataFrame({
        "_raw_line": pd.array(batch.malformed_lines, dtype="string"),
        ingest.ROW: batch.malformed_rows,
        ingest.REASON: pd.array(["malformed_row"] * count, dtype="string"),
        ingest.REASON_COLUMN: pd.array([None] * count, dtype="string"),
        ingest.REASON_DETAIL: pd.array(["column count differs from the header"] * count,
                                       dtype="string"),
    })


def _earlier_keys(home: Path, source: Source, delivery_date: dt.date,
                  manifest: pd.DataFrame) -> pd.DataFrame | None:
    """Keys already accepted from other files of this delivery (files added to it later).

    A file an operator rejected, or a held one that a later delivery superseded,
    is no longer part of the delivery: its keys do not count.
    """
    entries = manifest[((manifest["source"] == source.name)
                        & (manifest["delivery_date"] == delivery_date.isoformat())
                        & (manifest["status"] == "accepted")).to_numpy(dtype=bool)
                       & ~manifest["hold"].isin([deliveries.REJECTED, deliveries.SUPERSEDED])
                       .to_numpy(dtype=bool)]
    if entries.empty:
        return None
    return _read_lake_files(home, source, entries, columns=list(source.key))


def _registry_placement(home: Path, delivery_date: dt.date, manifest: pd.DataFrame,
                        cache: dict) -> dict[str, pd.Series] | None:
    """County lookups from the registry as of a delivery date (cached per registry delivery)."""
    registry = SOURCES["registry"]
    entries = deliveries_in_force(manifest, registry, delivery_date)
    if entries.empty:
        return None
    cache_key = ",".join(entries["lake_file"])
    if cache_key not in cache:
        cache.clear()
        rows = _read_lake_files(home, registry, entries, columns=["id_number", "household_id"])
        cache[cache_key] = ingest.county_lookups(rows)
    return cache[cache_key]


def _lake_paths(home: Path, source: Source, stems: set[str], counties: list[str] | None,
                existing: frozenset[str] | None = None) -> list[Path]:
    """The lake files of ``stems`` in the county partitions (all by default) that exist.

    ``existing``: the source's files as ``county_code=X/stem.parquet``, listed
    once for many reads (:class:`LakeView`); else each is looked up on disk.
    """
    base = lake_dir(home, source.name)
    if counties is None:
        partitions = sorted(path.name for path in base.glob("county_code=*"))
    else:
        partitions = [f"county_code={name}" for name in counties]
    names = [f"{partition}/{stem}.parquet" for partition in partitions for stem in sorted(stems)]
    if existing is None:
        return [base / name for name in names if (base / name).exists()]
    return [base / name for name in names if name in existing]


def _lake_files(home: Path, source: Source) -> frozenset[str]:
    """Every file of a source's lake, as ``county_code=X/stem.parquet``."""
    base = lake_dir(home, source.name)
    if not base.exists():
        return frozenset()
    return frozenset(f"{partition.name}/{path.name}" for partition in base.iterdir()
                     if partition.is_dir() for path in partition.iterdir())


@dataclass(frozen=True)
class LakeView:
    """What every county's read of one date shares, worked out once for a run.

    The manifest read, each source's deliveries in force on ``as_of``, the
    lake's files, and the registry's county moves (None in a view for reads
    of every county at once, which need none): without it each county's read
    works all of them out again (a fixed cost of every county).
    """

    manifest: pd.DataFrame
    as_of: dt.date
    entries: dict[str, pd.DataFrame]
    files: dict[str, frozenset[str]]
    moves: pd.DataFrame | None


def lake_view(home: Path, as_of: dt.date, manifest: pd.DataFrame | None = None,
              moves: bool = True) -> LakeView:
    """The lake as every county's read of ``as_of`` sees it (see :class:`LakeView`)."""
    home = Path(home)
    manifest = read_manifest(home) if manifest is None else manifest
    entries = {name: deliveries_in_force(manifest, source, as_of)
               for name, source in SOURCES.items()}
    return LakeView(manifest, as_of, entries,
                    {name: _lake_files(home, source) for name, source in SOURCES.items()},
                    _registry_moves(home, manifest, as_of) if moves else None)


def _registry_moves(home: Path, manifest: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The county moves recorded by every live registry delivery up to ``as_of``."""
    registry = deliveries_in_force_all(manifest, SOURCES["registry"], as_of)
    paths = [moves_dir(home) / f"{stem}.parquet" for stem in registry["lake_file"]]
    paths = [path for path in paths if path.exists()]
    if not paths:
        return pd.DataFrame({name: pd.Series(dtype="string")
                             for name in ("kind", "key", "from_county", "to_county")})
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)


def _read_lake_table(home: Path, source: Source, entries: pd.DataFrame,
                     columns: list[str] | None = None, counties: list[str] | None = None,
                     existing: frozenset[str] | None = None) -> pa.Table | None:
    """The lake files named by manifest entries as one Arrow table, or None if there are none.

    County and delivery date included; one multi-threaded dataset scan.
    """
    paths = _lake_paths(home, source, set(entries["lake_file"]), counties, existing)
    if not paths:
        return None
    partitioning = ds.partitioning(pa.schema([(ingest.COUNTY, pa.string())]), flavor="hive")
    dataset = ds.dataset([str(path) for path in paths], format="parquet",
                         partitioning=partitioning,
                         partition_base_dir=str(lake_dir(home, source.name)))
    wanted = None if columns is None else [*columns, ingest.COUNTY, DELIVERY_DATE]
    return dataset.to_table(columns=wanted)


def _read_lake_files(home: Path, source: Source, entries: pd.DataFrame,
                     columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of the lake files named by manifest entries (all counties), as pandas."""
    table = _read_lake_table(home, source, entries, columns)
    return _empty_frame(source, columns) if table is None else table.to_pandas()


def _empty_frame(source: Source, columns: list[str] | None) -> pd.DataFrame:
    dtypes = {name: column.dtype.type for name, column in source.schema.columns.items()}
    names = columns or list(dtypes)
    frame = pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, "string")) for name in names})
    frame[ingest.COUNTY] = pd.Series(dtype="string")
    frame[DELIVERY_DATE] = pd.Series(dtype="datetime64[ns]")
    return frame


@dataclass
class CountyMembers:
    """Today's members of a county (by id number and by household) and where they were filed."""

    keys: dict[str, pd.Series]
    counties_left: dict[str, list[str]]


def county_members(home: Path, as_of: dt.date, county: str,
                   manifest: pd.DataFrame | None = None, view: LakeView | None = None
                   ) -> CountyMembers:
    """Read once what every source's county read needs from the registry."""
    view = _view_for(home, as_of, manifest, view)
    registry = read_source(home, "registry", as_of, county=county,
                           columns=["id_number", "household_id"], view=view)
    keys = {kind: registry[kind] for kind in ("id_number", "household_id")}
    moves = _registry_moves(home, view.manifest, as_of) if view.moves is None else view.moves
    return CountyMembers(keys, {kind: _counties_left(moves, county, kind, values)
                                for kind, values in keys.items()})


def _view_for(home: Path, as_of: dt.date, manifest: pd.DataFrame | None,
              view: LakeView | None, moves: bool = True) -> LakeView:
    """The caller's view of the lake on ``as_of``, or one made now (through ``manifest``)."""
    if view is not None and view.as_of == as_of:
        return view
    return lake_view(home, as_of, manifest if view is None else view.manifest, moves)


def read_source(home: Path, source_name: str, as_of: dt.date, county: str | None = None,
                columns: list[str] | None = None, since: tuple[str, dt.date] | None = None,
                manifest: pd.DataFrame | None = None, members: CountyMembers | None = None,
                view: LakeView | None = None) -> pd.DataFrame:
    """The state (snapshot sources) or history (events sources) of a source as of a date.

    Parameters
    ----------
    home : Path
        The deployment's home folder.
    source_name : str
        A contract source name.
    as_of : datetime.date
        Only deliveries dated on or before it count.
    county : str, optional
        A 6-digit county code: read only that county's partition (and rows not
        yet placed in a county whose household or person belongs to it).
    columns : list of str, optional
        Columns to read (all by default).
    since : (column, date), optional
        Keep only rows whose date column (one that ingest checks against the
        delivery date) is on or after the date; decided after the source's rows
        are combined, so a correction still replaces its row.
    manifest : pandas.DataFrame, optional
        The ingest manifest, when the caller has already read it.
    members : CountyMembers, optional
        The county's members, when the caller has already read them.
    view : LakeView, optional
        The lake as of ``as_of``, worked out once for many reads (it brings
        its manifest).
    """
    home = Path(home)
    source = SOURCES[source_name]
    if view is not None and view.as_of == as_of:
        entries, existing = view.entries[source_name], view.files[source_name]
    else:
        view, existing = None, None
        manifest = read_manifest(home) if manifest is None else manifest
        entries = deliveries_in_force(manifest, source, as_of)
    if since is not None:
        # Ingest refuses dates after their delivery date, so a delivery made before
        # `since` holds only older rows, and can neither be wanted nor replace a later row.
        entries = entries[pd.to_datetime(entries["delivery_date"]) >= pd.Timestamp(since[1])]
    if columns is not None:
        # The key decides which rows count; the county column where they belong.
        columns = list(dict.fromkeys([*columns, *source.key, source.county_by]))
    counties = kept = None
    if county is not None:
        counties = [county, ingest.UNMATCHED_COUNTY]
        if source.county_by != "region_code":
            if members is None:
                members = county_members(home, as_of, county, manifest, view)
            kept = members.keys[source.county_by]
            counties += members.counties_left[source.county_by]
    table = None if entries.empty else _read_lake_table(home, source, entries, columns, counties,
                                                        existing)
    if table is None:
        return _empty_frame(source, columns)
    # Decide which rows count on the key columns alone, then convert only those rows.
    keys = table.select([*source.key, DELIVERY_DATE]).to_pandas()
    keep = latest_rows(keys, source)
    if since is not None:
        column, start = since
        recent = table.column(column).to_pandas() >= pd.Timestamp(start)
        keep &= recent.fillna(False).to_numpy(dtype=bool)
    if not keep.all():
        table = table.filter(pa.array(keep))
    rows = table.to_pandas()
    if county is not None:
        # Rows are filed under the county their household had when they came in;
        # what belongs to the county now is decided by today's registry.
        if kept is None:
            rows = rows[rows[ingest.COUNTY] != ingest.UNMATCHED_COUNTY]
        else:
            rows = rows[positions_in_many([rows[source.county_by]], kept)[0] >= 0].copy()
            rows[ingest.COUNTY] = county
    return rows.reset_index(drop=True)


def _counties_left(moves: pd.DataFrame, county: str, kind: str, members: pd.Series
                   ) -> list[str]:
    """Counties that today's members of ``county`` were filed under before they moved."""
    if moves.empty:
        return []
    moves = moves[(moves["kind"] == kind).to_numpy(dtype=bool)
                  & (positions_in_many([moves["key"]], members)[0] >= 0)]
    earlier = set(moves["from_county"]) | set(moves["to_county"])
    return sorted(earlier - {county, ingest.UNMATCHED_COUNTY})


def read_as_of(home: Path, as_of: dt.date, county: str | None = None,
               columns: dict[str, list[str]] | None = None,
               since: dict[str, tuple[str, dt.date]] | None = None,
               manifest: pd.DataFrame | None = None, view: LakeView | None = None
               ) -> dict[str, pd.DataFrame]:
    """Sources as of a date, optionally for one county, some columns, recent rows.

    Without ``columns`` every source is read whole; with it, only the sources
    it names, and only those columns (see :data:`monitor.facts.SOURCE_COLUMNS`).
    ``since`` maps a source to a (date column, earliest date) pair (see
    :func:`monitor.facts.history_needed`). ``manifest``: the ingest manifest
    to read through (default: as it is now); a reader that holds no lock
    passes the one it read first, and sees the lake as it was then. ``view``:
    the lake as of ``as_of`` worked out once for every county's read
    (:func:`lake_view`; it brings its manifest).
    """
    names = list(SOURCES) if columns is None else list(columns)
    columns = columns or {}
    since = since or {}
    view = _view_for(home, as_of, manifest, view, moves=county is not None)
    members = None if county is None else county_members(home, as_of, county, view=view)
    # Arrow reads and decodes outside the GIL, so two sources at a time overlap well.
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        frames = pool.map(lambda name: read_source(
            home, name, as_of, county=county, columns=columns.get(name),
            since=since.get(name), members=members, view=view), names)
        return dict(zip(names, frames, strict=True))


def counties_as_of(home: Path, as_of: dt.date, manifest: pd.DataFrame | None = None
                   ) -> list[str]:
    """The counties with registry rows in force on ``as_of``: a run's units of work."""
    home = Path(home)
    registry = SOURCES["registry"]
    manifest = read_manifest(home) if manifest is None else manifest
    entries = deliveries_in_force(manifest, registry, as_of)
    paths = _lake_paths(home, registry, set(entries["lake_file"]), None)
    counties = {path.parent.name.split("=", 1)[1] for path in paths}
    return sorted(counties - {ingest.UNMATCHED_COUNTY})


def rows_ingested_on(home: Path, source_name: str, ingested_on: dt.date,
                     manifest: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accepted and the quarantined rows of the files of a source that a date's run ingested.

    Each row with the ``_file`` it came in (a township's answers, for its
    receipt); by the manifest's ``ingested_on``, so that running the date
    again shows the same rows.
    """
    home = Path(home)
    source = SOURCES[source_name]
    manifest = read_manifest(home) if manifest is None else manifest
    files = manifest[(manifest["source"] == source_name).to_numpy(dtype=bool)
                     & (manifest["ingested_on"] == ingested_on.isoformat()).to_numpy(dtype=bool)
                     & (manifest["status"] == "accepted").to_numpy(dtype=bool)]
    accepted = [_read_lake_files(home, source, files.iloc[[number]]).assign(
                    _file=file, _workbook_township=township)
                for number, (file, township) in enumerate(zip(
                    files["file"], files["workbook_township"], strict=True))]
    quarantined = [pd.read_parquet(path) for lake_file in
                   files.loc[(files["rows_quarantined"] > 0).to_numpy(dtype=bool), "lake_file"]
                   if (path := home / "quarantine" / source_name / f"{lake_file}.parquet")
                   .exists()]
    return (pd.concat(accepted, ignore_index=True) if accepted else _empty_frame(source, None),
            pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame(
                columns=[ingest.ROW, ingest.REASON, ingest.REASON_COLUMN, "_file"]))


def quarantine_counts(home: Path, ingested_on: dt.date, manifest: pd.DataFrame | None = None
                      ) -> pd.DataFrame:
    """Quarantined rows per source, reason and column, in the files the run of a date ingested.

    (By the manifest's ``ingested_on``, so that running the date again reports
    the same rows although it ingests nothing new.) ``manifest``: the ingest
    manifest, when the caller has read it already.
    """
    home = Path(home)
    manifest = read_manifest(home) if manifest is None else manifest
    files = manifest[(manifest["ingested_on"].astype("string") == ingested_on.isoformat())
                     & (manifest["rows_quarantined"] > 0)]
    columns = ["source", "reason", "column", "rows"]
    frames = []
    for source, lake_file in zip(files["source"], files["lake_file"], strict=True):
        path = home / "quarantine" / source / f"{lake_file}.parquet"
        if path.exists():
            rows = pd.read_parquet(path).reindex(columns=[ingest.REASON, ingest.REASON_COLUMN])
            frames.append(pd.DataFrame({"source": source, "reason": rows[ingest.REASON],
                                        "column": rows[ingest.REASON_COLUMN]}))
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype="int64" if name == "rows" else "string")
                             for name in columns})
    every = pd.concat(frames, ignore_index=True).astype("string").fillna("")
    return (every.groupby(["source", "reason", "column"]).size().rename("rows").reset_index()
            .sort_values(["source", "rows"], ascending=[True, False], ignore_index=True))

