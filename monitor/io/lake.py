"""The Parquet lake: where ingested rows live, and how sources are read back as of a date.

Layout under the home folder (plain Parquet, readable by DuckDB or pandas
without this project)::

    lake/<source>/<delivery_date>_<sha16>.parquet
    quarantine/<source>/<delivery_date>_<sha16>.parquet
    state/ingest_manifest.parquet
    state/county_moves/<registry delivery>.parquet

A lake file holds the accepted rows of one delivered file, with their
``county_code`` (6 digits, or ``unmatched``), each county in row groups of
its own: a county's read skips the others by their statistics, and the
number of files grows with the deliveries, not with deliveries x counties.

The ingest (:mod:`monitor.io.ingest`) writes the manifest last, atomically,
after the lake and quarantine files of a delivery; readers here use only
files the manifest names. A run killed midway therefore leaves the lake as
it was, and the next run rewrites the same file names and completes it.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitor.contract.asof import (
    DELIVERY_DATE,
    deliveries_in_force,
    deliveries_in_force_all,
    latest_rows,
)
from monitor.contract.keys import positions_in_many
from monitor.contract.sources import SOURCES, Source
from monitor.io.home import Home
from monitor.validation import checks

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
    # What an accepted file holds, for the delivery checks (monitor.triage.deliveries): JSON
    # counts of accepted rows per county and of empty values per column.
    "rows_by_county": "string", "empty_by_column": "string",
    # Set while a delivery is kept from the state: held (waiting for an operator), rejected or
    # superseded (monitor.triage.deliveries); empty for the rest.
    "hold": "string",
}
SHA_PREFIX = 16
READ_THREADS = 2


def lake_dir(home: Path, source: str) -> Path:
    """The lake folder of one source."""
    return Home.of(home).lake(source)


def moves_dir(home: Path) -> Path:
    """Where each registry delivery's county moves are kept."""
    return Home.of(home).county_moves


def manifest_path(home: Path) -> Path:
    """Where the ingest manifest lives."""
    return Home.of(home).ingest_manifest


def read_manifest(home: Path) -> pd.DataFrame:
    """The ingest manifest: one row per landing file seen, with its outcome and counts."""
    path = manifest_path(home)
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in
                             MANIFEST_COLUMNS.items()})
    # reindex: a manifest written before a column was added reads it as missing.
    manifest = pd.read_parquet(path).reindex(columns=list(MANIFEST_COLUMNS))
    return manifest.fillna({"rows_unanswered": 0}).astype(MANIFEST_COLUMNS)


class LakeFilesMissing(RuntimeError):
    """Lake files the ingest manifest names are gone: reading on would drop their rows."""


class LakeLayoutError(RuntimeError):
    """The lake is still laid out in county folders: the next ingest lays it out again."""


def _lake_paths(home: Path, source: Source, stems: set[str],
                existing: frozenset[str] | None = None) -> list[Path]:
    """The lake files of ``stems`` that exist, in delivery order.

    ``existing``: the source's file names, listed once for many reads
    (:class:`LakeView`); else each is looked up on disk.
    """
    base = lake_dir(home, source.name)
    names = [f"{stem}.parquet" for stem in sorted(stems)]
    if existing is None:
        _check_layout(base)
        return [base / name for name in names if (base / name).exists()]
    return [base / name for name in names if name in existing]


def _lake_files(home: Path, source: Source) -> frozenset[str]:
    """The names of every file of a source's lake."""
    base = lake_dir(home, source.name)
    if not base.exists():
        return frozenset()
    _check_layout(base)
    return frozenset(path.name for path in base.iterdir() if path.suffix == ".parquet")


def _check_layout(base: Path) -> None:
    """Refuse a source's lake still laid out in county folders (the earlier layout).

    Read as it is, it would look empty: every household would drop off the
    lists without a word.

    Raises
    ------
    LakeLayoutError
        If ``base`` holds a ``county_code=`` folder.
    """
    if any(True for _ in base.glob(f"{checks.COUNTY}=*")):
        raise LakeLayoutError(
            f"{base}: the lake is in county folders, the layout before one file per "
            "delivered file; run `monitor ingest` (or the nightly run) once to lay it out again")


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
    #: The datasets of the files read so far, by their paths, sizes and times: a dataset keeps
    #: each file's footer once read, so a county's read does not parse every file's footer
    #: again. Not sent to another process (a cluster's worker reads the footers itself).
    datasets: dict[tuple, ds.Dataset] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "datasets": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)  # frozen: set as the unpickled object's own fields


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
                     existing: frozenset[str] | None = None,
                     datasets: dict[tuple, ds.Dataset] | None = None,
                     where: ds.Expression | None = None) -> pa.Table | None:
    """The lake files named by manifest entries as one Arrow table, or None if there are none.

    County and delivery date included; only the row groups of ``counties``
    (all by default), found by their statistics; one multi-threaded dataset
    scan. Rows come county by county (in the order of ``counties``, else by
    code), then by delivery, each file's in the order delivered. ``datasets``:
    datasets made before, by their paths, reused (and added to). ``where``: a
    filter on the rows, applied in the scan (e.g. one household's key).
    """
    paths = _lake_paths(home, source, set(entries["lake_file"]), existing)
    _check_present(home, source, entries, paths)
    if not paths:
        return None
    # By each file's size and time too: a file written again under its name (a delivery
    # ingested anew while a tune reads without the lock) must not be read by its old footer.
    key = None if datasets is None else tuple(
        (path, (stat := path.stat()).st_size, stat.st_mtime_ns) for path in paths)
    dataset = None if datasets is None else datasets.get(key)
    if dataset is None:
        dataset = ds.dataset([str(path) for path in paths], format="parquet")
        if datasets is not None:
            datasets[key] = dataset
    wanted = None if columns is None else [*columns, checks.COUNTY, DELIVERY_DATE]
    chosen = None if counties is None else ds.field(checks.COUNTY).isin(counties)
    if where is not None:
        # A scan decodes every column it returns for each row group the statistics leave;
        # first find, on the filter's columns alone, the counties of the rows wanted, so
        # that only their row groups are decoded whole.
        chosen = where if chosen is None else chosen & where
        found = dataset.to_table(columns=[checks.COUNTY], filter=chosen).column(checks.COUNTY)
        chosen = chosen & ds.field(checks.COUNTY).isin(pc.unique(found))
    table = dataset.to_table(columns=wanted, filter=chosen)
    if counties is None:
        rank = pc.rank(table.column(checks.COUNTY), sort_keys="ascending", tiebreaker="dense")
    else:
        rank = pc.index_in(table.column(checks.COUNTY), value_set=pa.array(counties))
    rank = rank.to_numpy()
    if len(rank) > 1 and (rank[1:] < rank[:-1]).any():
        # A file holds its counties in code order, and a delivery's files follow each other:
        # put the rows in the order of the counties asked for (a stable sort).
        table = table.take(pa.array(np.argsort(rank, kind="stable")))
    return table


def _check_present(home: Path, source: Source, entries: pd.DataFrame, paths: list[Path]
                   ) -> None:
    """Every lake file the entries say holds accepted rows is there, else one clear error.

    A lake folder deleted between runs would otherwise read as a source with
    no rows, and every household would drop off the lists without a word.
    """
    holding = entries.loc[entries["rows_accepted"].fillna(0).to_numpy() > 0, "lake_file"]
    missing = sorted(set(holding) - {path.stem for path in paths})
    if missing:
        raise LakeFilesMissing(
            f"{lake_dir(home, source.name)}: {len(missing)} lake file(s) the ingest manifest "
            f"names are gone (the first: {missing[0]}.parquet): the rows of those deliveries "
            "would be missing from every list; restore them from a backup before running")


def read_lake_files(home: Path, source: Source, entries: pd.DataFrame,
                     columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of the lake files named by manifest entries (all counties), as pandas."""
    table = _read_lake_table(home, source, entries, columns)
    return _empty_frame(source, columns) if table is None else table.to_pandas()


def _empty_frame(source: Source, columns: list[str] | None) -> pd.DataFrame:
    dtypes = {name: column.dtype.type for name, column in source.schema.columns.items()}
    names = columns or list(dtypes)
    frame = pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, "string")) for name in names})
    frame[checks.COUNTY] = pd.Series(dtype="string")
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
                view: LakeView | None = None, where: ds.Expression | None = None
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
        A 6-digit county code: read only that county's row groups (and rows not
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
    where : pyarrow.dataset.Expression, optional
        Only rows that pass this filter, applied in the scan: one household's
        rows are read without converting its county's. It must keep every
        row of a key it keeps (filter on the key or the county column).
    """
    home = Path(home)
    source = SOURCES[source_name]
    if view is None or view.as_of != as_of:
        view = None
    entries, existing = _entries_of(home, source, as_of, since, manifest, view)
    if columns is not None:
        # The key decides which rows count; the county column where they belong.
        columns = list(dict.fromkeys([*columns, *source.key, source.county_by]))
    counties = kept = None
    if county is not None:
        counties = [county, checks.UNMATCHED_COUNTY]
        if source.county_by != "region_code":
            if members is None:
                members = county_members(home, as_of, county, manifest, view)
            kept = members.keys[source.county_by]
            counties += members.counties_left[source.county_by]
    table = None if entries.empty else _read_lake_table(
        home, source, entries, columns, counties, existing,
        None if view is None else view.datasets, where)
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
        rows = _belonging_to(rows, source, county, kept)
    return rows.reset_index(drop=True)


def _entries_of(home: Path, source: Source, as_of: dt.date, since: tuple[str, dt.date] | None,
                manifest: pd.DataFrame | None, view: LakeView | None
                ) -> tuple[pd.DataFrame, frozenset[str] | None]:
    """The manifest entries a read of ``source`` as of ``as_of`` needs, and the lake's files."""
    if view is not None:
        entries, existing = view.entries[source.name], view.files[source.name]
    else:
        manifest = read_manifest(home) if manifest is None else manifest
        entries, existing = deliveries_in_force(manifest, source, as_of), None
    if since is not None:
        # Ingest refuses dates after their delivery date, so a delivery made before
        # `since` holds only older rows, and can neither be wanted nor replace a later row.
        entries = entries[pd.to_datetime(entries["delivery_date"]) >= pd.Timestamp(since[1])]
    return entries, existing


def _belonging_to(rows: pd.DataFrame, source: Source, county: str, kept: pd.Series | None
                  ) -> pd.DataFrame:
    """The rows that belong to ``county`` today (those of its members, by ``kept``).

    Rows are filed under the county their household had when they came in;
    what belongs to the county now is decided by today's registry.
    """
    if kept is None:
        return rows[rows[checks.COUNTY] != checks.UNMATCHED_COUNTY]
    rows = rows[positions_in_many([rows[source.county_by]], kept)[0] >= 0].copy()
    rows[checks.COUNTY] = county
    return rows


def _counties_left(moves: pd.DataFrame, county: str, kind: str, members: pd.Series
                   ) -> list[str]:
    """Counties that today's members of ``county`` were filed under before they moved."""
    if moves.empty:
        return []
    moves = moves[(moves["kind"] == kind).to_numpy(dtype=bool)
                  & (positions_in_many([moves["key"]], members)[0] >= 0)]
    earlier = set(moves["from_county"]) | set(moves["to_county"])
    return sorted(earlier - {county, checks.UNMATCHED_COUNTY})


def read_as_of(home: Path, as_of: dt.date, county: str | None = None,
               columns: dict[str, list[str]] | None = None,
               since: dict[str, tuple[str, dt.date]] | None = None,
               manifest: pd.DataFrame | None = None, view: LakeView | None = None
               ) -> dict[str, pd.DataFrame]:
    """Sources as of a date, optionally for one county, some columns, recent rows.

    Without ``columns`` every source is read whole; with it, only the sources
    it names, and only those columns (see :data:`monitor.policy.facts.SOURCE_COLUMNS`).
    ``since`` maps a source to a (date column, earliest date) pair (see
    :func:`monitor.policy.facts.history_needed`). ``manifest``: the ingest manifest
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
    paths = _lake_paths(home, registry, set(entries["lake_file"]))
    _check_present(home, registry, entries, paths)
    if not paths:
        return []
    return sorted(set().union(*map(_counties_in, paths)) - {checks.UNMATCHED_COUNTY})


def _counties_in(path: Path) -> set[str]:
    """The counties a lake file holds, from its row groups' statistics (each holds one county).

    The column itself is read only where a row group has no statistics.
    """
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.names.index(checks.COUNTY)
    counties = set()
    for number in range(metadata.num_row_groups):
        statistics = metadata.row_group(number).column(column).statistics
        if statistics is None or not statistics.has_min_max or statistics.min != statistics.max:
            return set(pq.read_table(path, columns=[checks.COUNTY]).column(checks.COUNTY)
                       .unique().to_pylist())
        counties.add(statistics.min)
    return counties


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
    accepted = [read_lake_files(home, source, files.iloc[[number]]).assign(
                    _file=file, _workbook_township=township)
                for number, (file, township) in enumerate(zip(
                    files["file"], files["workbook_township"], strict=True))]
    quarantined = [pd.read_parquet(path) for lake_file in
                   files.loc[(files["rows_quarantined"] > 0).to_numpy(dtype=bool), "lake_file"]
                   if (path := Home.of(home).quarantine(source_name) / f"{lake_file}.parquet")
                   .exists()]
    return (pd.concat(accepted, ignore_index=True) if accepted else _empty_frame(source, None),
            pd.concat(quarantined, ignore_index=True) if quarantined else pd.DataFrame(
                columns=[checks.ROW, checks.REASON, checks.REASON_COLUMN, "_file"]))


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
        path = Home.of(home).quarantine(source) / f"{lake_file}.parquet"
        if path.exists():
            rows = pd.read_parquet(path).reindex(columns=[checks.REASON, checks.REASON_COLUMN])
            frames.append(pd.DataFrame({"source": source, "reason": rows[checks.REASON],
                                        "column": rows[checks.REASON_COLUMN]}))
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype="int64" if name == "rows" else "string")
                             for name in columns})
    every = pd.concat(frames, ignore_index=True).astype("string").fillna("")
    return (every.groupby(["source", "reason", "column"]).size().rename("rows").reset_index()
            .sort_values(["source", "rows"], ascending=[True, False], ignore_index=True))

