"""One household's rows, read from the lake with Parquet filters: the household file's input.

The household file (一户一档, :mod:`monitor.reports.household`) needs every source's
rows of one household as of a date, every income assessment delivered so
far, and the household's warnings as the runs left them. Read whole, that is
the whole lake (a minute at a million households); here each read is
narrowed in the scan: the registry by 户编号, then every other source by the
household's county row groups and by its 户编号 or its members' id numbers,
so a household is read in under a second at that scale.

What a source holds for the household is decided exactly as a county's read
decides it (:func:`monitor.io.lake.read_source`): the same deliveries in
force, the same newest row per key, the same county, counted from the
household's county and the counties its members were filed under before a
move.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitor.contract.asof import deliveries_in_force_all
from monitor.contract.sources import SOURCES
from monitor.io.home import Home, dated_files
from monitor.io.lake import (
    READ_THREADS,
    CountyMembers,
    _counties_left,
    _read_lake_table,
    _registry_moves,
    lake_view,
    read_source,
)
from monitor.triage.lifecycle import EVENT_COLUMNS, as_state, empty_state
from monitor.validation import checks


class HouseholdNotFound(LookupError):
    """The 户编号 is not in the registry as of the date."""


@dataclass
class HouseholdRows:
    """What the lake and the runs hold of one household as of a date."""

    household_id: str
    as_of: dt.date
    #: The county the household is evaluated in (its first, if registered in two).
    county: str
    #: Every source's rows of the household as of the date, as a county's read gives them.
    sources: dict[str, pd.DataFrame]
    #: Every income assessment of the household delivered up to the date, oldest first.
    income_history: pd.DataFrame
    #: The date of the latest run on or before ``as_of`` (None: no run yet).
    run_date: dt.date | None
    #: The household's warnings as that run left them (lifecycle state).
    state: pd.DataFrame
    #: Every state change of the household's warnings, in all runs up to that one.
    events: pd.DataFrame


def run_dates(home: Path) -> list[dt.date]:
    """The dates the nightly run completed for (their warning state is kept), oldest first."""
    return sorted(dated_files(Home.of(home).warning_state))


def read_household(home: Path, household_id: str, as_of: dt.date) -> HouseholdRows:
    """Read one household's rows as of ``as_of``.

    Raises
    ------
    HouseholdNotFound
        When no registry row in force on the date has this 户编号.
    """
    home = Path(home)
    view = lake_view(home, as_of, moves=False)
    in_household = ds.field("household_id") == household_id
    # Which county first, on one column: a scan of every column of the registry for one
    # household costs 0.4 s at a million households, of this one 0.02 s.
    registry = SOURCES["registry"]
    found = _read_lake_table(home, registry, view.entries["registry"], ["household_id"],
                             existing=view.files["registry"], where=in_household)
    counties = (set() if found is None else
                set(found.column(checks.COUNTY).to_pylist()) - {checks.UNMATCHED_COUNTY})
    if not counties:
        raise HouseholdNotFound(f"户编号 {household_id} is not in the registry on {as_of}")
    county = min(counties)
    registry = read_source(home, "registry", as_of, county=county, view=view,
                           where=in_household)
    keys = {"household_id": pd.Series([household_id], dtype="string"),
            "id_number": registry["id_number"].astype("string")}
    run_date, state, events = _warnings_of(home, household_id, as_of)
    moves = _registry_moves(home, view.manifest, as_of)
    members = CountyMembers(keys, {kind: _counties_left(moves, county, kind, values)
                                   for kind, values in keys.items()})
    filed = [county, checks.UNMATCHED_COUNTY, *members.counties_left["household_id"]]

    def read(name: str) -> pd.DataFrame:
        source = SOURCES[name]
        if name == "feedback":
            # Answers by the warning ids they quote too (filed under the household's county,
            # or unmatched): a 户编号 a spreadsheet turned into 5.00101E+11 still answers
            # the household's warning (monitor.triage.lifecycle).
            quoted = in_household
            if len(state):
                quoted = quoted | ds.field("warning_id").isin(state["warning_id"].tolist())
            return read_source(home, name, as_of, view=view,
                               where=ds.field(checks.COUNTY).isin(filed) & quoted)
        wanted = ds.field(source.county_by).isin(keys[source.county_by].tolist())
        return read_source(home, name, as_of, county=county, members=members, view=view,
                           where=wanted)

    # Arrow scans outside the GIL: two sources at a time overlap (as a county's read does).
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        names = [name for name in SOURCES if name != "registry"]
        sources = {"registry": registry, **dict(zip(names, pool.map(read, names), strict=True))}
    income = SOURCES["income"]
    table = _read_lake_table(
        home, income, deliveries_in_force_all(view.manifest, income, as_of),
        counties=filed,
        existing=view.files["income"], where=ds.field("household_id") == household_id)
    history = (sources["income"].iloc[:0] if table is None else table.to_pandas())
    return HouseholdRows(household_id, as_of, county, sources, history.reset_index(drop=True),
                         run_date, state, events)


def _rows_of(path: Path, household_id: str) -> pa.Table:
    """One household's rows of a warning state or events file, reading only their row groups.

    The household's rows are found on the 户编号 column alone; only the row
    groups holding them are read whole (:data:`monitor.io.outputs.STATE_ROW_GROUP_ROWS`).
    """
    file = pq.ParquetFile(path)
    keys = file.read(columns=["household_id"]).column(0)
    rows = np.flatnonzero(pc.equal(keys, household_id).fill_null(False).to_numpy(
        zero_copy_only=False))
    sizes = [file.metadata.row_group(group).num_rows for group in range(file.num_row_groups)]
    groups = np.unique(np.searchsorted(np.cumsum(sizes), rows, side="right"))
    table = (file.read_row_groups(groups.tolist()) if len(groups)
             else file.schema_arrow.empty_table())
    return table.filter(pc.equal(table.column("household_id"), household_id).fill_null(False))


def _warnings_of(home: Path, household_id: str, as_of: dt.date
                 ) -> tuple[dt.date | None, pd.DataFrame, pd.DataFrame]:
    """The latest run on or before ``as_of``: its date, the household's state and events."""
    states = {day: path for day, path in dated_files(Home.of(home).warning_state).items()
              if day <= as_of}
    if not states:
        return None, empty_state(), pd.DataFrame(
            {name: pd.Series(dtype=kind) for name, kind in EVENT_COLUMNS.items()})
    run_date = max(states)
    state = _rows_of(states[run_date], household_id).to_pandas()
    events = [_rows_of(path, household_id) for day, path in sorted(dated_files(
        Home.of(home).warning_events).items()) if day <= run_date]
    events = pa.concat_tables(events, promote_options="permissive").to_pandas()
    return run_date, as_state(state), events.astype(EVENT_COLUMNS)
