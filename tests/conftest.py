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
