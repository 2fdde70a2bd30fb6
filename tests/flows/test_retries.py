"""Retries: tasks that touch the home are tried again on an OSError, and on nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

import flows.nightly
from flows.nightly import IO_RETRY_DELAYS, retry_on_io_error
from monitor.cli import app
from tests.deliveries import good_frame, write_delivery

DAY = dt.date(2026, 6, 30)


class Finished:
    """A stand-in for a failed task state: its result raises the task's error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self) -> None:
        raise self.error


@pytest.mark.parametrize(("error", "retried"), [
    (OSError("disk full"), True), (FileNotFoundError("lake file gone"), True),
    (TimeoutError("NFS stalled"), True),  # an OSError too
    (ValueError("no registry delivered"), False), (KeyError("column"), False),
])
def test_only_an_os_error_is_retried(error, retried):
    assert retry_on_io_error(None, None, Finished(error)) is retried


def test_retries_back_off_and_stop():
    assert sorted(IO_RETRY_DELAYS) == IO_RETRY_DELAYS and len(IO_RETRY_DELAYS) == 3
    assert flows.nightly.read_county.retries == len(IO_RETRY_DELAYS)
    assert flows.nightly.evaluate.retries == 0  # computing again gives the same failure


@pytest.fixture
def small_home(tmp_path):
    """Three people in two counties (500101 first), delivered once."""
    home = tmp_path / "home"
    write_delivery(home, "registry", good_frame("registry"), DAY)
    return home


def flaky_reads(monkeypatch, error: BaseException) -> list[str]:
    """Make the first county read fail with ``error``; return the list of reads tried."""
    tried, real = [], flows.nightly.read_as_of

    def read_as_of(home, as_of, county=None, **options):
        tried.append(county)
        if len(tried) == 1:
            raise error
        return real(home, as_of, county=county, **options)

    monkeypatch.setattr(flows.nightly, "read_as_of", read_as_of)
    monkeypatch.setattr(flows.nightly, "read_county",
                        flows.nightly.read_county.with_options(retry_delay_seconds=0))
    return tried


def test_a_passing_io_error_is_retried_and_the_run_completes(small_home, monkeypatch,
                                                             prefect_server):
    tried = flaky_reads(monkeypatch, OSError("lake on a network share: stale handle"))
    result = CliRunner().invoke(app, ["run", "--home", str(small_home), "--date",
                                      DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert tried[:2] == ["500101", "500101"] and tried.count("500101") == 2
    assert (small_home / "out" / DAY.isoformat() / "run_manifest.json").exists()


def test_any_other_error_is_not_retried(small_home, monkeypatch, prefect_server):
    tried = flaky_reads(monkeypatch, ValueError("a bug"))
    result = CliRunner().invoke(app, ["run", "--home", str(small_home), "--date",
                                      DAY.isoformat()])
    assert result.exit_code == 1
    assert "run failed: ValueError: a bug" in result.output
    assert tried.count("500101") == 1
    assert not (small_home / "out").exists()
