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
    """A small synthetic county (2,000 households, 36 months) on which `monitor train` ran.

    Returns the home and the training date. Tests may run `monitor run` on it,
    but must not change its lake or its models.
    """
    import datetime as dt

    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.io.sample_writer import write_sample

    home = tmp_path_factory.mktemp("trained") / "home"
    day = dt.date(2026, 6, 30)
    write_sample(home, 2000, 3, day, places=("500102",))
    result = CliRunner().invoke(app, ["train", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    home.joinpath("train-output.txt").write_text(result.output, encoding="utf-8")
    return home, day
