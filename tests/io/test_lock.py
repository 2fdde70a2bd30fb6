"""One run at a time per home: a second is refused or waits; a killed run's lock does not block."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from lock_holder import hold
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.lock import HomeBusy, home_lock, lock_path


def test_a_second_run_on_a_busy_home_is_refused_with_who_holds_it(home):
    holder = hold(home, 30)
    try:
        busy = rf"in use by monitor run 2026-06-30 \(pid {holder.pid} on .*try again later"
        with pytest.raises(HomeBusy, match=busy), home_lock(home, "monitor run 2026-07-01"):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_given_time_waits_for_the_first(home):
    holder = hold(home, 1.5)
    started = time.monotonic()
    with home_lock(home, "monitor run 2026-07-01", wait_seconds=30):
        waited = time.monotonic() - started
        holder.wait()
        assert json.loads(lock_path(home).read_text())["pid"] == os.getpid()
    assert 0.5 < waited < 30


def test_a_run_killed_while_holding_the_lock_does_not_block_the_next(home):
    holder = hold(home, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # The file still names the dead run; it is not a lock any more.
    assert json.loads(lock_path(home).read_text())["pid"] == holder.pid
    with home_lock(home, "monitor run 2026-07-01"):
        assert json.loads(lock_path(home).read_text())["command"] == "monitor run 2026-07-01"


def test_a_stale_lock_file_does_not_block(home):
    lock_path(home).parent.mkdir(parents=True)
    lock_path(home).write_text(json.dumps({"pid": 999_999_999, "host": "elsewhere",
                                           "command": "monitor run 2020-01-01"}))
    with home_lock(home, "monitor run 2026-07-01"):
        pass


def test_the_lock_is_reentrant_within_a_process(home):
    with home_lock(home, "monitor run"), home_lock(home, "the flow of that run"):
        holder = json.loads(lock_path(home).read_text())
    assert holder["command"] == "monitor run"
    # Released at the end: another process can take it now.
    hold(home, 0).wait()


def test_the_command_line_says_the_home_is_busy_and_starts_nothing(home):
    holder = hold(home, 30)
    try:
        result = CliRunner().invoke(app, ["run", "--home", str(home), "--date", "2026-06-30"])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    assert "run not started:" in result.output and "in use by monitor run" in result.output
    assert not (home / "out").exists() and not (home / "lake").exists()
