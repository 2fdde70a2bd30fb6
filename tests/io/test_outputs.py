"""Outputs are replaced whole or not at all; the warning state is read from earlier runs only."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest

from monitor.io.outputs import previous_state, remove_leftovers, staged_folder, write_state
from monitor.triage.lifecycle import EVENT_COLUMNS, empty_state


def test_a_rerun_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "out" / "2026-06-30"
    with staged_folder(target) as staging:
        (staging / "old-township.csv").write_text("old")
    with staged_folder(target) as staging:
        (staging / "new-township.csv").write_text("new")
    assert sorted(path.name for path in target.iterdir()) == ["new-township.csv"]
    assert sorted(path.name for path in target.parent.iterdir()) == ["2026-06-30"]


def test_a_failure_while_writing_keeps_the_earlier_outputs_and_leaves_no_staging(tmp_path):
    target = tmp_path / "out" / "2026-06-30"
    with staged_folder(target) as staging:
        (staging / "a.csv").write_text("earlier")
    with pytest.raises(OSError, match="disk full"), staged_folder(target) as staging:
        (staging / "a.csv").write_text("half")
        raise OSError("disk full")
    assert (target / "a.csv").read_text() == "earlier"
    assert sorted(path.name for path in target.parent.iterdir()) == ["2026-06-30"]


def test_leftovers_of_a_killed_run_are_removed_but_not_those_of_a_run_in_progress(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = int(finished.stdout)
    leftover = tmp_path / "out" / f".2026-06-30.{dead}.staging"
    (leftover / "referrals").mkdir(parents=True)
    pending = tmp_path / "lake" / "warning_state" / f".2026-06-30.parquet.{dead}.pending"
    pending.parent.mkdir(parents=True)
    pending.write_bytes(b"half")
    lake_part = (tmp_path / "lake" / "income" / "county_code=500101"
                 / f".2024-06-30_0123456789abcdef.parquet.{dead}.tmp")
    quarantine_part = (tmp_path / "quarantine" / "income"
                       / f".2024-06-30_0123456789abcdef.parquet.{dead}.tmp")
    for part in (lake_part, quarantine_part):
        part.parent.mkdir(parents=True)
        part.write_bytes(b"half")
    in_progress = tmp_path / "out" / f".2026-07-01.{os.getpid()}.staging"
    in_progress.mkdir()
    being_written = lake_part.with_name(f".2024-06-30_fedcba9876543210.parquet.{os.getpid()}.tmp")
    being_written.write_bytes(b"half")
    assert sorted(remove_leftovers(tmp_path)) == sorted([leftover, pending, lake_part,
                                                         quarantine_part])
    assert not leftover.exists() and not pending.exists() and not lake_part.exists()
    assert in_progress.exists() and being_written.exists()


def test_a_run_starts_from_the_latest_earlier_run_never_its_own_date_or_later(tmp_path):
    no_events = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in
                              EVENT_COLUMNS.items()})
    for day in ("2026-06-28", "2026-06-30", "2026-07-02"):
        state = empty_state().reindex(range(1))
        state["warning_id"] = f"from {day}"
        write_state(tmp_path, dt.date.fromisoformat(day), state, no_events)
    state, day = previous_state(tmp_path, dt.date(2026, 6, 30))
    assert (day, state["warning_id"].tolist()) == (dt.date(2026, 6, 28), ["from 2026-06-28"])
    state, day = previous_state(tmp_path, dt.date(2026, 6, 28))
    assert day is None and state.empty
