"""A lake folder deleted between runs stops the run with one line (hostile input, issue 20).

Read on, a source whose files are gone looks like a source with no rows:
every household would drop off the lists without a word.
"""

from __future__ import annotations

import shutil

import pytest
from deliveries import DELIVERY, good_frame, write_delivery
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.ingest import ingest_landing
from monitor.io.lake import LakeFilesMissing, read_as_of


def _ingested(home):
    write_delivery(home, "registry", good_frame("registry"))
    write_delivery(home, "income", good_frame("income"))
    ingest_landing(home, DELIVERY)


def test_a_deleted_lake_folder_is_an_error_naming_it_not_an_empty_source(home):
    _ingested(home)
    shutil.rmtree(home / "lake" / "income")
    with pytest.raises(LakeFilesMissing, match=r"lake/income: 1 lake file\(s\) the ingest "
                                               r"manifest names are gone"):
        read_as_of(home, DELIVERY)


def test_one_deleted_lake_file_is_enough_and_the_run_says_so_in_one_line(home):
    _ingested(home)
    [registry_file] = (home / "lake" / "registry").glob("*.parquet")
    registry_file.unlink()
    result = CliRunner().invoke(app, ["run", "--home", str(home), "--date",
                                      DELIVERY.isoformat()])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "LakeFilesMissing" in result.stderr and "lake/registry" in result.stderr
    assert not (home / "out" / DELIVERY.isoformat()).exists()  # nothing half-written
