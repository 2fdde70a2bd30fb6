"""Time and peak memory to generate a sample population and to ingest it.

Each phase runs in a fresh Python process so that its peak resident memory is
its own. Prints one line per phase; nothing is asserted.

    python benchmarks/bench_foundation.py --households 100000 1000000

Phases, for each size:
- generate:      `monitor sample` (all 12 sources, 36 months of history);
- ingest-night:  one night's delivery (the run date's snapshot of every
                 snapshot source and the current month of every events source),
                 after the history up to the day before has been ingested;
- ingest-all:    the whole landing folder from an empty lake.
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

RUN_DATE = dt.date(2026, 6, 30)


def _phase(name: str, home: Path, households: int, seed: int, date: dt.date) -> dict:
    """Run one phase in this process and report its figures."""
    started = time.perf_counter()
    detail = {}
    if name == "generate":
        from monitor.io.sample_writer import write_sample

        summary = write_sample(home, households, seed, date)
        detail["rows"] = sum(figures["rows"] for figures in summary.values())
    else:
        from monitor.io.ingest import ingest_landing

        report = ingest_landing(home, date)
        totals = report.by_source()
        detail["files"] = int(totals["files"].sum()) if len(totals) else 0
        detail["rows_read"] = int(totals["rows_read"].sum()) if len(totals) else 0
        detail["rows_quarantined"] = int(totals["rows_quarantined"].sum()) if len(totals) else 0
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"phase": name, "seconds": round(seconds, 1), "peak_mib": round(peak_mib), **detail}


def _in_child(name: str, home: Path, households: int, seed: int, date: dt.date) -> dict:
    command = [sys.executable, __file__, "--child", name, "--home", str(home),
               "--households", str(households), "--seed", str(seed), "--date", date.isoformat()]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=RUN_DATE)
    parser.add_argument("--home", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_phase(args.child, args.home, args.households[0], args.seed, args.date)))
        return

    for households in args.households:
        work = Path(args.home or tempfile.mkdtemp(prefix="bench-")) / f"h{households}"
        shutil.rmtree(work, ignore_errors=True)
        night = work / "night"
        results = [_in_child("generate", night, households, args.seed, args.date)]
        landing_bytes = sum(p.stat().st_size for p in (night / "landing").rglob("*") if p.is_file())
        # The history up to the day before, then the run date's deliveries on their own.
        _in_child("ingest-history", night, households, args.seed, args.date - dt.timedelta(1))
        results.append(_in_child("ingest-night", night, households, args.seed, args.date))
        everything = work / "all"
        everything.mkdir(parents=True)
        shutil.copytree(night / "landing", everything / "landing")
        results.append(_in_child("ingest-all", everything, households, args.seed, args.date))
        print(f"households={households:,} landing={landing_bytes / 2**20:,.0f} MiB")
        for result in results:
            extra = {k: v for k, v in result.items() if k not in ("phase", "seconds", "peak_mib")}
            print(f"  {result['phase']:<13} {result['seconds']:>8.1f} s  "
                  f"{result['peak_mib']:>7,} MiB peak  {extra}")
        if not args.home:
            shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
