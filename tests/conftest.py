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


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, prefect_server):
    """A small synthetic county (2,000 households, 36 months, snapshots half-yearly) on which
    `monitor train` ran.

    Returns the home and the training date. Each test process gets its own
    copy, so tests may run anything on it; it is built once per session (the
    first xdist worker to need it builds it, under a file lock, and the other
    copies it: training it twice cost a worker 45 s).
    """
    import datetime as dt
    import fcntl
    import os
    import shutil

    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.io.sample_writer import write_sample

    day = dt.date(2026, 6, 30)
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is a folder of the session's; alone, the session's own.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    built = shared / "trained-home-built" / "home"
    with open(shared / "trained-home.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built.parent / "ready").exists():
            shutil.rmtree(built.parent, ignore_errors=True)
            write_sample(built, 2000, 3, day, places=("500102",), monthly=False)
            result = CliRunner().invoke(app, ["train", "--home", str(built), "--date",
                                              day.isoformat()])
            assert result.exit_code == 0, result.output
            built.joinpath("train-output.txt").write_text(result.output, encoding="utf-8")
            (built.parent / "ready").touch()
    home = tmp_path_factory.mktemp("trained") / "home"
    shutil.copytree(built, home)
    return home, day


