"""What a run costs before it has any work: `monitor run` on an empty home, against Prefect's floor.

    python benchmarks/bench_startup.py --repeat 3

Times, as separate processes, ``monitor run`` on an empty home (no
deliveries: the flow starts, finds nothing, writes an empty night), the
next night on the same home, and a
flow that does nothing (``@flow def f(): return 1``) with the same Prefect
settings, which is the floor any Prefect flow pays here: the interpreter,
Prefect's import and its temporary server. Prints each time, the medians and
the difference. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL_FLOW = """
import os
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
from prefect import flow

@flow
def nothing():
    return 1

nothing()
"""


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True,
                   env={**os.environ, "DO_NOT_TRACK": "1"})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    monitor = str(Path(sys.executable).with_name("monitor"))
    empty, again, floor = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            empty.append(_seconds([monitor, "run", "--home", home, "--date", "2026-06-30"]))
            # The next night on the same home: what a scheduled night with nothing costs (the
            # report's font subset, cut on the first night, is kept).
            again.append(_seconds([monitor, "run", "--home", home, "--date", "2026-07-01"]))
        floor.append(_seconds([sys.executable, "-c", TRIVIAL_FLOW]))
    for label, times in (("monitor run, new empty home:", empty),
                         ("the next night on it:       ", again),
                         ("a flow doing nothing:       ", floor)):
        print(f"{label} " + ", ".join(f"{value:.1f}" for value in times)
              + f" s (median {statistics.median(times):.1f})")
    for label, times in (("new home", empty), ("next night", again)):
        print(f"{label} above the floor: "
              f"{statistics.median(times) - statistics.median(floor):+.1f} s")


if __name__ == "__main__":
    main()
