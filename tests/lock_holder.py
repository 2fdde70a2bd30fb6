"""Another process that holds a home's lock, for the tests of what waits on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLDER = """
import sys, time
from pathlib import Path
from monitor.io.lock import home_lock
with home_lock(Path(sys.argv[1]), "monitor run 2026-06-30"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(home: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the home's lock for ``seconds`` (returns once it holds it)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(home), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process
