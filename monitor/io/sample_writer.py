"""Write a synthetic population's deliveries into ``<home>/landing`` (the sample's only I/O).

Generation is :mod:`monitor.synth` (pure); this module opens one file per
delivery, appends every chunk to it, and closes them all at the end, so memory
stays bounded by the chunk size. Formats per source are in :data:`FORMATS`.
Output is byte-identical for the same seed, household count, as-of date and
chunk size (XLSX zip entries and document properties carry a fixed time).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from monitor.contract.sources import SOURCES
from monitor.io.home import Home
from monitor.synth.calendar import MONTHLY_SNAPSHOT_SOURCES, Calendar, calendar
from monitor.synth.chunk import Population, generate_chunk
from monitor.synth.deliveries import (
    COLUMNS,
    EVENT_SOURCES,
    SNAPSHOT_SOURCES,
    event_deliveries,
    snapshot,
)
from monitor.synth.faults import faulty_text

#: File format per source: (kind, encoding, header language).
FORMATS: dict[str, tuple[str, str, str]] = {
    "registry": ("csv", "utf-8-sig", "en"),
    "assistance": ("csv", "utf-8", "en"),
    "income": ("csv", "gb18030", "zh"),
    "rural_revitalization": ("csv", "utf-8-sig", "en"),
    "medical": ("parquet", "", "en"),
    "disability": ("csv", "utf-8", "en"),
    "employment": ("csv", "utf-8-sig", "en"),
    "education": ("csv", "utf-8", "en"),
    "housing": ("csv", "utf-8", "en"),
    "disaster": ("xlsx", "", "en"),
    "assets": ("csv", "utf-8-sig", "zh"),
    "feedback": ("xlsx", "", "zh"),
}
_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
_FIXED_DOC_TIME = "2000-01-01T00:00:00Z"


def _headers(source: str, language: str) -> list[str]:
    names = [name for name, _ in COLUMNS[source]]
    if language == "en":
        return names
    zh = {spec.name: spec.zh for spec in SOURCES[source].columns}
    return [zh[name] for name in names]


class _CsvSink:
    """A CSV delivery: header at creation, chunks appended by pyarrow (no quoting needed)."""

    def __init__(self, path: Path, source: str) -> None:
        _, encoding, language = FORMATS[source]
        self.path = path
        self.columns = [name for name, _ in COLUMNS[source]]
        header = ",".join(_headers(source, language)) + "\n"
        self.path.write_bytes(header.encode(encoding))

    def append(self, text: dict[str, np.ndarray]) -> None:
        if not len(text[self.columns[0]]):
            return
        table = pa.table({c: pa.array(text[c], type=pa.string()) for c in self.columns})
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with self.path.open("ab") as handle:
            pacsv.write_csv(table, handle, options)

    def close(self) -> None:
        """Nothing to flush: every append closes its handle."""


class _ParquetSink:
    """A Parquet delivery with every column as text, one row group per chunk."""

    def __init__(self, path: Path, source: str) -> None:
        self.columns = [name for name, _ in COLUMNS[source]]
        self.schema = pa.schema([(c, pa.string()) for c in self.columns])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def append(self, text: dict[str, np.ndarray]) -> None:
        if not len(text[self.columns[0]]):
            return
        table = pa.table({c: pa.array(text[c], type=pa.string()) for c in self.columns},
                         schema=self.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


class _XlsxSink:
    """A small XLSX delivery, collected and written at close (dates as date cells)."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.parts: list[dict[str, np.ndarray]] = []

    def append(self, text: dict[str, np.ndarray]) -> None:
        self.parts.append(text)

    def close(self) -> None:
        from openpyxl import Workbook

        kinds = COLUMNS[self.source]
        wb = Workbook(write_only=True)
        fixed = dt.datetime(2000, 1, 1)
        wb.properties.created = fixed
        wb.properties.modified = fixed
        wb.properties.creator = "monitor.synth"
        ws = wb.create_sheet(self.source)
        ws.append(_headers(self.source, FORMATS[self.source][2]))
        for part in self.parts:
            columns = [_cells(part[name], kind) for name, kind in kinds]
            for row in zip(*columns, strict=True):
                ws.append(list(row))
        buffer = io.BytesIO()
        wb.save(buffer)
        self.path.write_bytes(_normalised_zip(buffer.getvalue()))


def _cells(values: np.ndarray, kind: str) -> list:
    """Cell values: real dates and numbers where the text is one, else the text itself."""
    out = []
    for value in values.tolist():
        if value == "":
            out.append(None)
        elif kind == "date":
            try:
                out.append(dt.date.fromisoformat(value))
            except ValueError:
                out.append(value)
        elif kind == "money":
            try:
                out.append(float(value))
            except ValueError:
                out.append(value)
        else:
            out.append(value)
    return out


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite an XLSX zip with fixed entry times and document timestamps (deterministic)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    rb"\g<1>" + _FIXED_DOC_TIME.encode() + rb"\g<3>", content)
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, content)
    return out.getvalue()


_SINKS = {"csv": _CsvSink, "parquet": _ParquetSink, "xlsx": _XlsxSink}


def delivery_plan(as_of: dt.date, monthly: bool = True
                  ) -> dict[str, list[tuple[dt.date, str]]]:
    """Every delivery per source: ``(delivery date, file name)`` in delivery order.

    ``monthly``: the registry and assistance every month, as
    ``rules/deliveries.yaml`` expects; false, every 6 months like the other
    snapshots (a lighter history for tests that do not look at the schedule).

    Examples
    --------
    >>> plan = delivery_plan(dt.date(2026, 6, 30))
    >>> plan["registry"][-1]
    (datetime.date(2026, 6, 30), 'registry_2026-06-30.csv')
    >>> plan["medical"][0]
    (datetime.date(2023, 7, 5), 'medical_2023-06.parquet')
    """
    cal = calendar(as_of)
    plan = {}
    for source in SOURCES:
        ext = FORMATS[source][0]
        if source in SNAPSHOT_SOURCES:
            plan[source] = [(d, f"{source}_{d.isoformat()}.{ext}")
                            for d in cal.snapshot_dates_of(source, monthly)]
        else:
            plan[source] = [
                (d, f"{source}_{m // 12:04d}-{m % 12 + 1:02d}.{ext}")
                for m, d in zip(cal.event_months, cal.event_dates, strict=True)
            ]
    return plan


def _fault_stream(cal: Calendar, source: str, k: int, day: dt.date) -> int:
    """The random stream of a delivery's faults: its number in the half-yearly schedule.

    The monthly snapshots in between take numbers after those, so that adding
    them left every half-yearly delivery's file as it was.
    """
    if source not in SNAPSHOT_SOURCES or source not in MONTHLY_SNAPSHOT_SOURCES:
        return k
    if day in cal.snapshot_dates:
        return cal.snapshot_dates.index(day)
    return len(cal.snapshot_dates) + k


def _open_sinks(home: Path, plan: dict[str, list[tuple[dt.date, str]]]
                ) -> dict[tuple[str, int], object]:
    """One open file per planned delivery, by (source, delivery number)."""
    sinks = {}
    for source, deliveries in plan.items():
        for k, (day, name) in enumerate(deliveries):
            folder = Home.of(home).delivery(source, day)
            folder.mkdir(parents=True, exist_ok=True)
            sinks[(source, k)] = _SINKS[FORMATS[source][0]](folder / name, source)
    return sinks


def _chunks(seed: int, households: int, chunk_households: int, as_of: dt.date,
            places: tuple[str, ...] | None) -> Iterator[tuple[int, Population, int]]:
    """The population in chunks: (households done with it, the chunk, its number)."""
    taken = np.empty(0, np.int64)
    done = chunk = 0
    while done < households:
        size = min(chunk_households, households - done)
        pop = generate_chunk(seed, chunk, done, size, as_of, taken_ids=taken,
                                  places=places)
        # Id numbers are drawn anew per chunk: none may repeat an earlier chunk's.
        taken = np.union1d(taken, pop.new_ids)
        done += size
        yield done, pop, chunk
        del pop  # one chunk in memory at a time (the caller lets go of it too)
        chunk += 1


def write_sample(
    home: Path,
    households: int,
    seed: int,
    as_of: dt.date,
    *,
    chunk_households: int = 50_000,
    progress: Callable[[int], None] | None = None,
    places: tuple[str, ...] | None = None,
    monthly: bool = True,
) -> dict:
    """Generate a synthetic population and write all 12 sources' deliveries under ``home``.

    Parameters
    ----------
    home : pathlib.Path
        Deployment folder; files go to ``landing/<source>/<delivery date>/``.
    households : int
        Number of households.
    seed : int
        Seed of the population (same seed and sizes give byte-identical files).
    as_of : datetime.date
        Date of the last delivery; history reaches 36 months back (plus a
        12-month backlog in the first events delivery).
    chunk_households : int
        Households generated and written at a time (bounds memory).
    progress : callable, optional
        Called with the number of households done after each chunk.
    places : tuple of str, optional
        County or township codes to place the households in (default: all).
    monthly : bool
        The registry and assistance delivered monthly (the schedule
        ``rules/deliveries.yaml`` expects); false: every 6 months, as the
        other snapshots (a lighter history, for tests that need no schedule).

    Returns
    -------
    dict
        ``{source: {"deliveries": n, "rows": n, "faults": {kind: n}}}``; rows
        count the data rows written (injected duplicates included).
    """
    home = Path(home)
    cal = calendar(as_of)
    plan = delivery_plan(as_of, monthly)
    sinks = _open_sinks(home, plan)
    summary: dict[str, dict] = {source: {"deliveries": len(deliveries), "rows": 0, "faults": {}}
                                for source, deliveries in plan.items()}
    source_index = {name: i for i, name in enumerate(SOURCES)}

    def emit(source: str, k: int, frame, chunk: int) -> None:
        day = plan[source][k][0]
        rng = np.random.default_rng([seed, chunk, source_index[source],
                                     _fault_stream(cal, source, k, day), 1])
        text, counts = faulty_text(frame, source, rng, day)
        sinks[(source, k)].append(text)
        entry = summary[source]
        entry["rows"] += len(next(iter(text.values())))
        for fault, count in counts.items():
            entry["faults"][fault] = entry["faults"].get(fault, 0) + count

    try:
        for done, pop, chunk in _chunks(seed, households, chunk_households, as_of, places):
            for source in SNAPSHOT_SOURCES:
                for k, (day, _) in enumerate(plan[source]):
                    emit(source, k, snapshot(pop, source, day), chunk)
            for source in EVENT_SOURCES:
                for k, frame in event_deliveries(pop, source, cal).items():
                    emit(source, k, frame, chunk)
            del pop
            if progress is not None:
                progress(done)
    finally:
        for sink in sinks.values():
            sink.close()
    return summary
