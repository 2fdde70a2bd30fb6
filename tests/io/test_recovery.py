"""A run killed (SIGKILL) at any stage: deliveries, lake and earlier outputs intact; the next
run of the date gives exactly what an uninterrupted run gives.

Each kill happens in a separate process (a real SIGKILL, no clean-up of any
kind), which reports to the tests' Prefect server; the rerun is in-process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.sample_writer import write_sample

FIRST, DAY = dt.date(2026, 6, 29), dt.date(2026, 6, 30)

#: Stage -> (module, function to replace, the call of it that kills the process).
KILLS = {
    "ingest": ("monitor.io.ingest", "_move_into_place", 3),  # two files in place, not all
    "counties": ("flows.nightly", "evaluate_county", 1),
    "lifecycle": ("flows.nightly", "track", 1),
    "triage": ("flows.nightly", "township_lists", 1),
    "outputs": ("monitor.io.outputs", "warnings_table", 1),  # the referral files staged
    "state": ("flows.nightly", "commit_state", 1),  # outputs in place, next state not
}
KILLER = """
import importlib, os, signal, sys
module, name, at, home, day = sys.argv[1:6]
target = importlib.import_module(module)
real, calls = getattr(target, name), []

def killing(*args, **kwargs):
    calls.append(1)
    if len(calls) >= int(at):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

setattr(target, name, killing)
from monitor.cli import app

app(["run", "--home", home, "--date", day])
"""


def run(home: Path, day: dt.date) -> None:
    result = CliRunner().invoke(app, ["run", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output


def tree(folder: Path) -> dict[str, str]:
    """Every file under a folder with its sha256."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def outputs(home: Path, day: dt.date) -> dict[str, object]:
    """A day's outputs: files by hash, the manifest without its timings and ingest report."""
    folder = home / "out" / day.isoformat()
    files = tree(folder)
    manifest = json.loads((folder / "run_manifest.json").read_text("utf-8"))
    for varying in ("stage_seconds", "ingested_this_run", "notices"):
        manifest.pop(varying)
    files.pop("run_manifest.json")
    return {"files": files, "manifest": manifest}


@pytest.fixture(scope="module")
def homes(tmp_path_factory, prefect_server):
    """A home run up to the day before, and the outputs of an uninterrupted run of the day."""
    base = tmp_path_factory.mktemp("recovery") / "base"
    write_sample(base, 40, 13, DAY, places=("500101001",), monthly=False)
    run(base, FIRST)
    clean = base.with_name("clean")
    shutil.copytree(base, clean)
    run(clean, DAY)
    return base, outputs(clean, DAY)


@pytest.fixture(scope="module")
def killed(homes, tmp_path_factory):
    """Each stage's run, killed in its own process; the processes run side by side."""
    from prefect.settings import PREFECT_API_URL

    base, _ = homes
    environment = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    started = {}
    for stage, (module, name, at) in KILLS.items():
        home = tmp_path_factory.mktemp(f"killed-{stage}") / "home"
        shutil.copytree(base, home)
        before = (tree(home / "landing"), tree(home / "out" / FIRST.isoformat()))
        process = subprocess.Popen([sys.executable, "-c", KILLER, module, name, str(at),
                                    str(home), DAY.isoformat()], env=environment,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started[stage] = (home, before, process)
    finished = {}
    for stage, (home, before, process) in started.items():
        _, error = process.communicate(timeout=300)
        finished[stage] = (home, before, process.returncode, error.decode()[-2000:])
    return finished


@pytest.mark.parametrize("stage", list(KILLS))
def test_a_run_killed_at_any_stage_is_repaired_by_the_next(stage, homes, killed):
    _, expected = homes
    home, (landing, earlier), returncode, error = killed[stage]
    assert returncode == -9, error
    assert tree(home / "landing") == landing
    assert tree(home / "out" / FIRST.isoformat()) == earlier
    if stage != "state":  # killed before its outputs were moved into place: none of them
        assert not (home / "out" / DAY.isoformat()).exists()
    if stage == "ingest":  # killed between a delivered file's staged lake files
        assert list((home / "lake").rglob(".*.tmp"))
    run(home, DAY)
    assert outputs(home, DAY) == expected
    assert not list((home / "out").glob(".*")), "a killed run's leftovers remain"
    assert not list(home.rglob("*.tmp")), "a killed ingest's staged files remain"
