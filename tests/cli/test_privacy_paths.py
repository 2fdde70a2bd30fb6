"""No full id or phone number reaches an operator, whichever way a department sends one.

Hostile input round two (issue 20): an id typed into a file's name, an id
cell a reader crashes on, numbers in a header, in a shifted column, in a
township's answer, in a parameter's source and in a parameter's value, all
in one night and one tune. Everything the operator can see is scanned for
the planted numbers: stdout and stderr, the ingest manifest's messages, the
run and tune outputs (manifests, reports, tables, referral files), the
Prefect logs and artifacts. The lake and the quarantine (not outputs) keep
what was delivered; so does the ingest manifest's ``file`` column, which
needs a file's own name to recognise it.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deliveries import good_frame, workbook_with_an_id_cell_that_crashes_the_reader
from typer.testing import CliRunner

from monitor.cli import app

DAY = "2026-07-01"
#: The planted numbers: two id numbers (one ending in X) and two mobile numbers.
PLANTED = ("110105194912310021", "11010519491231002X", "500101199001011234",
           "13812345678", "15987654321")
MASKED = ("110105********0021", "110105********002X", "500101********1234", "138****5678")


def _deliver(home: Path) -> None:
    """The night's hostile files, each carrying numbers by another path."""
    def folder(source: str) -> Path:
        path = home / "landing" / source / DAY
        path.mkdir(parents=True, exist_ok=True)
        return path

    # A file named after a person, which no reader can read.
    (folder("disaster") / "张三110105194912310021_13812345678.csv").write_bytes(
        b"\xff\xfe\x00garbage")
    # An id cell typed a number holding 11010519491231002X: the XLSX reader's crash quotes it.
    workbook_with_an_id_cell_that_crashes_the_reader(folder("registry") / "registry.xlsx")
    # Numbers for headers: the CSV is refused naming what it lacks.
    (folder("housing") / "header.csv").write_text(
        "500101199001011234,15987654321\n1,2\n", encoding="utf-8")
    # A Parquet file with the numbers in a column no reader can take as text.
    frame = good_frame("disaster")
    table = pa.table({**{name: pa.array(frame[name].tolist()) for name in frame},
                      "household_id": pa.array([[value, "500101199001011234"]
                                                for value in frame["household_id"]])})
    pq.write_table(table, folder("disaster") / "nested.parquet")
    # A shifted column: the numbers in cells that do not parse (quarantined, with details).
    housing = good_frame("housing")
    housing.loc[0, "rating"] = "500101199001011234"
    housing.loc[1, "assess_date"] = "13812345678"
    housing.to_csv(folder("housing") / "housing.csv", index=False)
    # A township's answer with the numbers typed into it (refused, shown on its receipt).
    warnings = pd.read_parquet(home / "out" / "2026-06-30" / "warnings.parquet")
    first = warnings.iloc[0]
    pd.DataFrame({"预警编号": [first["warning_id"]], "户编号": [first["household_id"]],
                  "核实结果": ["属实 身份证500101199001011234"], "处置措施": ["电话13812345678"],
                  "办结日期": [DAY], "经办人": ["李娜15987654321"]}).to_csv(
        folder("feedback") / "回复.csv", index=False, encoding="utf-8-sig")
    # A parameter's source naming a person, which reports show beside the value.
    (home / "parameters.yaml").write_text(
        "edge_ratio:\n  - {from: 2020-01-01, value: 1.5, source: \"经办人 13812345678，"
        "身份证 110105194912310021\"}\n", encoding="utf-8")


def _texts(folder: Path) -> dict[str, str]:
    """Every file under a folder as text (Parquet cell by cell, workbooks part by part)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            found[str(path)] = pd.read_parquet(path).astype(str).to_csv(index=False)
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                found[str(path)] = "\n".join(book.read(name).decode("utf-8", "replace")
                                             for name in book.namelist())
        elif path.is_file():
            found[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return found


def _prefect_logs_and_artifacts() -> dict[str, str]:
    from prefect.client.orchestration import get_client

    def every(read) -> list:
        """Every item of a read the server gives out 200 at a time."""
        items: list = []
        while page := read(limit=200, offset=len(items)):
            items += page
        return items

    with get_client(sync_client=True) as client:
        logs = every(client.read_logs)
        artifacts = every(client.read_artifacts)
    assert logs and artifacts
    return {"Prefect logs": "\n".join(log.message for log in logs),
            "Prefect artifacts": "\n".join(str(artifact.data) for artifact in artifacts)}


def test_no_planted_number_reaches_anything_an_operator_sees(night_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    _deliver(home)
    runner = CliRunner()
    said = []
    done = runner.invoke(app, ["run", "--home", str(home), "--date", DAY, "--verbose"])
    assert done.exit_code == 0, done.output
    said += [done.stdout, done.stderr]
    # A tune whose candidate's values are an id number: refused in one line, masked.
    candidate = tmp_path / "candidate.yaml"
    for value in ("500101199001011234", '"500101199001011234"'):
        candidate.write_text(f"dibao_standard:\n  - {{from: 2020-01-01, value: {value}}}\n",
                             encoding="utf-8")
        refused = runner.invoke(app, ["tune", "--home", str(home), "--date", DAY,
                                      "--parameters", str(candidate)])
        assert refused.exit_code == 1 and refused.stderr.startswith("tune not started: ")
        assert refused.stderr.count("\n") == 1
        said += [refused.stdout, refused.stderr]
    # A tune that runs, with a candidate naming a phone in its source.
    candidate.write_text("edge_ratio:\n  - {from: 2020-01-01, value: 1.7, source: \"电话 "
                         "15987654321\"}\n", encoding="utf-8")
    tuned = runner.invoke(app, ["tune", "--home", str(home), "--date", DAY,
                                "--parameters", str(candidate), "--verbose"])
    assert tuned.exit_code == 0, tuned.output
    said += [tuned.stdout, tuned.stderr]

    manifest = pd.read_parquet(home / "state" / "ingest_manifest.parquet")
    ours = manifest[manifest["file"].str.contains(DAY, regex=False)]
    assert set(ours["status"]) >= {"rejected", "accepted"}
    assert (ours["status"] == "rejected").sum() >= 4  # the name, the cell, the header, nesting
    places = {"what the commands printed": "\n".join(said),
              "ingest manifest messages": "\n".join(manifest["message"].dropna()),
              **_texts(home / "out" / DAY), **_texts(home / "tune"),
              **_prefect_logs_and_artifacts()}
    # The scan can fail: what was delivered holds the numbers, masked where it is shown.
    everything = "\n".join(places.values())
    assert sum(masked in everything for masked in MASKED) >= 3
    assert "110105194912310021" in "\n".join(manifest["file"])
    quarantine = "\n".join(_texts(home / "quarantine").values())
    assert "500101199001011234" in quarantine and "13812345678" in quarantine
    for place, text in places.items():
        for number in PLANTED:
            assert number not in text, f"{place} holds the full number {number}"
