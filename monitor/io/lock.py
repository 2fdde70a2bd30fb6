"""One run at a time per home: an advisory lock on ``HOME/state/run.lock``.

The lock is an ``flock`` held on the open file, so the operating system
releases it when the holding process ends, however it ends (a SIGKILL
included): a lock file left behind by a killed run is not a lock, and the
next night's run takes it. The file also says who holds it (pid, host,
command, start time), for the message a second run gives.

``flock`` works on local file systems; keep the home on one (or on a network
file system whose locks are known to work).

Within one process the lock is re-entrant: the command line takes it before
starting its flow (to say clearly that the home is busy), and the flow takes
it again when run on its own (by a deployment).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.io.home import Home

#: Seconds between two tries while waiting for the lock.
POLL_SECONDS = 1.0
#: The mode a new lock file asks for, before the umask takes its bits away.
READABLE_BY_ALL = 0o666

_held: dict[Path, int] = {}


class HomeBusy(RuntimeError):
    """Another process is running on the home."""


def lock_path(home: Path) -> Path:
    """The lock file of a home."""
    return Home.of(home).run_lock


def _holder(path: Path) -> str:
    """Who the lock file says holds the lock, in words."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return (f"{holder.get('command', 'a run')} (pid {holder.get('pid')} on "
                f"{holder.get('host')}, since {holder.get('started')})")
    except (OSError, ValueError):
        return "another process"


@contextmanager
def home_lock(home: Path, command: str, wait_seconds: float = 0) -> Iterator[Path]:
    """Hold the home's lock for the block; wait up to ``wait_seconds`` for it.

    Raises
    ------
    HomeBusy
        When another process still holds it after ``wait_seconds``; the
        message names the home and the holder.
    """
    path = lock_path(home).resolve()
    if path in _held:  # this process holds it already (the command line, then its flow)
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # The umask decides who may read it, as for every file (monitor.io.permissions).
    handle = os.open(path, os.O_RDWR | os.O_CREAT, READABLE_BY_ALL)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_seconds:g} s" if wait_seconds else ""
                    raise HomeBusy(f"{Path(home)} is in use by {_holder(path)}{waited}; "
                                   "try again later, or wait with --wait SECONDS") from None
                time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        # Say who holds it (the previous holder's words, if any, are replaced).
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "command": command,
                             "started": dt.datetime.now().astimezone().isoformat(
                                 timespec="seconds")})
        os.ftruncate(handle, 0)
        os.pwrite(handle, record.encode(), 0)
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
