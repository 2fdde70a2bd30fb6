"""Time and peak memory of `monitor train` on a home with history.

    python benchmarks/bench_train.py --home /tmp/bench/run-1m --date 2026-06-30

The home must hold the history (``benchmarks/bench_run.py`` builds one:
36 months of deliveries for ``--households`` households). Runs ``monitor
train`` as a separate process and prints the wall time, its peak resident
memory and the stage timings it reports. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    arguments = parser.parse_args()
    monitor = Path(sys.executable).with_name("monitor")
    started = time.perf_counter()
    completed = subprocess.run([str(monitor), "train", "--home", str(arguments.home), "--date",
                                arguments.date.isoformat()], capture_output=True, text=True,
                               check=False)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    print(completed.stdout.strip())
    if completed.returncode:
        print(completed.stderr.strip())
        raise SystemExit(completed.returncode)
    print(f"wall {wall:.1f} s, peak memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
