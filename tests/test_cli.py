"""The `monitor` command line: sample and ingest, as an operator runs them."""

from __future__ import annotations

from deliveries import DELIVERY, good_frame, write_delivery
from typer.testing import CliRunner

from monitor.cli import app

runner = CliRunner()


def test_sample_then_ingest_prints_counts_per_source_and_the_lake(home):
    result = runner.invoke(app, ["sample", "--home", str(home), "--households", "60",
                                 "--seed", "3", "--date", "2026-06-30",
                                 "--places", "500101001"])
    assert result.exit_code == 0, result.output
    assert (home / "landing" / "registry").is_dir()
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2026-06-30"])
    assert result.exit_code == 0, result.output
    for source in ("registry", "assistance", "medical", "feedback"):
        assert source in result.output
    assert "quarantined" in result.output and str(home / "lake") in result.output.replace("\n", "")
    again = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2026-06-30"])
    assert again.exit_code == 0 and "Nothing new to ingest" in again.output


def test_a_rejected_file_is_named_and_the_run_still_completes(home):
    write_delivery(home, "income", good_frame("income").drop(columns="assess_date"))
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", DELIVERY.isoformat()])
    assert result.exit_code == 0
    assert "landing/income/2024-06-30/data.csv" in result.output
    assert "assess_date" in result.output


def test_a_bad_date_option_is_a_clear_error(home):
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2024-13-01"])
    assert result.exit_code == 2
    assert "not a date" in result.output
