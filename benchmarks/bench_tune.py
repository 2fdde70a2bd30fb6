"""Time and peak memory of `monitor tune` on a home with history.

    python benchmarks/bench_tune.py --home /tmp/bench/run-1m --date 2026-06-30 [--months 3]

The home must hold the history (``benchmarks/bench_run.py`` builds one) and
may hold a model (``benchmarks/bench_train.py``). Writes a candidate that
widens the 低保边缘 band (``edge_ratio`` 1.5 → 1.7) and lowers
``model_threshold`` by 2, runs ``monitor tune`` as a separate process for the
date alone and then with ``--from`` ``--months`` months earlier, and prints
the wall time, the peak resident memory and what the command reports.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

CANDIDATE = """\
edge_ratio:
  - {from: 2021-01-01, value: 1.7}
model_threshold:
  - {from: 2021-01-01, value: 8}
"""


def tune(home: Path, day: dt.date, candidate: Path, first: dt.date | None) -> None:
    monitor = Path(sys.executable).with_name("monitor")
    command = [str(monitor), "tune", "--home", str(home), "--date", day.isoformat(),
               "--parameters", str(candidate)]
    if first is not None:
        command += ["--from", first.isoformat()]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024 ** 2
    print(" ".join(completed.stdout.split()))
    if completed.returncode:
        print(completed.stderr.strip())
        raise SystemExit(completed.returncode)
    print(f"{'one date' if first is None else f'from {first}'}: wall {wall:.1f} s, "
          f"peak memory (largest child so far) {peak:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--months", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / "bench-candidate.yaml"
        candidate.write_text(CANDIDATE, encoding="utf-8")
        tune(arguments.home, arguments.date, candidate, None)
        if arguments.months:
            first = (pd.Timestamp(arguments.date) - pd.DateOffset(months=arguments.months)).date()
            tune(arguments.home, arguments.date, candidate, first)


if __name__ == "__main__":
    main()
