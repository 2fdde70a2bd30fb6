"""The ingest: every new landing file checked row by row and placed in the lake atomically.

The driver of the nightly ingest (:func:`ingest_landing`): it discovers the
landing files (:mod:`monitor.io.landing`), skips those already ingested,
checks each file batch by batch (the row checks themselves are pure, in
:mod:`monitor.validation.checks`), writes the accepted rows to the lake, the refused
ones to quarantine with their reasons, and records every file's outcome in
the ingest manifest, written last. Each delivery is then judged against the
source's previous one (:mod:`monitor.triage.deliveries`). Reading the lake back is
:mod:`monitor.io.lake`'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.contract.asof import DELIVERY_DATE, LIVE_STATUSES, deliveries_in_force
from monitor.contract.sources import SOURCES, Source
from monitor.io.config import load_delivery_expectations
from monitor.io.deliveries import append_decisions, decided_on, operator_decided, read_decisions
from monitor.io.files import temporary_path, write_parquet
from monitor.io.home import Home
from monitor.io.lake import (
    MANIFEST_COLUMNS,
    SHA_PREFIX,
    lake_dir,
    manifest_path,
    moves_dir,
    read_lake_files,
    read_manifest,
)
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
from monitor.io.pseudonym_key import lake_pseudonym_key
from monitor.triage import deliveries
from monitor.triage.deliveries import DeliveryExpectations
from monitor.validation import checks
from monitor.validation.idcard import mask_numbers_in_line


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
    #: Accepted rows per county, and accepted rows with each column empty.
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
    :func:`monitor.triage.deliveries.judge_delivery`) and held if it looks broken.
    """
    home = Path(home)
    _flatten_county_folders(home)
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
    pending, superseded, touched, unreadable = _new_files(files, manifest)
    report.notices.extend(unreadable)
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


def _flatten_county_folders(home: Path) -> None:
    """Lay out again a lake written in county folders: one file per delivered file.

    Once, at the first ingest after the change of layout (under the home's
    lock): each file's county pieces are assembled as a new file's parts are,
    then removed. Killed midway, the next ingest finishes the work (a file
    already assembled only loses its pieces). The manifest is unchanged: it
    names files by delivery and hash, not by folder.
    """
    for name in SOURCES:
        base = lake_dir(home, name)
        folders = sorted(base.glob(f"{checks.COUNTY}=*")) if base.exists() else []
        pieces: dict[str, list[tuple[str, Path]]] = {}
        for folder in folders:
            for path in sorted(folder.glob("*.parquet")):
                pieces.setdefault(path.stem, []).append((folder.name.split("=", 1)[1], path))
        for stem, parts in sorted(pieces.items()):
            target = base / f"{stem}.parquet"
            if not target.exists():
                with _StagedFiles() as staged:
                    for county, path in parts:
                        table = pq.ParquetFile(path).read()
                        staged.write_part(target, county,
                                          _with_county(table, [county] * table.num_rows))
                    staged.commit()
            for _, path in parts:
                path.unlink()
        for folder in folders:
            for leftover in folder.iterdir():
                leftover.unlink()  # a dead writer's temporary: the home is locked
            folder.rmdir()


def _new_files(files: list[LandingFile], manifest: pd.DataFrame
               ) -> tuple[dict[tuple[dt.date, int, str], list[tuple[LandingFile, str]]],
                          set[str], dict[str, int], list[str]]:
    """The landing files to ingest, by delivery (date, the registry first, source), with hashes.

    Also the paths whose new bytes replace an ingested file's, the paths
    whose bytes are the same but whose modification time is new (to note),
    and a notice for each file that cannot be read.
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
    unreadable: list[str] = []
    for landing_file in files:
        try:
            stat = landing_file.path.stat()
            if seen_stats.get(landing_file.relative_path) == (stat.st_size, stat.st_mtime_ns):
                continue  # the same size and modification time as when it was ingested
            sha = sha256_of(landing_file.path)
        except (PermissionError, FileNotFoundError) as error:
            # A file the account may not read (copied in with another user's permissions), or
            # moved away since it was listed: this file's problem, not the night's. It is read
            # when it can be.
            unreadable.append(f"{landing_file.relative_path}: cannot be read "
                              f"({error.strerror or type(error).__name__}): not ingested; "
                              "the other files are")
            continue
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
    return pending, superseded, touched, unreadable


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
    return f"{delivery_date.isoformat()}_{sha[:SHA_PREFIX]}"


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
        # What a reader said may quote a cell (a crash's message): never a full number.
        "message": mask_numbers_in_line(outcome.message) if outcome.message else outcome.message,
        "rows_read": outcome.rows_read,
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
        seen = checks.KeysSeen(source.key)
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
                 sha: str, raw: RawFile, seen: checks.KeysSeen,
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
    lake_file = lake_dir(home, source.name) / f"{stem}.parquet"
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
            empty_lake_table = _with_county(
                pa.Table.from_pandas(accepted.iloc[:0], preserve_index=False), [])
        for county, table in _county_tables(accepted, counties):
            staged.write_part(lake_file, county, table)
        quarantined = pd.concat([quarantined, _malformed_rows(batch)], ignore_index=True)
        if len(quarantined):
            if quarantine_schema is None:
                quarantine_schema = _quarantine_schema(batch.frame)
            staged.write(Home.of(home).quarantine(source.name) / f"{stem}.parquet",
                         _quarantine_table(quarantined, quarantine_schema, label,
                                           delivery_date))
        return len(accepted), quarantined

    with _StagedFiles() as staged:
        for batch in raw.batches:
            accepted_count, quarantined = _this_file_only(label, stage, batch, staged)
            reasons.update(quarantined[checks.REASON].value_counts().to_dict()
                           if len(quarantined) else {})
            read_rows += batch.rows_read
            accepted_rows += accepted_count
            quarantined_rows += len(quarantined)
        if not accepted_rows:
            # An empty file still marks the delivery, so that a snapshot can be empty.
            staged.write_part(lake_file, checks.UNMATCHED_COUNTY, empty_lake_table)
        if placed:
            _stage_moves(staged, placed, placement, moves_dir(home) / f"{stem}.parquet")
        staged.commit()
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
        dict.fromkeys(schema.names, "string") | {checks.ROW: "int64"})
    return pa.Table.from_pandas(quarantined, schema=schema, preserve_index=False)


def _stage_moves(staged: _StagedFiles, placed: list[pd.DataFrame],
                 placement: dict[str, pd.Series] | None, target: Path) -> None:
    """The registry file's county moves against the previous registry, if any moved."""
    registry = pd.concat(placed, ignore_index=True)
    moves = checks.county_moves(registry, registry[checks.COUNTY], placement)
    if len(moves):
        staged.write(target, pa.Table.from_pandas(moves, preserve_index=False))


def _with_warning_townships(home: Path, batch: RawBatch) -> RawBatch:
    """A returned workbook's rows with the township of the warning each names.

    From the latest warning state (only the ids the rows name are read); a
    row whose warning is unknown keeps none (its 村(社区) is used instead).
    """
    frame = batch.frame
    if checks.WORKBOOK_TOWNSHIP not in frame or frame.empty:
        return batch  # not a returned workbook: every other batch of every file
    states = sorted(Home.of(home).warning_state.glob("*.parquet"))
    if not states:
        return batch
    ids = frame["warning_id"].astype("string").str.strip()
    known = pd.read_parquet(states[-1], columns=["warning_id", "township_code"],
                            filters=[("warning_id", "in", sorted(set(ids.dropna())))])
    lookup = known.drop_duplicates("warning_id").set_index("warning_id")["township_code"]
    return dataclasses.replace(batch, frame=frame.assign(
        **{checks.WARNING_TOWNSHIP: ids.map(lookup).astype("string")}))


def _check_batch(batch: RawBatch, source: Source, delivery_date: dt.date,
                 seen: checks.KeysSeen, placement: dict[str, pd.Series] | None,
                 pseudonym_key: str | None, placed: list[pd.DataFrame]
                 ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Accepted rows with their counties, and quarantined rows, of one batch.

    The accepted rows' keys join ``seen`` (pending); a registry batch adds its
    keys and counties to ``placed``.
    """
    parsed = checks.parse_rows(batch.frame, source, delivery_date, repaired=batch.repaired)
    if pseudonym_key is not None:
        parsed = checks.pseudonymise_rows(parsed, source, pseudonym_key)
    parsed = checks.flag_repeated_keys(parsed, source, seen)
    accepted, quarantined = checks.split_rows(batch.frame, parsed)
    if source.name == "registry":
        accepted = checks.add_person_facts(accepted)
        counties = accepted.pop(checks.COUNTY)
        placed.append(pd.DataFrame({"household_id": accepted["household_id"],
                                    "id_number": accepted["id_number"],
                                    checks.COUNTY: counties}))
    else:
        counties = checks.place_in_counties(accepted, source, placement)
    accepted[DELIVERY_DATE] = pd.Timestamp(delivery_date)
    return accepted, counties, quarantined


def _county_tables(accepted: pd.DataFrame, counties: pd.Series) -> list[tuple[str, pa.Table]]:
    """Accepted rows as one Arrow table per county, with its county, in delivered order."""
    if accepted.empty:
        return []
    # Convert once, then cut the county slices out of one sorted table (zero-copy).
    codes, uniques = pd.factorize(counties, sort=True)
    order = np.argsort(codes, kind="stable")
    table = _with_county(pa.Table.from_pandas(accepted.iloc[order], preserve_index=False),
                         np.asarray(uniques, dtype=object)[codes[order]])
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return [(county, table.slice(bounds[number], bounds[number + 1] - bounds[number]))
            for number, county in enumerate(uniques)]


def _with_county(table: pa.Table, counties: Iterable[str]) -> pa.Table:
    """The rows with their county as a plain text column.

    Appended after the pandas conversion, so the pandas metadata does not name
    it and it reads back as the text it was when it was a folder name.
    """
    return table.append_column(checks.COUNTY, pa.array(counties, type=pa.string()))


def _quarantine_schema(frame: pd.DataFrame) -> pa.Schema:
    """Quarantine columns: the file's text columns as delivered, the line, row and reason."""
    text = [name for name in frame.columns if name not in (checks.ROW, checks.OVERLONG)]
    return pa.schema([*((name, pa.string()) for name in text), ("_raw_line", pa.string()),
                      (checks.ROW, pa.int64()),
                      *((name, pa.string()) for name in (checks.REASON, checks.REASON_COLUMN,
                                                         checks.REASON_DETAIL, "_file",
                                                         "_delivery_date"))])


class _StagedFiles:
    """Parquet files written batch by batch under temporary names, moved into place together.

    Nothing reaches its final name before :meth:`commit`; leaving the block
    with an error removes the temporary files (:func:`temporary_path`), so a
    rejected file leaves no part of itself. A file written in parts
    (:meth:`write_part`, a lake file's counties) is assembled at the commit,
    each part in its own row groups.
    """

    def __init__(self) -> None:
        self._open: dict[Path, tuple[Path, pq.ParquetWriter]] = {}
        self._parts: dict[Path, dict[str, tuple[Path, pa.ipc.RecordBatchFileWriter,
                                                pa.Schema]]] = {}
        self._schemas: dict[Path, pa.Schema] = {}

    def __enter__(self) -> _StagedFiles:
        return self

    def __exit__(self, *error: object) -> None:
        writers = [*self._open.values(),
                   *(part[:2] for parts in self._parts.values() for part in parts.values())]
        for temporary, writer in writers:
            writer.close()
            temporary.unlink(missing_ok=True)
        self._open.clear()
        self._parts.clear()
        self._schemas.clear()

    def write_part(self, target: Path, part: str, table: pa.Table) -> None:
        """Append ``table`` to part ``part`` of the file that will become ``target``.

        The parts are kept apart until the commit (as uncompressed Arrow, cheap
        to write and to read back) so that each becomes row groups of its own:
        a reader of one part skips the others by their statistics, and memory
        holds one batch while the file is read, one part while it is assembled.
        """
        parts = self._parts.setdefault(target, {})
        # One schema for the whole file, the first batch's: a batch that cannot take it fails
        # here, while its file is being read (and is rejected), not at the commit.
        schema = self._schemas.setdefault(target, table.schema)
        if part not in parts:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = temporary_path(target.with_name(f"{target.name}.{part}"))
            parts[part] = (temporary, pa.ipc.new_file(temporary, schema), schema)
        writer = parts[part][1]
        if not table.schema.equals(schema, check_metadata=False):
            table = table.cast(schema)
        writer.write_table(table)

    def _assemble(self, target: Path) -> None:
        """Write the parts of ``target``, in part order, into the file staged for it."""
        for part in sorted(self._parts[target]):
            temporary, writer, _ = self._parts[target][part]
            writer.close()
            with pa.memory_map(str(temporary)) as mapped:
                self.write(target, pa.ipc.open_file(mapped).read_all())
            temporary.unlink()
        del self._parts[target]

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

    def commit(self) -> None:
        """Assemble the files written in parts, close every file and move each into place."""
        for target in list(self._parts):
            self._assemble(target)
        for _, writer in self._open.values():
            writer.close()
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
        checks.ROW: batch.malformed_rows,
        checks.REASON: pd.array(["malformed_row"] * count, dtype="string"),
        checks.REASON_COLUMN: pd.array([None] * count, dtype="string"),
        checks.REASON_DETAIL: pd.array(["column count differs from the header"] * count,
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
    return read_lake_files(home, source, entries, columns=list(source.key))


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
        rows = read_lake_files(home, registry, entries, columns=["id_number", "household_id"])
        cache[cache_key] = checks.county_lookups(rows)
    return cache[cache_key]
