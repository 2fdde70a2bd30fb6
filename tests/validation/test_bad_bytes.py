"""One bad byte costs its line, never the file (hostile input round two, issue 20).

A GB18030 file with one invalid sequence past the first 64 KiB, or a UTF-8
file with one stray Latin-1 byte, was rejected whole; now the line with the
bad bytes is quarantined (``bad_encoding``, with its row number) and every
other row is ingested. A file that is neither encoding is still rejected,
saying where.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from deliveries import DELIVERY, REGION

from monitor.io import landing
from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_manifest, read_source
from monitor.validation.idcard import make_id_numbers

ROWS = 3000


def _registry(rows: int = ROWS) -> pd.DataFrame:
    born = pd.to_datetime(["1960-01-01"] * rows) + pd.to_timedelta(np.arange(rows), unit="D")
    return pd.DataFrame({
        "id_number": make_id_numbers(np.array(["500101"] * rows), born,
                                     np.full(rows, 11)),
        "name": [f"张三丰{k}" for k in range(rows)],
        "household_id": [f"{k:06d}" for k in range(rows)],
        "relation": "户主", "region_code": REGION, "status": "正常", "status_date": "",
        "phone": ""})


def _deliver(home, encoding: str, bad_row: int, bad: bytes) -> None:
    text = _registry().to_csv(index=False).encode(encoding)
    lines = text.split(b"\n")
    # The bad bytes inside the name of data row `bad_row` (line bad_row + 1 of the file).
    lines[bad_row] = lines[bad_row].replace(b",", b"," + bad, 2).replace(b"," + bad, b",", 1)
    folder = home / "landing" / "registry" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    (folder / "data.csv").write_bytes(b"\n".join(lines))


def _quarantined(home) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(path) for path in (home / "quarantine").rglob(
        "*.parquet")], ignore_index=True)


@pytest.mark.parametrize("chunk", [None, 1_001])
@pytest.mark.parametrize(("encoding", "bad"), [
    ("gb18030", b"\x80\xff"),     # not a GB18030 sequence, past the first 64 KiB
    ("utf-8", b"\xe9"),           # a stray Latin-1 é in UTF-8
])
def test_a_bad_byte_costs_its_line_not_the_file(home, monkeypatch, encoding, bad, chunk):
    # Repaired in chunks whatever the file's size (a file over 256 MiB was rejected whole):
    # chunks of an odd size cut characters, and the bad bytes, in two.
    if chunk is not None:
        monkeypatch.setattr(landing, "_HASH_CHUNK_BYTES", chunk)
    bad_row = 2500
    _deliver(home, encoding, bad_row, bad)
    assert (home / "landing" / "registry" / DELIVERY.isoformat() / "data.csv"
            ).stat().st_size > 1 << 16
    report = ingest_landing(home, DELIVERY)
    [outcome] = report.files
    assert outcome.status == "accepted", outcome.message
    manifest = read_manifest(home).iloc[0]
    assert (manifest["rows_read"], manifest["rows_accepted"], manifest["rows_quarantined"]) == (
        ROWS, ROWS - 1, 1)
    quarantined = _quarantined(home)
    assert quarantined["_reason"].tolist() == ["bad_encoding"]
    assert quarantined["_row"].tolist() == [bad_row]
    accepted = read_source(home, "registry", DELIVERY)
    assert len(accepted) == ROWS - 1
    assert accepted["name"].str.startswith("张三丰").all()  # the rest read in its encoding


def test_a_file_in_neither_encoding_is_rejected_saying_where(home):
    folder = home / "landing" / "registry" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    (folder / "data.csv").write_bytes(_registry(50).to_csv(index=False).encode("utf-16"))
    [outcome] = ingest_landing(home, DELIVERY).files
    assert outcome.status == "rejected"
    assert "text is neither UTF-8 nor GB18030" in outcome.message
    assert "the first on line 1" in outcome.message


def test_the_dates_of_a_repaired_file_are_read_as_in_any_other(home):
    _deliver(home, "utf-8", 10, b"\xe9")
    ingest_landing(home, DELIVERY)
    assert read_source(home, "registry", DELIVERY)["status"].eq("正常").all()
    assert dt.date(2024, 6, 30) == DELIVERY
