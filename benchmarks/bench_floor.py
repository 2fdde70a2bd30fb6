"""The physical floor of a night: read every delivered file once, write its rows once as Parquet.

    python benchmarks/bench_floor.py --home /tmp/bench-run-1m --date 2026-06-30 --night 187

Reads the landing files of one delivery date (or, with ``--all``, every
delivery up to it) with pyarrow alone: CSV with ``pyarrow.csv`` (GB18030
files transcoded by it), Parquet with ``pyarrow.parquet``, and a
spreadsheet with openpyxl in read-only mode (pyarrow reads none), and
writes each file's rows once as Parquet to a temporary folder. No
validation, no lake, no rules: what no night can beat on this machine.
Prints the seconds, rows and bytes per format, and, given the night's wall
time (``--night``, e.g. from ``bench_run.py``), the night as a multiple of
the floor. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


def _encoding(path: Path) -> str:
    """UTF-8 (with or without its mark) unless the bytes say otherwise: then GB18030."""
    head = path.read_bytes()[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # a character cut at the end is fine
            return "gb18030"
    return "utf8"


def _read(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix in (".csv", ".txt"):
        encoding = _encoding(path)
        with path.open(encoding="utf-8-sig" if encoding == "utf8" else encoding) as text:
            names = next(csv.reader([text.readline()]), [])
        # Every column as text, as the ingest reads it (codes keep their zeros).
        return pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(
            encoding=encoding, block_size=1 << 24), convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names}))
    if suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        rows = list(book.worksheets[0].iter_rows(values_only=True))
        book.close()
        header, body = [str(name) for name in rows[0]], rows[1:]
        return pa.table({name: pa.array([None if row[number] is None else str(row[number])
                                         for row in body], pa.string())
                         for number, name in enumerate(header)})
    raise ValueError(f"{path}: no reader for {suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--all", action="store_true",
                        help="every delivery up to the date, not only the date's")
    parser.add_argument("--night", type=float, default=None,
                        help="the night's wall seconds, to print as a multiple of the floor")
    args = parser.parse_args()

    landing = args.home / "landing"
    files = sorted(path for path in landing.glob("*/*/*") if path.is_file() and (
        path.parent.name == args.date.isoformat() if not args.all else
        path.parent.name <= args.date.isoformat()))
    seconds, rows, sizes, counts = (defaultdict(float), defaultdict(int), defaultdict(int),
                                    defaultdict(int))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for number, path in enumerate(files):
            mark = time.perf_counter()
            table = _read(path)
            pq.write_table(table, Path(folder) / f"{number}.parquet")
            kind = path.suffix.lower().lstrip(".")
            seconds[kind] += time.perf_counter() - mark
            rows[kind] += table.num_rows
            sizes[kind] += path.stat().st_size
            counts[kind] += 1
        total = time.perf_counter() - started
    what = "every delivery up to" if args.all else "the deliveries of"
    print(f"floor: {what} {args.date} in {args.home}: {len(files)} files, "
          f"{sum(rows.values()):,} rows, {sum(sizes.values()) / 2**20:,.0f} MiB, "
          f"read and written once as Parquet in {total:.1f} s")
    for kind in sorted(seconds):
        print(f"  {kind}: {counts[kind]} files, {rows[kind]:,} rows, "
              f"{sizes[kind] / 2**20:,.0f} MiB, {seconds[kind]:.1f} s")
    if args.night is not None:
        print(f"the night ({args.night:.1f} s) is {args.night / total:.1f} x the floor")


if __name__ == "__main__":
    main()
