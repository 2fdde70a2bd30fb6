"""Landing folder: find deliveries and read one delivered file into contract-named text columns.

``<home>/landing/<source>/<YYYY-MM-DD>/<file>.csv|.xlsx|.parquet``. CSV may be
UTF-8 (with or without BOM) or GB18030/GBK, detected from the bytes. Headers
are matched to contract names (English, any case, or the Chinese alias) after
trimming. A file that cannot be read is rejected with a message naming it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from time import monotonic
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.contract import regions
from monitor.contract.dates import BUREAU_TIME_ZONE
from monitor.contract.sources import SOURCES, Source
from monitor.io.home import Home
from monitor.triage import workbook
from monitor.validation.checks import (
    CUT_CELL_CHARS,
    MAX_CELL_BYTES,
    OVERLONG,
    REPLACEMENT,
    ROW,
    SHEET,
    VILLAGE,
    WORKBOOK_TOWNSHIP,
)

SUPPORTED_SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
_HEADER_PROBE_BYTES = 1 << 16
_HASH_CHUNK_BYTES = 1 << 22
_PARSER_BLOCK_BYTES = 1 << 20
#: Characters no one can see: byte-order marks and zero-width spaces and joiners.
INVISIBLE = "[\ufeff\u200b\u200c\u200d\u2060]"


class FileRejected(Exception):
    """A delivered file that cannot be ingested at all; the message names the problem."""


@dataclass(frozen=True)
class LandingFile:
    """One delivered file, as found under the landing folder."""

    source: str
    delivery_date: dt.date
    path: Path
    relative_path: str


@dataclass(frozen=True)
class Batching:
    """How much of a delivered file is held in memory at once.

    A file of any size is read, checked and written batch by batch, so memory
    follows the batch, not the file: about ``csv_bytes`` of CSV text, or
    ``parquet_rows`` rows of a Parquet file. A spreadsheet (at most 1,048,576
    rows) is read whole.
    """

    csv_bytes: int = 16 << 20
    parquet_rows: int = 500_000
    #: Malformed lines held at once (the parser meets them up to one block, 1 MiB,
    #: ahead of the rows it returns); past either limit the file is refused as laid
    #: out wrongly.
    malformed_lines: int = 300_000
    malformed_bytes: int = 64 << 20
    #: A file still being read and checked after this many seconds is rejected, so that no
    #: file holds the night (the benchmarks' largest files, a registry CSV of 224 MB and 2.8
    #: million rows and a Parquet file of 1.9 million, are ingested together in 37-43 s on
    #: two cores; checked between batches, each bounded by the sizes above).
    file_seconds: float = 900.0

    def __post_init__(self) -> None:
        if min(self.csv_bytes, self.parquet_rows, self.malformed_lines,
               self.malformed_bytes, self.file_seconds) <= 0:
            raise ValueError(f"every batching size must be positive: {self}")


DEFAULT_BATCHING = Batching()


@dataclass
class RawBatch:
    """Some rows of a delivered file as text, each with its data-row number in the file.

    ``frame`` has contract-named text columns and ``_row`` (1 = the first row
    under the header); lines the CSV parser could not split into the header's
    columns come separately, with their own row numbers.
    """

    frame: pd.DataFrame
    malformed_lines: list[str] = field(default_factory=list)
    malformed_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: Read from a repaired file: bytes that were not text stand as U+FFFD in some cells.
    repaired: bool = False

    @property
    def rows_read(self) -> int:
        """Data rows in the batch, the malformed ones included."""
        return len(self.frame) + len(self.malformed_lines)


@dataclass
class RawFile:
    """A delivered file opened for reading: its format and encoding, and its rows in batches.

    ``batches`` can be iterated once. A read error part way through raises
    :class:`FileRejected` naming the file.
    """

    file_format: str
    encoding: str | None
    batches: Iterator[RawBatch]
    #: Rows of a returned township workbook that nobody answered (not faults, not read).
    unanswered: int = 0
    #: The township a returned workbook was written for (its 填写说明 says), if one.
    township: str | None = None


#: A delivery folder dated this many days after the run date is named in a notice: most
#: likely a mistyped year (2062 for 2026), which would otherwise wait silently forever.
FAR_FUTURE_DAYS = 366
#: Set to ``follow`` to ingest delivery folders and files linked from outside the home.
LINKS_VARIABLE = "MONITOR_LANDING_LINKS"
_DELIVERY_FOLDER = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _outside(path: Path, home: Path) -> bool:
    """Whether a path (a link, followed) leads out of the home."""
    try:
        path.resolve().relative_to(home.resolve())
    except ValueError:
        return True
    return False


def _delivery_date(where: str, delivery_dir: Path, up_to: dt.date, home: Path,
                   follow_links: bool) -> tuple[dt.date | None, str | None]:
    """A delivery folder's date, or why it is not read (a notice; None: later, silently)."""
    if not _DELIVERY_FOLDER.fullmatch(delivery_dir.name):
        return None, f"{where}: folder name is not a delivery date YYYY-MM-DD, ignored"
    try:
        delivery_date = dt.date.fromisoformat(delivery_dir.name)
    except ValueError:
        return None, f"{where}: folder name is not a delivery date YYYY-MM-DD, ignored"
    if not delivery_dir.is_dir():
        return None, f"{where}: not a folder, ignored"
    if delivery_dir.is_symlink() and _outside(delivery_dir, home) and not follow_links:
        return None, (f"{where}: a link to {delivery_dir.resolve()}, outside the home: not "
                      f"followed (set {LINKS_VARIABLE}=follow to ingest linked deliveries)")
    if (delivery_date - up_to).days > FAR_FUTURE_DAYS:
        return None, (f"{where}: dated {delivery_date.year - up_to.year} years after the run "
                      f"date {up_to}: a mistyped year? left for a later run")
    return (delivery_date if delivery_date <= up_to else None), None


def _delivered_files(source: str, delivery_date: dt.date, delivery_dir: Path, home: Path,
                     follow_links: bool, notices: list[str]) -> list[LandingFile]:
    """The files of one delivery folder; what is not a readable file is named in a notice."""
    files = []
    for path in sorted(delivery_dir.rglob("*")):
        if path.name.startswith((".", "~$")):
            continue
        relative = path.relative_to(home).as_posix()
        if path.is_symlink() and not path.exists():
            notices.append(f"{relative}: a link to nothing (dangling), ignored")
        elif not follow_links and _outside(path, home):
            notices.append(f"{relative}: a link to {path.resolve()}, outside the home: not "
                           f"followed (set {LINKS_VARIABLE}=follow to ingest it)")
        elif path.is_dir():
            continue
        elif not path.is_file():
            # A named pipe or a device would block the run that opened it.
            notices.append(f"{relative}: not a regular file (a pipe, socket or device), "
                           "ignored")
        else:
            files.append(LandingFile(source, delivery_date, path, relative))
    return files


def discover(home: Path, up_to: dt.date) -> tuple[list[LandingFile], list[str]]:
    """Every delivered file dated on or before ``up_to``, and notices about what was skipped.

    Deliveries dated after ``up_to`` are left for a later run (named in a
    notice when dated more than a year after it: a mistyped year). Folders
    that are not contract sources or not dates ``YYYY-MM-DD``, links to
    nothing or to a place outside the home (unless ``MONITOR_LANDING_LINKS=follow``),
    pipes and devices come back as notices naming the path: every entry under
    ``landing/`` is ingested, rejected or named.
    """
    home = Path(home)
    landing = Home.of(home).landing
    follow_links = os.environ.get(LINKS_VARIABLE, "") == "follow"
    files: list[LandingFile] = []
    notices: list[str] = []
    if not landing.is_dir():
        return files, [f"{landing}: no landing folder"]
    for source_dir in sorted(p for p in landing.iterdir() if not p.name.startswith(".")):
        if not source_dir.is_dir() or source_dir.name not in SOURCES:
            notices.append(f"landing/{source_dir.name}: not a contract source, ignored")
            continue
        for delivery_dir in sorted(p for p in source_dir.iterdir() if not p.name.startswith(".")):
            where = f"landing/{source_dir.name}/{delivery_dir.name}"
            delivery_date, notice = _delivery_date(where, delivery_dir, up_to, home,
                                                   follow_links)
            if notice:
                notices.append(notice)
            if delivery_date is not None:
                files += _delivered_files(source_dir.name, delivery_date, delivery_dir, home,
                                          follow_links, notices)
    return files, notices


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def map_headers(headers: list[str], source: Source, file_label: str) -> dict[str, str]:
    """Map delivered header texts to contract column names; reject a file missing a required one.

    Examples
    --------
    >>> disability = SOURCES["disability"]
    >>> map_headers([" 身份证号 ", "Disability_Type", "等级"], disability, "x.csv")
    Traceback (most recent call last):
    ...
    monitor.io.landing.FileRejected: x.csv: missing required column 'disability_level' (残疾等级)...
    >>> headers = [" 身份证号 ", "Disability_Type", "残疾等级", "备注"]
    >>> mapping = map_headers(headers, disability, "x")
    >>> list(mapping.values())
    ['id_number', 'disability_type', 'disability_level']
    """
    aliases = source.header_aliases
    mapping: dict[str, str] = {}
    for header in headers:
        text = str(header).replace("\ufeff", "").strip()
        name = aliases.get(text) or aliases.get(text.lower())
        if name is None:
            continue
        if name in mapping.values():
            raise FileRejected(f"{file_label}: two columns both mean '{name}'; "
                               "send one of them")
        mapping[header] = name
    missing = [spec for spec in source.columns if spec.required and spec.name not in
               mapping.values()]
    if missing:
        names = ", ".join(f"'{spec.name}' ({spec.zh})" for spec in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise FileRejected(f"{file_label}: missing required {noun} {names}; "
                           "the file was not ingested")
    return mapping


def open_delivered_file(path: Path, source: Source, file_label: str,
                        batching: Batching = DEFAULT_BATCHING) -> RawFile:
    """Open a delivered file: check its type, encoding and headers now, read its rows in batches.

    Raises
    ------
    FileRejected
        When the file is empty, of an unsupported type, undecodable, or lacks
        a required column; later, from the batches, when its rows cannot be read.
    """
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FileRejected(f"{file_label}: unsupported file type '{path.suffix}' "
                           "(send .csv, .xlsx or .parquet)")
    if path.stat().st_size == 0:
        raise FileRejected(f"{file_label}: the file is empty")
    with _as_rejection(kind, file_label):
        if kind == "csv":
            raw = _open_csv(path, source, file_label, batching)
        elif kind == "xlsx":
            raw = _read_xlsx(path, source, file_label)
        else:
            raw = _open_parquet(path, source, file_label, batching.parquet_rows)
    raw.batches = _rejecting(raw.batches, kind, file_label, batching.file_seconds)
    return raw


def read_delivered_file(path: Path, source: Source, file_label: str,
                        batching: Batching = DEFAULT_BATCHING) -> RawBatch:
    """Every row of a delivered file as one batch (for small files and tests)."""
    batches = list(open_delivered_file(path, source, file_label, batching).batches)
    return RawBatch(
        pd.concat([batch.frame for batch in batches], ignore_index=True),
        [line for batch in batches for line in batch.malformed_lines],
        np.concatenate([batch.malformed_rows for batch in batches]),
    )


@contextmanager
def _as_rejection(kind: str, file_label: str) -> Iterator[None]:
    """Turn any reader failure into this file's rejection: the file's problem, not the run's."""
    try:
        yield
    except FileRejected:
        raise
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "straddles" in first_line:
            raise FileRejected(f"{file_label}: a row runs on longer than the parser's block "
                               "(is a quote left open?); the file was not ingested") from error
        raise FileRejected(f"{file_label}: cannot read as {kind}: "
                           f"{type(error).__name__} {first_line}".strip()) from error


def _rejecting(batches: Iterator[RawBatch], kind: str, file_label: str, seconds: float
               ) -> Iterator[RawBatch]:
    """The batches, a reader's failure rejecting the file; so is a file read for too long.

    The time counts from the file's opening to each batch's return (its reading,
    and the checking of the batches before it).
    """
    started = monotonic()
    rows = 0
    with _as_rejection(kind, file_label):
        for batch in batches:
            if monotonic() - started > seconds:
                raise FileRejected(
                    f"{file_label}: still being read after {seconds:,.0f} s (by data row "
                    f"{rows + batch.rows_read:,}): not ingested; split it into smaller files")
            rows += batch.rows_read
            yield batch


def _cut_overlong(column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray,
                                                                np.ndarray | None]:
    """A text column with each cell over :data:`MAX_CELL_BYTES` cut; the rows cut (or None).

    A dictionary column (a Parquet file's, read so) is cut in its dictionary,
    before any value is repeated into its rows.
    """
    encoded = pa.types.is_dictionary(column.type)
    if encoded and isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.dictionary if encoded else column
    lengths = pc.binary_length(values)
    longest = pc.max(lengths).as_py()
    if longest is None or longest <= MAX_CELL_BYTES:
        return column, None
    over = pc.greater(lengths, MAX_CELL_BYTES)
    cut = pc.if_else(over, pc.utf8_slice_codeunits(values, 0, CUT_CELL_CHARS), values)
    if encoded:
        rows = pc.take(over, column.indices)
        column = pa.DictionaryArray.from_arrays(column.indices, cut)
    else:
        rows, column = over, cut
    return column, rows.fill_null(False).to_numpy(zero_copy_only=False)


def _cut_table(table: pa.Table) -> tuple[pa.Table, np.ndarray | None]:
    """A table's overlong cells cut (:func:`_cut_overlong`); each row's first column cut."""
    overlong = None
    columns = {}
    for name in table.column_names:
        column, cut = _cut_overlong(table.column(name))
        columns[name] = column
        if cut is not None:
            overlong = np.full(table.num_rows, None, dtype=object) if overlong is None else overlong
            overlong[cut & pd.isna(overlong)] = name
    return (table if overlong is None else pa.table(columns)), overlong


def _cut_frame(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A spreadsheet's rows with their overlong cells cut, as :func:`_text_frame` cuts them."""
    table, overlong = _cut_table(pa.Table.from_pandas(frame[names], preserve_index=False))
    if overlong is None:
        return frame
    frame = frame.copy()
    frame[names] = table.to_pandas().astype("string")
    frame[OVERLONG] = pd.array(overlong, dtype="string")
    return frame


def _text_frame(table: pa.Table, rows: np.ndarray) -> pd.DataFrame:
    """Arrow text columns as pandas strings, with each row's number in its file.

    A cell over :data:`MAX_CELL_BYTES` is cut first (:func:`_cut_table`).
    """
    return _frame(*_cut_table(table), rows)


def _frame(table: pa.Table, overlong: np.ndarray | None, rows: np.ndarray) -> pd.DataFrame:
    """Text columns already cut as pandas strings, with row numbers and the columns cut.

    ``overlong`` names, row by row, the first column whose cell was cut (in
    :data:`OVERLONG`, for the row checks).
    """
    frame = table.to_pandas().astype("string")
    frame[ROW] = rows
    if overlong is not None:
        frame[OVERLONG] = pd.array(overlong, dtype="string")
    return frame


def _no_text(names: Iterable[str]) -> pa.Table:
    """A table of text columns with no rows (a file with a header only)."""
    return pa.table({name: pa.array([], pa.string()) for name in names})


#: More bad bytes than one per this many lines: the file is not in that encoding at all.
BAD_BYTES_PER_LINES = 100


def _decodes_whole(path: Path, encoding: str, head: bytes) -> tuple[bool, int]:
    """Whether the whole file decodes (read in chunks), and the offset of the first bad byte."""
    # Incremental, so that a character cut at the end of a chunk is no error.
    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0
    try:
        decoder.decode(head, final=False)
        done = len(head)
        with path.open("rb") as handle:
            handle.seek(len(head))
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                decoder.decode(chunk, final=False)
                done += len(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return False, done + error.start
    return True, -1


def _line_of(path: Path, offset: int) -> int:
    """The line number of a byte offset in a file (counted in chunks)."""
    lines = 1
    with path.open("rb") as handle:
        while offset > 0 and (chunk := handle.read(min(offset, _HASH_CHUNK_BYTES))):
            lines += chunk.count(b"\n")
            offset -= len(chunk)
    return lines


def _decoded_counts(path: Path, encoding: str) -> tuple[int, int, int]:
    """A file decoded in chunks with bad bytes replaced: (replaced, other non-ASCII, lines)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    bad = valid = lines = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_HASH_CHUNK_BYTES)
            text = decoder.decode(chunk, final=not chunk)
            replaced = text.count(REPLACEMENT)
            # NUL bytes are not text either (UTF-16 decodes as "valid" UTF-8, one byte in two
            # a NUL).
            bad += replaced + text.count("\x00")
            valid += len(text) - len(text.encode("ascii", "ignore")) - replaced
            lines += chunk.count(b"\n")
            if not chunk:
                return bad, valid, lines + 1


def _repaired_file(path: Path, file_label: str, first_bad: int) -> tuple[str, BinaryIO]:
    """A file with a few bad bytes, decoded in its likelier encoding with them replaced.

    UTF-8 when most of its non-ASCII text is valid UTF-8 (GB18030 text read as
    UTF-8 is nearly all errors), else GB18030. The replaced bytes become
    U+FFFD, and the row checks quarantine their lines alone (``bad_encoding``).
    The repaired text is written, chunk by chunk, to a temporary file (gone
    when closed): memory stays a chunk, whatever the file's size.
    """
    encoding, python_encoding = "UTF-8", "utf-8-sig"
    bad, valid, lines = _decoded_counts(path, python_encoding)
    if valid < 10 * bad:
        encoding, python_encoding = "GB18030", "gb18030"
        bad, _, lines = _decoded_counts(path, python_encoding)
    if bad > max(1, lines // BAD_BYTES_PER_LINES):
        raise FileRejected(f"{file_label}: text is neither UTF-8 nor GB18030 ({bad:,} bytes "
                           f"are neither, the first on line {_line_of(path, first_bad)})")
    decoder = codecs.getincrementaldecoder(python_encoding)(errors="replace")
    repaired = tempfile.TemporaryFile()  # noqa: SIM115 - the CSV reader holds it open
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            repaired.write(decoder.decode(chunk).encode("utf-8"))
    repaired.write(decoder.decode(b"", final=True).encode("utf-8"))
    repaired.seek(0)
    return encoding, repaired


def _detect_encoding(path: Path, file_label: str) -> tuple[str, str, str, BinaryIO | None]:
    """A CSV's encoding (as Arrow names it, and as the manifest says it), first text, repairs.

    UTF-8 only if the whole file decodes as UTF-8 (read in chunks): a file
    whose header is plain ASCII may carry its body in the national encoding.
    A file with a few bytes that are not text in either comes back repaired
    (as UTF-8, the bad bytes as U+FFFD, whose lines the row checks quarantine):
    one bad byte costs its line, not the file, whatever the file's size.
    """
    with path.open("rb") as handle:
        head = handle.read(_HEADER_PROBE_BYTES)
    whole, first_bad = _decodes_whole(path, "utf-8-sig", head)
    if whole:
        return "utf8", "UTF-8", codecs.getincrementaldecoder("utf-8-sig")().decode(head), None
    as_gb, gb_bad = _decodes_whole(path, "gb18030", head)
    if as_gb:
        return ("gb18030", "GB18030", codecs.getincrementaldecoder("gb18030")().decode(head),
                None)
    encoding, repaired = _repaired_file(path, file_label, min(first_bad, gb_bad))
    head_text = repaired.read(_HEADER_PROBE_BYTES).decode("utf-8", errors="ignore")
    repaired.seek(0)
    return "utf8", f"{encoding} (bytes that are not text replaced)", head_text, repaired


def _open_csv(path: Path, source: Source, file_label: str, batching: Batching) -> RawFile:
    encoding, label, text, repaired = _detect_encoding(path, file_label)
    header_line = next(csv.reader(io.StringIO(text)), [])
    if not any(cell.strip() for cell in header_line):
        raise FileRejected(f"{file_label}: no header row")
    mapping = map_headers(header_line, source, file_label)
    # Unique placeholder names so that blank or repeated headers do not upset the parser.
    names = [f"c{i}" for i in range(len(header_line))]
    wanted = {f"c{i}": mapping[h] for i, h in enumerate(header_line) if h in mapping}
    malformed = _MalformedLines(batching, file_label, len(header_line))
    with malformed.refusing_too_many():
        reader = pa_csv.open_csv(
            path if repaired is None else repaired,
            read_options=pa_csv.ReadOptions(
                column_names=names, skip_rows=1, encoding=encoding,
                # The parser reads several blocks ahead; small blocks keep that small.
                block_size=min(batching.csv_bytes, _PARSER_BLOCK_BYTES),
                # Serial parsing numbers each malformed line in the file.
                use_threads=False,
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=malformed.skip
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=list(wanted),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    contract_names = [wanted[name] for name in reader.schema.names]
    batches = _csv_batches(reader, contract_names, malformed, batching.csv_bytes)
    if repaired is not None:
        batches = (replace(batch, repaired=True) for batch in batches)
    return RawFile("csv", label, batches)


class _MalformedLines:
    """The parser's handler of lines that do not split into the header's columns.

    It keeps each line until a batch takes it. The parser meets them ahead of
    the rows it returns, and returns no rows at all while every line is
    malformed (a comma at the end of every row): so past a limit the file is
    refused, with a message that shows no line's text (it may hold id numbers).
    """

    def __init__(self, batching: Batching, file_label: str, columns: int) -> None:
        self._lines: list[pa_csv.InvalidRow] = []
        self._limits = (batching.malformed_lines, batching.malformed_bytes)
        self._file_label, self._columns = file_label, columns
        # Each counted up by one side alone (the parser, the reader), so no update is lost.
        self._reported_bytes = self._taken_bytes = 0
        self.too_many = False
        #: A batch takes the lines it holds by then; so past the limit, the parser met
        #: that many with no row between them that it could return.
        self.cut_lines = max(1, batching.malformed_lines // 4)

    def skip(self, row: pa_csv.InvalidRow) -> str:
        """Keep the line and skip it; stop the parser past the limit."""
        self._lines.append(row)
        self._reported_bytes += len(row.text)
        if (len(self._lines) > self._limits[0]
                or self._reported_bytes - self._taken_bytes > self._limits[1]):
            self.too_many = True
            return "error"
        return "skip"

    def pending(self) -> tuple[int, int]:
        """Lines reported and not yet taken, and their bytes."""
        return len(self._lines), self._reported_bytes - self._taken_bytes

    def take(self) -> list[pa_csv.InvalidRow]:
        """The lines reported so far and not yet taken."""
        count = len(self._lines)
        taken = self._lines[:count]
        del self._lines[:count]
        self._taken_bytes += sum(len(row.text) for row in taken)
        return taken

    @contextmanager
    def refusing_too_many(self) -> Iterator[None]:
        """Turn the parser's stop at the limit into this file's rejection."""
        try:
            yield
        except pa.ArrowInvalid:
            if not self.too_many:
                raise
            first = self._lines[0].number if self._lines and self._lines[0].number else None
            where = f" (from data row {first - 1})" if first else ""
            lines, size = self._limits
            raise FileRejected(
                f"{self._file_label}: more than {lines:,} lines (or {size >> 20} MiB) one after "
                f"another{where} do not split into the header's {self._columns} columns; "
                "check the separator, the quotes and any comma at the end of the rows; "
                "the file was not ingested") from None


def _csv_batches(reader: pa_csv.CSVStreamingReader, names: list[str],
                 malformed: _MalformedLines, batch_bytes: int) -> Iterator[RawBatch]:
    """The parser's record batches, joined into batches of about ``batch_bytes`` of text.

    Each batch numbers its rows in the file and takes the malformed lines
    reported so far, each with its own number. The parser reports a line
    ahead of the rows it returns, so the numbers of lines taken but not yet
    passed are kept (``later``), to be skipped when numbering later rows.
    """
    before = 0  # data rows (parsed or malformed) before the next batch's rows
    later: list[int] = []  # numbers of malformed lines taken that lie after `before`
    yielded = False

    def batch(records: list[pa.RecordBatch]) -> RawBatch:
        nonlocal before, later
        table = (pa.Table.from_batches(records).rename_columns(names) if records
                 else _no_text(names))
        # Invisible characters inside the text (a BOM where two files were joined,
        # zero-width spaces pasted from the web) would make ids that look right and
        # match nothing.
        table = pa.table({name: pc.replace_substring_regex(table.column(name), INVISIBLE, "")
                          for name in names})
        lines = malformed.take()
        # The parser counts records from the skipped header line (number 1); it knows
        # every number when it parses serially (0 would mean it did not).
        numbers = [row.number - 1 if row.number is not None else 0 for row in lines]
        later = [*later, *(number for number in numbers if number > before)]
        candidates = np.arange(before + 1, before + 1 + table.num_rows + len(later))
        rows = np.setdiff1d(candidates, np.array(later, dtype=np.int64),
                            assume_unique=True)[:table.num_rows]
        before = int(rows[-1]) if len(rows) else before
        later = [number for number in later if number > before]
        return RawBatch(_text_frame(table, rows), [row.text for row in lines],
                        np.array(numbers, dtype=np.int64))

    group: list[pa.RecordBatch] = []
    size = 0
    with malformed.refusing_too_many():
        for record_batch in reader:
            group.append(record_batch)
            size += record_batch.nbytes
            lines, line_bytes = malformed.pending()
            # Cut early on many malformed lines: they cost memory that their bytes understate.
            if size + line_bytes >= batch_bytes or lines >= malformed.cut_lines:
                yielded = True
                yield batch(group)
                group, size = [], 0
    if group or malformed.pending()[0] or not yielded:
        yield batch(group)


def _workbook_township(book: pd.ExcelFile) -> str | None:
    """The township code written in 填写说明 beside the workbook's TOWNSHIP_MARKER."""
    if workbook.GUIDE_SHEET not in book.sheet_names:
        return None
    guide = pd.read_excel(book, sheet_name=workbook.GUIDE_SHEET, header=None, dtype=str)
    if guide.shape[1] < 2:  # noqa: PLR2004 - a label and its value
        return None
    found = guide[guide.iloc[:, 0].astype("string").str.strip() == workbook.TOWNSHIP_MARKER]
    code = None if found.empty else str(found.iloc[0, 1]).strip()
    # Only a township of the bureau's: an emptied or edited cell names none.
    return code if code in regions.township_names() else None


def _read_township_workbook(path: Path, source: Source, file_label: str) -> RawFile | None:
    """A township's returned workbook (its 预警核查 and 定期探访 sheets), or None if not one.

    The rows whose 核实结果 is filled are read; the others are counted as
    unanswered, not read: they are not faults.
    """
    book = pd.ExcelFile(path, engine="openpyxl")
    sheets = [name for name in workbook.ANSWER_SHEETS if name in book.sheet_names]
    if not sheets:
        return None
    township = _workbook_township(book)
    frames, unanswered = [], 0
    for sheet in sheets:
        frame = pd.read_excel(book, sheet_name=sheet, header=0, dtype=str)
        frame.columns = [str(column) for column in frame.columns]
        mapping = map_headers(list(frame.columns), source, f"{file_label} ({sheet})")
        rows = frame[list(mapping)].rename(columns=mapping).astype("string").reset_index(
            drop=True)
        rows[ROW] = np.arange(1, len(rows) + 1)
        rows[SHEET] = sheet
        rows[VILLAGE] = (frame["村(社区)"].astype("string").to_numpy() if "村(社区)" in frame
                         else pd.NA)
        # An answer is a row whose 核实结果 is filled (contract section 3): a name written down
        # the 经办人 column ahead of the visits is not one.
        touched = (rows["verified"].str.strip().fillna("") != "").to_numpy(dtype=bool)
        unanswered += int((~touched).sum())
        frames.append(rows[touched])
    frame = pd.concat(frames, ignore_index=True)
    frame[WORKBOOK_TOWNSHIP] = township
    frame = frame.astype({SHEET: "string", VILLAGE: "string", WORKBOOK_TOWNSHIP: "string"})
    frame = _cut_frame(frame, [spec.name for spec in source.columns if spec.name in frame])
    return RawFile("xlsx", None, iter([RawBatch(frame)]), unanswered=unanswered,
                   township=township)


#: A spreadsheet whose parts unpack to more than this is not read (a 2 MB "zip bomb" unpacked
#: to 0.9 GB and held a night for minutes); the benchmarks' largest unpacks to 4 MB.
XLSX_MAX_UNPACKED_BYTES = 128 << 20


def _check_xlsx_size(path: Path, file_label: str) -> None:
    """Refuse a workbook that unpacks to more than :data:`XLSX_MAX_UNPACKED_BYTES`, unread.

    The sizes are the archive's own (what each part says it unpacks to); a
    part that unpacks to more than it says is cut short there by the reader,
    and the workbook then fails to parse.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise FileRejected(f"{file_label}: cannot read as xlsx: not a workbook ({error})"
                           ) from None
    if unpacked > XLSX_MAX_UNPACKED_BYTES:
        raise FileRejected(
            f"{file_label}: the workbook unpacks to {unpacked:,} bytes, more than "
            f"{XLSX_MAX_UNPACKED_BYTES:,}: not read (send it as CSV, or split it)")


def _read_xlsx(path: Path, source: Source, file_label: str) -> RawFile:
    _check_xlsx_size(path, file_label)
    if source.name == "feedback":
        returned = _read_township_workbook(path, source, file_label)
        if returned is not None:
            return returned
    frame = pd.read_excel(path, sheet_name=0, header=0, dtype=str, engine="openpyxl")
    mapping = map_headers([str(c) for c in frame.columns], source, file_label)
    frame.columns = [str(c) for c in frame.columns]
    frame = frame[list(mapping)].rename(columns=mapping).astype("string").reset_index(drop=True)
    frame[ROW] = np.arange(1, len(frame) + 1)
    return RawFile("xlsx", None, iter([RawBatch(_cut_frame(frame, list(mapping.values())))]))


#: Limits of a Parquet file, checked before its rows are read: its footer (the schema and
#: where each row group lies; the benchmarks' largest is 7 KiB), its rows, and the text its
#: cells unpack to (1.9 million rows of the benchmarks unpack to 0.1 GB; a 2 KB file of one
#: long value repeated unpacked to 10 GB before it was measured so).
PARQUET_MAX_FOOTER_BYTES = 16 << 20
PARQUET_MAX_ROWS = 100_000_000
PARQUET_MAX_TEXT_BYTES = 4 << 30
#: Text of a Parquet file held in memory at once: a batch is cut into pieces of about this.
PARQUET_PIECE_TEXT_BYTES = 64 << 20


def _check_parquet_footer(path: Path, file_label: str) -> None:
    """Refuse a file that does not end as a Parquet file does, or whose footer is too large."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 8))
        tail = handle.read(8)
    if size < 12 or tail[4:] != b"PAR1":  # noqa: PLR2004 - the magic, twice, and a length
        raise FileRejected(f"{file_label}: cannot read as parquet: it does not end as a Parquet "
                           "file does (cut short, or another format renamed)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > PARQUET_MAX_FOOTER_BYTES:
        raise FileRejected(f"{file_label}: its Parquet footer is {footer:,} bytes, more than "
                           f"{PARQUET_MAX_FOOTER_BYTES:,} (too many columns or row groups): "
                           "not read")


def _is_text_or_bytes(column_type: pa.DataType) -> bool:
    """Whether a Parquet column holds text or bytes (read as a dictionary, measured so)."""
    return any(test(column_type) for test in (pa.types.is_string, pa.types.is_large_string,
                                              pa.types.is_binary, pa.types.is_large_binary))


def _as_text(column: pa.Array) -> pa.Array:
    """A Parquet column as text, as a CSV would carry it; a dictionary's values left encoded."""
    if pa.types.is_dictionary(column.type):
        # Bytes as text (a byte that is not UTF-8 rejects the file), each value once.
        return pa.DictionaryArray.from_arrays(column.indices, column.dictionary.cast(pa.string()))
    if pa.types.is_timestamp(column.type) and column.type.tz:
        # A zoned instant as the bureau's wall-clock time (midnight in Chongqing
        # stored as UTC is still that date).
        column = pc.local_timestamp(column.cast(pa.timestamp(
            column.type.unit, str(BUREAU_TIME_ZONE))))
    # A timestamp as text with its time of day, as a CSV would carry it: a date
    # at midnight is read as that date, one with a time is a bad date in either.
    return column.cast(pa.string())


def _cell_bytes(column: pa.Array) -> np.ndarray:
    """The bytes of each row's cell, as it will unpack (a dictionary's value repeated)."""
    if pa.types.is_dictionary(column.type):
        lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
    else:
        lengths = pc.binary_length(column)
    return lengths.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def _pieces(row_bytes: np.ndarray, piece_bytes: int) -> list[tuple[int, int]]:
    """Runs of rows of about ``piece_bytes`` of text each (a run holds one row at least).

    Examples
    --------
    >>> _pieces(np.array([5, 5, 5, 5, 50, 1]), 10)
    [(0, 2), (2, 4), (4, 5), (5, 6)]
    """
    if not len(row_bytes):
        return []
    starts = np.cumsum(row_bytes) - row_bytes
    group = starts // piece_bytes
    bounds = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(row_bytes)]
    return list(itertools.pairwise(bounds))


def _joined(pieces: list[tuple[pa.Table, np.ndarray, np.ndarray | None]]) -> RawBatch:
    """Unpacked pieces of a Parquet file as one batch: text, row numbers, columns cut."""
    marks = [overlong for _, _, overlong in pieces]
    overlong = None if all(mark is None for mark in marks) else np.concatenate([
        np.full(len(rows), None, dtype=object) if mark is None else mark
        for (_, rows, _), mark in zip(pieces, marks, strict=True)])
    # Cut already, as each row group came.
    return RawBatch(_frame(pa.concat_tables([table for table, _, _ in pieces]), overlong,
                           np.concatenate([rows for _, rows, _ in pieces])))


def _open_parquet(path: Path, source: Source, file_label: str, batch_rows: int) -> RawFile:
    _check_parquet_footer(path, file_label)
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows > PARQUET_MAX_ROWS:
        raise FileRejected(f"{file_label}: {parquet.metadata.num_rows:,} rows, more than "
                           f"{PARQUET_MAX_ROWS:,}: not read (split it)")
    mapping = map_headers(parquet.schema_arrow.names, source, file_label)
    # Text columns stay dictionaries as stored, so that a value repeated is measured (and an
    # overlong one cut) once, before it is repeated into every row.
    texts = [name for name in mapping if _is_text_or_bytes(parquet.schema_arrow.field(name).type)]
    parquet = pq.ParquetFile(path, metadata=parquet.metadata, read_dictionary=texts)

    def batches() -> Iterator[RawBatch]:
        before = text = 0
        pending: list[tuple[pa.Table, np.ndarray, np.ndarray | None]] = []
        pending_rows = pending_bytes = 0
        # Batches come a row group at a time; they are measured and cut as they come (their
        # dictionaries differ), unpacked in pieces of bounded text and joined again.
        for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=list(mapping)):
            table, overlong = _cut_table(pa.table({name: _as_text(record_batch.column(original))
                                                   for original, name in mapping.items()}))
            row_bytes = sum((_cell_bytes(table.column(name).combine_chunks())
                             for name in table.column_names),
                            np.zeros(table.num_rows, dtype=np.int64))
            text += int(row_bytes.sum())
            if text > PARQUET_MAX_TEXT_BYTES:
                raise FileRejected(
                    f"{file_label}: its cells unpack to more than {PARQUET_MAX_TEXT_BYTES:,} "
                    f"bytes of text by data row {before + table.num_rows:,}: not ingested "
                    "(a value repeated through the file? split it, or send it as CSV)")
            rows = np.arange(before + 1, before + 1 + table.num_rows)
            before += table.num_rows
            for start, stop in _pieces(row_bytes, PARQUET_PIECE_TEXT_BYTES):
                piece = table.slice(start, stop - start)
                pending.append((pa.table({name: piece.column(name).cast(pa.string())
                                          for name in piece.column_names}), rows[start:stop],
                                None if overlong is None else overlong[start:stop]))
                pending_rows += stop - start
                pending_bytes += int(row_bytes[start:stop].sum())
                if pending_rows >= batch_rows or pending_bytes >= PARQUET_PIECE_TEXT_BYTES:
                    yield _joined(pending)
                    pending, pending_rows, pending_bytes = [], 0, 0
        if pending:
            yield _joined(pending)
        if not before:
            yield RawBatch(_text_frame(_no_text(mapping.values()), np.empty(0, dtype=np.int64)))

    return RawFile("parquet", None, batches())
