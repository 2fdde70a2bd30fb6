"""Time and peak memory of `monitor run` for a night: one new day ingested, everyone evaluated.

    python benchmarks/bench_run.py --households 1000000 --home /tmp/bench-run-1m

Builds the home once (a synthetic population whose deliveries run up to
``--date``, all but that date's deliveries ingested beforehand; kept for the
next time), then runs ``monitor run --home HOME --date DATE`` as a separate
process, which ingests that date's deliveries and evaluates every household
(the manifest saved before the run date is restored first, so that every
benchmark run ingests the day anew).
Prints the wall time, the run's peak resident memory (the Prefect server it
starts is a separate, small process) and the stage timings of the run
manifest. Nothing is asserted. A second ``--repeat`` run shows the cost of a
night with nothing new to ingest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

RUN_DATE = dt.date(2026, 6, 30)
#: The ingest manifest before the run date's deliveries: restoring it makes the day new again.
BEFORE_RUN = "bench-manifest-before-run.parquet"


def prepare(home: Path, households: int, seed: int, run_date: dt.date) -> None:
    """Write the sample and ingest every delivery before the run date (once)."""
    from monitor.io.ingest import ingest_landing
    from monitor.io.lake import manifest_path
    from monitor.io.sample_writer import write_sample

    ready = home / "bench-ready.json"
    if ready.exists():
        return
    started = time.perf_counter()
    write_sample(home, households, seed, run_date)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    ingest_landing(home, run_date - dt.timedelta(days=1))
    shutil.copy2(manifest_path(home), home / BEFORE_RUN)
    ready.write_text(json.dumps({"households": households, "seed": seed,
                                 "generate_seconds": round(generated, 1),
                                 "ingest_history_seconds": round(time.perf_counter() - started,
                                                                 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=RUN_DATE)
    parser.add_argument("--repeat", action="store_true", help="run the same date again")
    args = parser.parse_args()

    prepare(args.home, args.households, args.seed, args.date)
    print(f"home {args.home}: {(args.home / 'bench-ready.json').read_text()}")
    from monitor.io.lake import manifest_path

    monitor = Path(sys.executable).with_name("monitor")
    for attempt in range(2 if args.repeat else 1):
        if attempt == 0:
            # The run date's deliveries are new again: the run ingests them.
            shutil.copy2(args.home / BEFORE_RUN, manifest_path(args.home))
        started = time.perf_counter()
        completed = subprocess.run([str(monitor), "run", "--home", str(args.home), "--date",
                                    args.date.isoformat()], capture_output=True, text=True,
                                   check=False)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if completed.returncode:
            print(completed.stderr)
            sys.exit(completed.returncode)
        manifest = json.loads((args.home / "out" / args.date.isoformat() / "run_manifest.json")
                              .read_text(encoding="utf-8"))
        label = "first run (ingests the day)" if attempt == 0 else "same date again"
        print(f"{label}: {seconds:.1f} s wall, peak {peak:,.0f} MiB; "
              f"households {manifest['households_evaluated']:,}, "
              f"persons {manifest['persons_evaluated']:,}, counties {manifest['counties']}, "
              f"households listed {manifest['households']['listed']:,}")
        print("  stages: " + ", ".join(f"{stage} {value:.1f} s" for stage, value in
                                       manifest["stage_seconds"].items()))


if __name__ == "__main__":
    main()
