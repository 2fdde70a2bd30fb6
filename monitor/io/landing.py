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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.ingest import ROW
from monitor.sources import SOURCES, Source

SUPPORTED_SUFFIXES = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
_HEADER_PROBE_BYTES = 1 << 16
_HASH_CHUNK_BYTES = 1 << 22
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


@dataclass
class RawFile:
    """The text rows of a file, columns renamed to contract names."""

    frame: pd.DataFrame
    file_format: str
    encoding: str | None
    malformed_lines: list[str] = field(default_factory=list)
    #: Data-row number (1 = first row under the header) of each malformed line.
    malformed_rows: list[int] = field(default_factory=list)

    def row_numbers(self) -> tuple[np.ndarray, np.ndarray]:
        """Data-row numbers of the parsed rows and of the malformed lines, as in the file."""
        total = self.rows_read
        malformed = np.asarray(self.malformed_rows, dtype=np.int64)
        if len(malformed) != len(self.malformed_lines):
            # Positions unknown: number malformed lines after the parsed rows.
            malformed = np.arange(len(self.frame) + 1, total + 1)
        parsed = np.setdiff1d(np.arange(1, total + 1), malformed, assume_unique=True)
        return parsed, malformed

    @property
    def rows_read(self) -> int:
        """Data rows in the file, the malformed ones included."""
        return len(self.frame) + len(self.malformed_lines)


def discover(home: Path, up_to: dt.date) -> tuple[list[LandingFile], list[str]]:
    """Every delivered file dated on or before ``up_to``, and notices about what was skipped.

    Deliveries dated after ``up_to`` are left for a later run; folders that are
    not contract sources or not dates, and files of unsupported types, come
    back as notices naming the path.
    """
    landing = home / "landing"
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
            try:
                delivery_date = dt.date.fromisoformat(delivery_dir.name)
            except ValueError:
                notices.append(f"{where}: folder name is not a delivery date YYYY-MM-DD, ignored")
                continue
            if not delivery_dir.is_dir():
                notices.append(f"{where}: not a folder, ignored")
                continue
            if delivery_date > up_to:
                continue
            for path in sorted(delivery_dir.rglob("*")):
                if not path.is_file() or path.name.startswith((".", "~$")):
                    continue
                relative = path.relative_to(home).as_posix()
                files.append(LandingFile(source_dir.name, delivery_date, path, relative))
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


def read_delivered_file(path: Path, source: Source, file_label: str) -> RawFile:
    """Read a delivered file into contract-named text columns plus each row's number.

    Raises
    ------
    FileRejected
        When the file is empty, of an unsupported type, undecodable, or lacks
        a required column.
    """
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FileRejected(f"{file_label}: unsupported file type '{path.suffix}' "
                           "(send .csv, .xlsx or .parquet)")
    if path.stat().st_size == 0:
        raise FileRejected(f"{file_label}: the file is empty")
    try:
        if kind == "csv":
            raw = _read_csv(path, source, file_label)
        elif kind == "xlsx":
            raw = _read_xlsx(path, source, file_label)
        else:
            raw = _read_parquet(path, source, file_label)
    except FileRejected:
        raise
    except Exception as error:  # any reader failure is this file's problem, not the run's
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise FileRejected(f"{file_label}: cannot read as {kind}: "
                           f"{type(error).__name__} {first_line}".strip()) from error
    raw.frame[ROW] = raw.row_numbers()[0]
    return raw


def _detect_encoding(head: bytes, file_label: str) -> tuple[str, str]:
    """The encoding of a CSV's first bytes and its decoded text."""
    for encoding in ("utf-8-sig", "gb18030"):
        # Incremental, so that a character cut at the end of the probe is no error.
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            return encoding, decoder.decode(head, final=False)
        except UnicodeDecodeError:
            continue
    raise FileRejected(f"{file_label}: text is neither UTF-8 nor GB18030")


def _read_csv(path: Path, source: Source, file_label: str) -> RawFile:
    with path.open("rb") as handle:
        head = handle.read(_HEADER_PROBE_BYTES)
    encoding, text = _detect_encoding(head, file_label)
    header_line = next(csv.reader(io.StringIO(text)), [])
    if not any(cell.strip() for cell in header_line):
        raise FileRejected(f"{file_label}: no header row")
    mapping = map_headers(header_line, source, file_label)
    # Unique placeholder names so that blank or repeated headers do not upset the parser.
    names = [f"c{i}" for i in range(len(header_line))]
    wanted = {f"c{i}": mapping[h] for i, h in enumerate(header_line) if h in mapping}
    malformed: list[pa_csv.InvalidRow] = []

    def skip_malformed(row: pa_csv.InvalidRow) -> str:
        malformed.append(row)
        return "skip"

    def read(arrow_encoding: str, use_threads: bool = True) -> pa.Table:
        malformed.clear()
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(
                column_names=names, skip_rows=1, encoding=arrow_encoding,
                use_threads=use_threads,
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=skip_malformed
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=list(wanted),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    arrow_encoding = "utf8" if encoding == "utf-8-sig" else "gb18030"
    try:
        table = read(arrow_encoding)
    except pa.ArrowInvalid as error:
        if "invalid UTF8" not in str(error):
            raise
        # Only the header was plain ASCII: the body is in the national encoding.
        arrow_encoding = "gb18030"
        table = read(arrow_encoding)
    if malformed:
        # Only a single-threaded parse says where a bad line is; rare, so read again.
        table = read(arrow_encoding, use_threads=False)
    renamed = table.rename_columns([wanted[name] for name in table.column_names])
    # Invisible characters inside the text (a BOM where two files were joined, zero-width
    # spaces pasted from the web) would make ids that look right and match nothing.
    renamed = pa.table({name: pc.replace_substring_regex(renamed.column(name), INVISIBLE, "")
                        for name in renamed.column_names})
    frame = renamed.to_pandas().astype("string")
    # The parser counts records from the skipped header line (number 1).
    rows = [row.number - 1 for row in malformed if row.number is not None]
    return RawFile(frame, "csv", "UTF-8" if arrow_encoding == "utf8" else "GB18030",
                   [row.text for row in malformed], rows)


def _read_xlsx(path: Path, source: Source, file_label: str) -> RawFile:
    frame = pd.read_excel(path, sheet_name=0, header=0, dtype=str, engine="openpyxl")
    mapping = map_headers([str(c) for c in frame.columns], source, file_label)
    frame.columns = [str(c) for c in frame.columns]
    frame = frame[list(mapping)].rename(columns=mapping).astype("string")
    return RawFile(frame.reset_index(drop=True), "xlsx", None)


def _read_parquet(path: Path, source: Source, file_label: str) -> RawFile:
    table = pq.read_table(path)
    mapping = map_headers(table.column_names, source, file_label)
    columns = {}
    for original, name in mapping.items():
        column = table.column(original)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.date32(), safe=False)
        columns[name] = column.cast(pa.string())
    frame = pa.table(columns).to_pandas().astype("string")
    return RawFile(frame, "parquet", None)
