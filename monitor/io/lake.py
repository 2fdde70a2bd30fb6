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

import datetime as dt
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitor import ingest
from monitor.asof import (
    DELIVERY_DATE,
    deliveries_in_force,
    deliveries_in_force_all,
    latest_rows,
)
from monitor.io.landing import (
    FileRejected,
    LandingFile,
    RawFile,
    discover,
    read_delivered_file,
    sha256_of,
)
from monitor.keys import positions_in_many
from monitor.sources import SOURCES, Source

MANIFEST_COLUMNS = {
    "file": "string", "source": "string", "delivery_date": "string", "sha256": "string",
    "size_bytes": "int64", "format": "string", "encoding": "string", "status": "string",
    "message": "string", "rows_read": "int64", "rows_accepted": "int64",
    "rows_quarantined": "int64", "lake_file": "string", "ingest_order": "int64",
    "ingested_on": "string",
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


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place only if the block succeeds.

    The temporary name carries the process id, so two processes never share
    one; a leftover from a killed process is overwritten or ignored (it never
    has the ``.parquet`` suffix that readers look for).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
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
    return pd.read_parquet(path).astype(MANIFEST_COLUMNS)


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


@dataclass
class IngestReport:
    """Outcome of one ingest: each new file's result and notices about skipped paths."""

    files: list[FileOutcome] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def by_source(self) -> pd.DataFrame:
        """Rows read, accepted and quarantined per source, and files rejected."""
        if not self.files:
            return pd.DataFrame(columns=["source", "files", "rejected", "rows_read",
                                         "rows_accepted", "rows_quarantined"])
        frame = pd.DataFrame([vars(outcome) for outcome in self.files])
        frame["rejected"] = frame["status"] == "rejected"
        return frame.groupby("source", sort=False).agg(
            files=("file", "size"), rejected=("rejected", "sum"), rows_read=("rows_read", "sum"),
            rows_accepted=("rows_accepted", "sum"), rows_quarantined=("rows_quarantined", "sum"),
        ).reset_index()


def ingest_landing(home: Path, run_date: dt.date,
                   progress: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest every delivery dated on or before ``run_date`` that has not been ingested yet.

    Deliveries are taken in date order, the registry first on each date, so
    that other sources can be placed in the county of their household.
    """
    from monitor.io.pseudonyms import lake_pseudonym_key

    home = Path(home)
    key = lake_pseudonym_key(home)
    manifest = read_manifest(home)
    files, notices = discover(home, run_date)
    report = IngestReport(notices=notices)
    seen_paths = dict(zip(manifest["file"], manifest["sha256"], strict=True))
    live = manifest[manifest["status"].isin(("accepted", "duplicate"))]
    lake_file_of = {(s, h): f for s, h, f in zip(live["source"], live["sha256"],
                                                   live["lake_file"], strict=True)}
    pending: dict[tuple[dt.date, int, str], list[tuple[LandingFile, str]]] = {}
    order = int(manifest["ingest_order"].max()) + 1 if len(manifest) else 0
    superseded: set[str] = set()
    source_rank = {name: rank for rank, name in enumerate(SOURCES)}
    for landing_file in files:
        sha = sha256_of(landing_file.path)
        previous = seen_paths.get(landing_file.relative_path)
        if previous == sha:
            continue
        if previous is not None:
            # Same path, new bytes: the department replaced the file.
            superseded.add(landing_file.relative_path)
        group = (landing_file.delivery_date, source_rank[landing_file.source], landing_file.source)
        pending.setdefault(group, []).append((landing_file, sha))

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
                                             order, run_date, registry_cache, lake_file_of, key)
        order += len(entries)
        report.files.extend(outcomes)
        manifest = _append(manifest, entries)
        # Written last: the delivery's lake files exist before the manifest names them.
        write_parquet(manifest, manifest_path(home))
    return report


def _stem(delivery_date: dt.date, sha: str) -> str:
    """The lake and quarantine file name of a delivered file's rows."""
    return f"{delivery_date.isoformat()}_{sha[:_SHA_PREFIX]}"


def _append(manifest: pd.DataFrame, entries: list[dict]) -> pd.DataFrame:
    if not entries:
        return manifest
    added = pd.DataFrame(entries).astype(MANIFEST_COLUMNS)
    return pd.concat([manifest, added], ignore_index=True) if len(manifest) else added


def _entry(outcome: FileOutcome, sha: str, landing_file: LandingFile, raw: RawFile | None,
           lake_file: str | None, order: int, run_date: dt.date) -> dict:
    return {
        "file": outcome.file, "source": outcome.source, "delivery_date": outcome.delivery_date,
        "sha256": sha, "size_bytes": landing_file.path.stat().st_size,
        "format": raw.file_format if raw else landing_file.path.suffix.lstrip(".").lower(),
        "encoding": (raw.encoding if raw else None), "status": outcome.status,
        "message": outcome.message, "rows_read": outcome.rows_read,
        "rows_accepted": outcome.rows_accepted, "rows_quarantined": outcome.rows_quarantined,
        "lake_file": lake_file, "ingest_order": order, "ingested_on": run_date.isoformat(),
    }


def _ingest_delivery(home: Path, source: Source, delivery_date: dt.date,
                     group_files: list[tuple[LandingFile, str]], manifest: pd.DataFrame,
                     order: int, run_date: dt.date, registry_cache: dict,
                     lake_file_of: dict[tuple[str, str], str],
                     pseudonym_key: str | None = None) -> tuple[list[FileOutcome],
                                                                      list[dict]]:
    """Ingest the new files of one (source, delivery date) together.

    ``lake_file_of`` maps (source, sha256) of every accepted file to its lake
    file; a file with the same bytes as one of them is recorded as a duplicate
    and not read again. It is updated as files here are accepted. With a
    ``pseudonym_key``, id numbers are pseudonymised once checked, before
    anything compares or writes them.
    """
    outcomes: list[FileOutcome] = []
    entries: list[dict] = []
    readable: list[tuple[LandingFile, str, RawFile, pd.DataFrame]] = []
    repeats: list[tuple[LandingFile, str]] = []
    first_of: dict[str, str] = {}

    def record(outcome: FileOutcome, sha: str, landing_file: LandingFile,
               raw: RawFile | None, lake_file: str | None) -> None:
        outcomes.append(outcome)
        entries.append(_entry(outcome, sha, landing_file, raw, lake_file, order + len(entries),
                              run_date))

    for landing_file, sha in group_files:
        if (source.name, sha) in lake_file_of or sha in first_of:
            repeats.append((landing_file, sha))
            continue
        first_of[sha] = landing_file.relative_path
        try:
            raw = read_delivered_file(landing_file.path, source, landing_file.relative_path)
        except FileRejected as rejection:
            record(FileOutcome(landing_file.relative_path, source.name,
                               delivery_date.isoformat(), "rejected", str(rejection)),
                   sha, landing_file, None, None)
            continue
        try:
            parsed = ingest.parse_rows(raw.frame, source, delivery_date)
        except Exception as error:  # a bug or an input nobody foresaw: lose this file, not the run
            record(FileOutcome(
                landing_file.relative_path, source.name, delivery_date.isoformat(), "rejected",
                f"{landing_file.relative_path}: rows could not be validated "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                "please report this file"), sha, landing_file, raw, None)
            continue
        if pseudonym_key is not None:
            parsed = ingest.pseudonymise_rows(parsed, source, pseudonym_key)
        readable.append((landing_file, sha, raw, parsed))

    earlier = _earlier_keys(home, source, delivery_date, manifest)
    flagged = ingest.flag_duplicate_keys([item[3] for item in readable], source, earlier)
    lookups = None
    if source.county_by != "region_code":
        lookups = _registry_placement(home, delivery_date, manifest, registry_cache)
    for (landing_file, sha, raw, _), parsed in zip(readable, flagged, strict=True):
        accepted, quarantined = ingest.split_rows(raw.frame, parsed)
        if source.name == "registry":
            accepted = ingest.add_person_facts(accepted)
            counties = accepted.pop(ingest.COUNTY)
            previous = _registry_placement(home, delivery_date - dt.timedelta(days=1), manifest,
                                           registry_cache)
            moves = ingest.county_moves(accepted, counties, previous)
            if len(moves):
                write_parquet(moves, moves_dir(home) / f"{_stem(delivery_date, sha)}.parquet")
        else:
            counties = ingest.place_in_counties(accepted, source, lookups)
        stem = _stem(delivery_date, sha)
        accepted[DELIVERY_DATE] = pd.Timestamp(delivery_date)
        _write_partitions(home, source, stem, accepted, counties)
        malformed = _malformed_rows(raw)
        quarantined = pd.concat([quarantined, malformed], ignore_index=True)
        if len(quarantined):
            quarantined = quarantined.assign(_file=landing_file.relative_path,
                                             _delivery_date=delivery_date.isoformat())
            write_parquet(quarantined, home / "quarantine" / source.name / f"{stem}.parquet")
        reasons = quarantined[ingest.REASON].value_counts().to_dict() if len(quarantined) else {}
        outcome = FileOutcome(
            landing_file.relative_path, source.name, delivery_date.isoformat(), "accepted",
            f"{raw.file_format}" + (f" {raw.encoding}" if raw.encoding else ""),
            raw.rows_read, len(accepted), len(quarantined), reasons,
        )
        assert outcome.rows_read == outcome.rows_accepted + outcome.rows_quarantined
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


def _malformed_rows(raw: RawFile) -> pd.DataFrame:
    """Lines the CSV parser could not split into the header's columns, as quarantine rows."""
    if not raw.malformed_lines:
        return pd.DataFrame()
    count = len(raw.malformed_lines)
    return pd.DataFrame({
        "_raw_line": pd.array(raw.malformed_lines, dtype="string"),
        ingest.ROW: raw.row_numbers()[1],
        ingest.REASON: pd.array(["malformed_row"] * count, dtype="string"),
        ingest.REASON_COLUMN: pd.array([None] * count, dtype="string"),
        ingest.REASON_DETAIL: pd.array(["column count differs from the header"] * count,
                                       dtype="string"),
    })


def _write_partitions(home: Path, source: Source, stem: str, accepted: pd.DataFrame,
                      counties: pd.Series) -> None:
    """One Parquet file per county for a delivered file's accepted rows."""
    base = lake_dir(home, source.name)
    # A run killed midway may have placed some of these rows in other counties
    # (the registry can differ on a rerun); the manifest does not name this file
    # yet, so its old pieces can go.
    for leftover in base.glob(f"county_code=*/{stem}.parquet"):
        leftover.unlink()
    if accepted.empty:
        # An empty file still marks the delivery, so that a snapshot can be empty.
        write_parquet(accepted, base / f"county_code={ingest.UNMATCHED_COUNTY}" / f"{stem}.parquet")
        return
    # Convert once, then cut the county slices out of one sorted table (zero-copy).
    codes, uniques = pd.factorize(counties, sort=True)
    order = np.argsort(codes, kind="stable")
    table = pa.Table.from_pandas(accepted.iloc[order], preserve_index=False)
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for number, county in enumerate(uniques):
        part = table.slice(bounds[number], bounds[number + 1] - bounds[number])
        write_table(part, base / f"county_code={county}" / f"{stem}.parquet")


def _earlier_keys(home: Path, source: Source, delivery_date: dt.date,
                  manifest: pd.DataFrame) -> pd.DataFrame | None:
    """Keys already accepted from other files of this delivery (files added to it later)."""
    entries = manifest[(manifest["source"] == source.name)
                       & (manifest["delivery_date"] == delivery_date.isoformat())
                       & (manifest["status"] == "accepted")]
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


def _lake_paths(home: Path, source: Source, stems: set[str], counties: list[str] | None
                ) -> list[Path]:
    base = lake_dir(home, source.name)
    if counties is None:
        partitions = sorted(base.glob("county_code=*"))
    else:
        partitions = [base / f"county_code={name}" for name in counties]
    return [path for partition in partitions for stem in sorted(stems)
            if (path := partition / f"{stem}.parquet").exists()]


def _read_lake_table(home: Path, source: Source, entries: pd.DataFrame,
                     columns: list[str] | None = None, counties: list[str] | None = None
                     ) -> pa.Table | None:
    """The lake files named by manifest entries as one Arrow table, or None if there are none.

    County and delivery date included; one multi-threaded dataset scan.
    """
    paths = _lake_paths(home, source, set(entries["lake_file"]), counties)
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
                   manifest: pd.DataFrame | None = None) -> CountyMembers:
    """Read once what every source's county read needs from the registry."""
    manifest = read_manifest(home) if manifest is None else manifest
    registry = read_source(home, "registry", as_of, county=county,
                           columns=["id_number", "household_id"], manifest=manifest)
    keys = {kind: registry[kind] for kind in ("id_number", "household_id")}
    return CountyMembers(keys, {kind: _counties_left(home, manifest, as_of, county, kind, values)
                                for kind, values in keys.items()})


def read_source(home: Path, source_name: str, as_of: dt.date, county: str | None = None,
                columns: list[str] | None = None, since: tuple[str, dt.date] | None = None,
                manifest: pd.DataFrame | None = None, members: CountyMembers | None = None
                ) -> pd.DataFrame:
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
    """
    home = Path(home)
    source = SOURCES[source_name]
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
                members = county_members(home, as_of, county, manifest)
            kept = members.keys[source.county_by]
            counties += members.counties_left[source.county_by]
    table = None if entries.empty else _read_lake_table(home, source, entries, columns, counties)
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


def _counties_left(home: Path, manifest: pd.DataFrame, as_of: dt.date, county: str,
                   kind: str, members: pd.Series) -> list[str]:
    """Counties that today's members of ``county`` were filed under before they moved."""
    registry = deliveries_in_force_all(manifest, SOURCES["registry"], as_of)
    paths = [moves_dir(home) / f"{stem}.parquet" for stem in registry["lake_file"]]
    paths = [path for path in paths if path.exists()]
    if not paths:
        return []
    moves = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    moves = moves[(moves["kind"] == kind).to_numpy(dtype=bool)
                  & (positions_in_many([moves["key"]], members)[0] >= 0)]
    earlier = set(moves["from_county"]) | set(moves["to_county"])
    return sorted(earlier - {county, ingest.UNMATCHED_COUNTY})


def read_as_of(home: Path, as_of: dt.date, county: str | None = None,
               columns: dict[str, list[str]] | None = None,
               since: dict[str, tuple[str, dt.date]] | None = None,
               manifest: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Sources as of a date, optionally for one county, some columns, recent rows.

    Without ``columns`` every source is read whole; with it, only the sources
    it names, and only those columns (see :data:`monitor.facts.SOURCE_COLUMNS`).
    ``since`` maps a source to a (date column, earliest date) pair (see
    :func:`monitor.facts.history_needed`). ``manifest``: the ingest manifest
    to read through (default: as it is now); a reader that holds no lock
    passes the one it read first, and sees the lake as it was then.
    """
    names = list(SOURCES) if columns is None else list(columns)
    columns = columns or {}
    since = since or {}
    manifest = read_manifest(Path(home)) if manifest is None else manifest
    members = None if county is None else county_members(home, as_of, county, manifest)
    # Arrow reads and decodes outside the GIL, so two sources at a time overlap well.
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        frames = pool.map(lambda name: read_source(
            home, name, as_of, county=county, columns=columns.get(name),
            since=since.get(name), manifest=manifest, members=members), names)
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


def quarantine_counts(home: Path, ingested_on: dt.date) -> pd.DataFrame:
    """Quarantined rows per source, reason and column, in the files the run of a date ingested.

    (By the manifest's ``ingested_on``, so that running the date again reports
    the same rows although it ingests nothing new.)
    """
    home = Path(home)
    manifest = read_manifest(home)
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

