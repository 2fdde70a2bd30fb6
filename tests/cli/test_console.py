"""Whatever the console: a completed run exits 0, a failure is one line, no full id number.

Hostile input round two (issue 20), the class "crashes instead of one line":
a console that cannot print Chinese, a home that cannot be written, an
exception nobody foresaw, a message longer than the terminal.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deliveries import workbook_with_an_id_cell_that_crashes_the_reader
from typer.testing import CliRunner

from monitor import cli
from monitor.io.log_masking import log_records_without_full_numbers

MONITOR = str(Path(sys.executable).with_name("monitor"))
# (Not after a decimal point: the manifest's seconds are floats with 18 decimals.)
FULL_ID = re.compile(r"(?<![0-9.])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def _ascii(*arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([MONITOR, *arguments], capture_output=True, env=env, timeout=600,
                          check=False)


def test_a_completed_run_on_a_console_that_cannot_print_chinese_exits_0(night_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    done = _ascii("run", "--home", str(home), "--date", "2026-07-01")
    assert done.returncode == 0, done.stderr.decode("ascii", "replace")[-2000:]
    assert b"Traceback" not in done.stderr
    assert b"\\u" in done.stdout  # Chinese written as escapes, not lost and not fatal
    assert (home / "out" / "2026-07-01" / "run_manifest.json").exists()


def test_listings_on_a_console_that_cannot_print_chinese_exit_0():
    done = _ascii("rules", "--format", "table")
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    assert b"DIBAO_GAP" in done.stdout and b"\\u" in done.stdout
    done = _ascii("rules", "--facts", "--format", "markdown")
    assert done.returncode == 0 and b"per_capita_income" in done.stdout


def test_a_message_longer_than_the_terminal_stays_one_line(tmp_path):
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "home"
    deep.mkdir(parents=True)
    done = subprocess.run([MONITOR, "household", "--home", str(deep), "--id", "1"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 1
    assert len(done.stderr) > 120 and done.stderr.count("\n") == 1
    assert str(deep) in done.stderr


def test_a_home_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    import monitor.io.lock

    def refuse(*_: object, **__: object) -> object:
        raise PermissionError(13, "Permission denied", str(tmp_path / "state" / "run.lock"))

    import flows.nightly  # imported first: it binds home_lock when imported

    monkeypatch.setattr(monitor.io.lock, "home_lock", refuse)
    monkeypatch.setattr(flows.nightly, "home_lock", refuse)
    result = CliRunner().invoke(cli.app, ["run", "--home", str(tmp_path), "--date",
                                          dt.date(2026, 6, 30).isoformat()])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "run not started:" in result.stderr and "Permission denied" in result.stderr
    assert "Traceback" not in result.output


def test_an_unforeseen_crash_is_one_masked_line(tmp_path, monkeypatch, capsys):
    import monitor.io.household

    def crash(*_: object, **__: object) -> object:
        raise RuntimeError("cell 110105194912310021 of 张三 (13812345678) could not be read")

    monkeypatch.setattr(monitor.io.household, "read_household", crash)
    monkeypatch.setattr(sys, "argv", ["monitor", "household", "--home", str(tmp_path),
                                      "--id", "1", "--date", "2026-06-30"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 1
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "RuntimeError" in said
    assert "110105********0021" in said and "138****5678" in said
    assert not FULL_ID.search(said) and not PHONE.search(said)


def test_a_file_named_after_a_person_reaches_no_output_with_the_numbers(night_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    folder = home / "landing" / "registry" / "2026-07-01"
    folder.mkdir(parents=True)
    (folder / "张三110105194912310021_13812345678.csv").write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(cli.app, ["run", "--home", str(home), "--date", "2026-07-01"])
    assert result.exit_code == 0, result.output
    out = home / "out" / "2026-07-01"
    manifest = (out / "run_manifest.json").read_text(encoding="utf-8")
    assert "110105********0021" in manifest  # the rejected file is named, masked
    said = {"stdout": result.stdout, "stderr": result.stderr, "run_manifest.json": manifest,
            "report.html": (out / "report.html").read_text(encoding="utf-8")}
    for where, text in said.items():
        assert not FULL_ID.search(text) and not PHONE.search(text), where


def test_log_records_carry_no_full_numbers_whoever_logs_them(caplog):
    import logging

    original = logging.getLogRecordFactory()
    log_records_without_full_numbers()
    log_records_without_full_numbers()  # installed once, however often asked
    try:
        with caplog.at_level(logging.ERROR, logger="monitor.progress"):
            logging.getLogger("monitor.progress").error(
                "read %s failed: %s", "张三.csv", "cell 110105194912310021, phone 13812345678")
        [record] = [r for r in caplog.records if r.name == "monitor.progress"]
        said = record.getMessage()
        assert "110105********0021" in said and "138****5678" in said
        assert not FULL_ID.search(said) and not PHONE.search(said)
    finally:
        logging.setLogRecordFactory(original)


def test_a_reader_that_crashes_on_a_cell_reports_it_without_the_number(night_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    folder = home / "landing" / "registry" / "2026-07-01"
    folder.mkdir(parents=True)
    workbook_with_an_id_cell_that_crashes_the_reader(folder / "registry.xlsx")
    result = CliRunner().invoke(cli.app, ["run", "--home", str(home), "--date", "2026-07-01"])
    assert result.exit_code == 0, result.output
    assert "110105********002X" in result.stderr  # the rejection is said, masked
    import pandas as pd

    manifest = pd.read_parquet(home / "state" / "ingest_manifest.parquet")
    out = home / "out" / "2026-07-01"
    said = {"stdout": result.stdout, "stderr": result.stderr,
            "ingest manifest messages": "\n".join(manifest["message"].dropna()),
            "run_manifest.json": (out / "run_manifest.json").read_text(encoding="utf-8"),
            "report.html": (out / "report.html").read_text(encoding="utf-8")}
    for where, text in said.items():
        assert not FULL_ID.search(text), where
