"""Shared pytest fixtures and options."""

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regenerate-golden", action="store_true", default=False,
                     help="Rewrite the golden referral files from this code (then review the "
                          "diff and commit it).")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty deployment home folder."""
    return tmp_path / "home"


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server and database for the tests that run flows (started once)."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        patch.setenv("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        with prefect_test_harness(server_startup_timeout=60):
            yield


def _built_once(tmp_path_factory, name: str, build) -> Path:
    """A home built once per session, and this test process's own copy of it.

    The first xdist worker to need it builds it under a file lock; the others
    copy it (building homes twice cost the suite most of a minute).
    """
    import fcntl
    import os
    import shutil

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is a folder of the session's; alone, the session's own.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    built = shared / f"{name}-built" / "home"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built.parent / "ready").exists():
            shutil.rmtree(built.parent, ignore_errors=True)
            build(built)
            (built.parent / "ready").touch()
    home = tmp_path_factory.mktemp(name) / "home"
    shutil.copytree(built, home)
    return home


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, prefect_server):
    """A small synthetic county (2,000 households, 36 months, snapshots half-yearly) on which
    `monitor train` ran.

    Returns the home and the training date. Each test process gets its own
    copy, so tests may run anything on it (:func:`_built_once`: training it
    twice cost a worker 45 s).
    """
    import datetime as dt

    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.io.sample_writer import write_sample

    day = dt.date(2026, 6, 30)

    def build(home: Path) -> None:
        write_sample(home, 2000, 3, day, places=("500102",), monthly=False)
        result = CliRunner().invoke(app, ["train", "--home", str(home), "--date",
                                          day.isoformat()])
        assert result.exit_code == 0, result.output
        home.joinpath("train-output.txt").write_text(result.output, encoding="utf-8")

    return _built_once(tmp_path_factory, "trained-home", build), day


#: The three townships (two counties) of the sample night.
NIGHT_PLACES = ("500101001", "500101002", "500102001")


@pytest.fixture(scope="session")
def night_home(tmp_path_factory, prefect_server):
    """Three townships (200 households, 36 months, snapshots half-yearly) after the nightly run
    of 2026-06-30, with no model: this process's own copy (copy it again before changing it).

    One household has a planted disaster that counts on that date and leaves
    its window 20 days later: a warning that closes by itself within a month.
    """
    import datetime as dt

    import pandas as pd
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.io.config import load_parameters
    from monitor.io.sample_writer import write_sample

    day = dt.date(2026, 6, 30)

    def build(home: Path) -> None:
        write_sample(home, 200, 11, day, places=NIGHT_PLACES, monthly=False)
        params = load_parameters(None, day)
        window = int(params.value("sudden_window_days", day))
        registry = pd.read_csv(next((home / "landing" / "registry" / day.isoformat()).iterdir()),
                               dtype=str, encoding="utf-8-sig")
        household = sorted(set(registry.loc[registry["status"] == "正常", "household_id"]))[0]
        pd.DataFrame({
            "event_id": ["PLANTED-1"], "household_id": [household],
            "event_date": [(day - dt.timedelta(days=window - 20)).isoformat()],
            "disaster_type": ["洪涝"],
            "loss_amount": [str(int(params.value("sudden_loss_amount", day)) + 5000)],
        }).to_csv(home / "landing" / "disaster" / day.isoformat() / "planted.csv", index=False,
                  encoding="utf-8-sig")
        result = CliRunner().invoke(app, ["run", "--home", str(home), "--date",
                                          day.isoformat()])
        assert result.exit_code == 0, result.output

    return _built_once(tmp_path_factory, "night-home", build)
