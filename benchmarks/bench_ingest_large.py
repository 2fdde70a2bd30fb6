"""Peak memory and time to ingest one very large delivered file, read in batches.

Each ingest runs in a fresh Python process, so that its peak resident memory
is its own; the process's memory just before the ingest (Python, pandas,
pyarrow and this project imported) is printed too. With memory bounded by the
batch, the peak above that baseline stays about the same as the file grows.
Prints one line per file; nothing is asserted.

    python benchmarks/bench_ingest_large.py --rows 1000000 5000000 10000000
    python benchmarks/bench_ingest_large.py --rows 5000000 --csv-mib 64

The file is an income delivery (household id, assessment date, annual income,
employment cost) in CSV or Parquet, one row in 100,000 with a negative amount
and one repeated household id, so that quarantine and the duplicate check
work through it. No registry is delivered, so every row lands in the
``unmatched`` partition (placing rows in counties is not what is measured).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DELIVERY = dt.date(2026, 6, 30)


def write_income_file(path: Path, rows: int, file_format: str) -> None:
    """An income delivery of ``rows`` rows, written in slices so that writing it stays small."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(name, pa.string()) for name in
                        ("household_id", "assess_date", "annual_income", "employment_cost")])
    writer = (pa_csv.CSVWriter(path, schema) if file_format == "csv"
              else pq.ParquetWriter(path, schema))
    step = 1_000_000
    for start in range(0, rows, step):
        numbers = np.arange(start, min(start + step, rows))
        income = (numbers % 50_000 + 5_000).astype(str).astype(object)
        income[numbers % 100_000 == 7] = "-5"
        ids = np.char.zfill(numbers.astype(str), 12).astype(object)
        ids[numbers == rows - 1] = ids[0]  # the last row repeats the first household
        writer.write_table(pa.table({
            "household_id": pa.array(ids, pa.string()),
            "assess_date": pa.array(np.full(len(numbers), "2026-01-01", dtype=object)),
            "annual_income": pa.array(income, pa.string()),
            "employment_cost": pa.array(np.full(len(numbers), "0", dtype=object)),
        }, schema=schema))
    writer.close()


def _resident_mib() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ingest(home: Path, csv_mib: int, parquet_rows: int) -> dict:
    """Ingest the home's landing folder in this process and report its figures."""
    from monitor.io.ingest import ingest_landing
    from monitor.io.landing import Batching

    baseline = _resident_mib()
    started = time.perf_counter()
    report = ingest_landing(home, DELIVERY,
                            batching=Batching(csv_bytes=csv_mib << 20, parquet_rows=parquet_rows))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcome = report.files[0]
    return {"status": outcome.status, "rows_read": outcome.rows_read,
            "rows_accepted": outcome.rows_accepted, "rows_quarantined": outcome.rows_quarantined,
            "seconds": round(seconds, 1), "baseline_mib": round(baseline),
            "peak_mib": round(peak), "above_baseline_mib": round(peak - baseline)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--csv-mib", type=int, default=16, help="CSV text per batch")
    parser.add_argument("--parquet-rows", type=int, default=500_000, help="Parquet rows per batch")
    parser.add_argument("--home", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_ingest(args.child, args.csv_mib, args.parquet_rows)))
        return

    work = Path(args.home or tempfile.mkdtemp(prefix="bench-large-"))
    for rows in args.rows:
        home = work / f"rows{rows}"
        shutil.rmtree(home, ignore_errors=True)
        path = home / "landing" / "income" / DELIVERY.isoformat() / f"income.{args.format}"
        write_income_file(path, rows, args.format)
        command = [sys.executable, __file__, "--child", str(home), "--csv-mib", str(args.csv_mib),
                   "--parquet-rows", str(args.parquet_rows)]
        figures = json.loads(subprocess.run(command, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
        size_mib = path.stat().st_size / 2**20
        print(f"{rows:>11,} rows  {args.format} {size_mib:7.0f} MiB  "
              f"{figures['seconds']:6.1f} s  peak {figures['peak_mib']:6,} MiB  "
              f"(+{figures['above_baseline_mib']:,} MiB over {figures['baseline_mib']:,} MiB "
              f"before ingest)  read {figures['rows_read']:,} = accepted "
              f"{figures['rows_accepted']:,} + quarantined {figures['rows_quarantined']:,}  "
              f"[{figures['status']}]", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    if not args.home:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
