"""Personal data: no full id or phone number leaves the lake; files are private; lists local.

The scan runs a nightly run and a tune on the trained sample county and reads
everything they wrote outside the lake and the quarantine (referral files,
warnings, reports and their tables, manifests, model files), what the
commands printed and logged, and the Prefect artifacts they published.
"""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from deliveries import DELIVERY, good_frame, write_delivery
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.lake import read_source

runner = CliRunner()
ID_PATTERN = re.compile(r"[0-9]{17}[0-9X]")
PHONE_PATTERN = re.compile(r"1[3-9][0-9]{9}")
TEXT_SUFFIXES = {".csv", ".json", ".md", ".html", ".txt", ".yaml"}


def texts_of(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text: Parquet tables cell by cell, others decoded."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            found[str(path)] = frame.astype(str).to_csv(index=False)
        elif path.suffix in TEXT_SUFFIXES:
            found[str(path)] = path.read_text(encoding="utf-8-sig", errors="replace")
        elif path.suffix == ".xlsx":
            # A workbook is zipped XML: every part of it, as text.
            with zipfile.ZipFile(path) as book:
                found[str(path)] = "\n".join(book.read(name).decode("utf-8", "replace")
                                             for name in book.namelist())
    return found


def artifacts() -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [str(artifact.data) for artifact in client.read_artifacts()]


@pytest.fixture(scope="module")
def written(trained_home, tmp_path_factory):
    home, day = trained_home
    candidate = tmp_path_factory.mktemp("privacy") / "candidate.yaml"
    candidate.write_text("edge_ratio:\n  - {from: 2021-01-01, value: 1.7}\n", encoding="utf-8")
    printed = []
    for arguments in (["run", "--home", str(home), "--date", day.isoformat(), "--verbose"],
                      ["tune", "--home", str(home), "--date", day.isoformat(), "--parameters",
                       str(candidate), "--verbose"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        printed.append(result.output)
    registry = read_source(home, "registry", day)
    return {"home": home, "day": day, "printed": "\n".join(printed), "registry": registry}


def test_no_full_id_or_phone_number_is_written_outside_the_lake(written, caplog):
    home, registry = written["home"], written["registry"]
    id_numbers = set(registry["id_number"].dropna())
    phones = set(registry["phone"].dropna())
    assert len(id_numbers) > 1000 and len(phones) > 100, "the scan must have something to find"
    places = {f"{folder} (files)": texts_of(home / folder) for folder in ("out", "tune", "models")}
    places["what the commands printed"] = {"output": written["printed"]}
    places["Prefect artifacts"] = dict(enumerate(artifacts()))
    places["log records"] = {"log": caplog.text}
    scanned = 0
    for place, texts in places.items():
        for name, text in texts.items():
            scanned += len(text)
            leaked_ids = set(ID_PATTERN.findall(text)) & id_numbers
            leaked_phones = set(PHONE_PATTERN.findall(text)) & phones
            assert not leaked_ids, f"{place}: {name} holds {len(leaked_ids)} full id numbers"
            assert not leaked_phones, f"{place}: {name} holds {len(leaked_phones)} phones"
    assert scanned > 1_000_000
    # The scan can fail: the lake itself, which it leaves out, does hold them.
    lake = texts_of(home / "lake" / "registry")
    assert any(set(ID_PATTERN.findall(text)) & id_numbers for text in lake.values())


def test_each_township_file_lists_only_households_of_that_township(written):
    home, day, registry = written["home"], written["day"], written["registry"]
    township_of = registry.drop_duplicates("household_id").set_index("household_id")[
        "region_code"].str.slice(0, 9)
    files = sorted((home / "out" / day.isoformat() / "referrals").glob("*/*.csv"))
    assert len(files) > 5
    for path in files:
        rows = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
        assert (rows["村(社区)"].str.slice(0, 9) == path.stem).all(), path
        assert (rows["户编号"].map(township_of) == path.stem).all(), path
        assert path.parent.name == path.stem[:6]
        book = openpyxl.load_workbook(path.with_suffix(".xlsx"), read_only=True)
        for sheet in ("预警核查", "定期探访"):
            rows = list(book[sheet].iter_rows(values_only=True))
            village = rows[0].index("村(社区)")
            assert all(str(row[village]).startswith(path.stem) for row in rows[1:]), path


def modes(folder: Path) -> tuple[set[int], set[int]]:
    """The permission bits of the folders and of the files under ``folder`` (itself included)."""
    paths = [folder, *folder.rglob("*")]
    return ({stat.S_IMODE(path.stat().st_mode) for path in paths if path.is_dir()},
            {stat.S_IMODE(path.stat().st_mode) for path in paths if path.is_file()})


@pytest.mark.parametrize(("umask", "folders", "files"), [
    (None, {0o700}, {0o600}),
    ("027", {0o750}, {0o640}),
])
def test_what_the_system_writes_is_readable_by_its_owner_only_unless_configured(
        tmp_path, monkeypatch, umask, folders, files):
    home = tmp_path / "home"
    if umask is None:
        monkeypatch.delenv("MONITOR_UMASK", raising=False)
    else:
        monkeypatch.setenv("MONITOR_UMASK", umask)
    write_delivery(home, "registry", good_frame("registry"))
    bad = good_frame("housing")
    bad.loc[0, "rating"] = "E"
    write_delivery(home, "housing", bad)
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", DELIVERY.isoformat()])
    assert result.exit_code == 0, result.output
    for written_folder in ("lake", "quarantine", "state"):
        found_folders, found_files = modes(home / written_folder)
        assert found_folders == folders, written_folder
        assert found_files == files, written_folder


def test_a_umask_that_is_not_octal_stops_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_UMASK", "rw-------")
    result = runner.invoke(app, ["ingest", "--home", str(tmp_path), "--date", "2024-06-30"])
    assert result.exit_code == 2
    assert "MONITOR_UMASK='rw-------' is not an octal umask" in " ".join(result.output.split())
