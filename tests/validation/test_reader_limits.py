"""A file costs at most itself: readers' limits, and one meaning of a date in every format.

Hostile input round two (issue 20): an XLSX of about 2 MB whose parts unpack
to about 0.9 GB held a night for minutes, and the other deliveries were never
ingested; a Parquet timestamp with a time of day was taken as its date where
the same value in a CSV is quarantined.
"""

from __future__ import annotations

import datetime as dt
import resource
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import DELIVERY, good_frame, write_delivery

from monitor.contract.sources import SOURCES
from monitor.io import landing
from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_source
from monitor.io.landing import XLSX_MAX_UNPACKED_BYTES
from monitor.validation.checks import CUT_CELL_CHARS, MAX_CELL_BYTES, ROW


def _bomb(path, unpacked: int) -> None:
    """A workbook-shaped zip whose shared strings unpack to ``unpacked`` bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            chunk = b"<si><t>" + b"A" * 1_000_000 + b"</t></si>"
            for _ in range(unpacked // len(chunk) + 1):
                part.write(chunk)


def test_a_workbook_that_unpacks_to_a_gigabyte_is_refused_unread_and_the_night_goes_on(home):
    write_delivery(home, "registry", good_frame("registry"))
    folder = home / "landing" / "disaster" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    bomb = folder / "bomb.xlsx"
    _bomb(bomb, 900 << 20)
    assert bomb.stat().st_size < 3 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {outcome.source: outcome for outcome in ingest_landing(home, DELIVERY).files}
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert outcomes["disaster"].status == "rejected"
    assert "unpacks to" in outcomes["disaster"].message
    assert f"more than {XLSX_MAX_UNPACKED_BYTES:,}" in outcomes["disaster"].message
    assert outcomes["registry"].status == "accepted"  # the rest of the night, whole
    assert len(read_source(home, "registry", DELIVERY)) == 3
    assert grown_kib < 200_000  # refused unread: the process did not grow by the bomb


def test_a_file_that_is_not_a_workbook_at_all_is_refused(home):
    folder = home / "landing" / "disaster" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    (folder / "renamed.xlsx").write_bytes(b"id,name\n1,2\n")
    [outcome] = ingest_landing(home, DELIVERY).files
    assert outcome.status == "rejected" and "cannot read as xlsx: not a workbook" in outcome.message


def test_a_parquet_timestamp_with_a_time_of_day_is_a_bad_date_as_in_a_csv(home):
    frame = good_frame("housing")
    days = pd.to_datetime(frame["assess_date"])
    frame["assess_date"] = days
    frame.loc[1, "assess_date"] = days[1] + pd.Timedelta(hours=13, minutes=45)
    write_delivery(home, "housing", frame, fmt="parquet")
    csv = good_frame("housing")
    csv.loc[1, "assess_date"] = f"{days[1].date()} 13:45:00"
    write_delivery(home, "housing", csv, fmt="csv", delivery=DELIVERY - dt.timedelta(days=1))
    report = ingest_landing(home, DELIVERY)
    for outcome in report.files:
        assert outcome.status == "accepted"
        assert (outcome.rows_accepted, outcome.rows_quarantined) == (len(frame) - 1, 1)
        assert outcome.reasons == {"bad_date": 1}


def test_a_zoned_parquet_timestamp_at_midnight_in_chongqing_is_that_date(home):
    frame = good_frame("housing")
    local = pd.to_datetime(frame["assess_date"]).dt.tz_localize("Asia/Shanghai")
    frame["assess_date"] = local.dt.tz_convert("UTC")  # stored as the previous day 16:00 UTC
    write_delivery(home, "housing", frame, fmt="parquet")
    [outcome] = ingest_landing(home, DELIVERY).files
    assert (outcome.status, outcome.rows_quarantined) == ("accepted", 0)
    read = read_source(home, "housing", DELIVERY)["assess_date"].dt.date
    assert sorted(read) == sorted(local.dt.date)


# --------------------------------------------------------------------------- overlong cells


def _dictionary_bomb(path, rows: int, value_bytes: int, kind: pa.DataType) -> None:
    """A Parquet file of disaster columns, each one value of ``value_bytes`` repeated."""
    value = pa.array(["A" * value_bytes]).cast(kind)
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    pq.write_table(pa.table({name: pa.DictionaryArray.from_arrays(indices, value)
                             for name in good_frame("disaster").columns}), path,
                   compression="zstd")


@pytest.mark.parametrize("kind", [pa.string(), pa.binary()])
def test_a_parquet_file_of_one_long_value_repeated_is_quarantined_without_unpacking_it(home,
                                                                                        kind):
    # Before: 1.8 KB that unpacked to 10 GB (2,000 rows of 1 MB in five columns), 9.7 GiB peak.
    write_delivery(home, "registry", good_frame("registry"))
    folder = home / "landing" / "disaster" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    _dictionary_bomb(folder / "bomb.parquet", rows=5_000, value_bytes=1_000_000, kind=kind)
    assert (folder / "bomb.parquet").stat().st_size < 10_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {outcome.source: outcome for outcome in ingest_landing(home, DELIVERY).files}
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    bomb = outcomes["disaster"]
    # Every row quarantined: read and accounted for, and the delivery held as broken.
    assert (bomb.status, bomb.rows_read, bomb.rows_quarantined) == ("held", 5_000, 5_000)
    assert bomb.reasons == {"too_long": 5_000}
    assert outcomes["registry"].status == "accepted"  # the rest of the night, whole
    assert len(read_source(home, "registry", DELIVERY)) == 3
    quarantine = pd.read_parquet(next((home / "quarantine" / "disaster").glob("*.parquet")))
    assert quarantine["household_id"].str.len().max() == CUT_CELL_CHARS
    assert set(quarantine["_column"]) == {"event_id"}  # the first column cut names the row
    assert grown_kib < 300_000  # not the 25 GB the cells would unpack to


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet", "gb18030"])
def test_a_cell_longer_than_any_value_costs_its_row_alone_in_every_format(home, fmt):
    frame = good_frame("disaster")
    frame.loc[1, "household_id"] = "0" * (MAX_CELL_BYTES + 1)
    frame.loc[2, "disaster_type"] = "洪" * (MAX_CELL_BYTES // 3)  # 4,095 bytes: not cut
    write_delivery(home, "disaster", frame, fmt=fmt)
    [outcome] = ingest_landing(home, DELIVERY).files
    assert outcome.status == "accepted"
    assert outcome.reasons.get("too_long") == 1
    quarantine = pd.read_parquet(next((home / "quarantine" / "disaster").glob("*.parquet")))
    cut = quarantine[quarantine["_reason"] == "too_long"].iloc[0]
    assert (cut["_row"], cut["_column"]) == (2, "household_id")
    assert cut["household_id"] == "0" * CUT_CELL_CHARS
    assert "more than 4,096 bytes (cut)" in cut["_detail"]
    # The 4,095-byte value is no overlong cell (it may fail the code list, not this check).
    assert (quarantine["_reason"] == "too_long").sum() == 1


# --------------------------------------------------------------------------- Parquet limits


def test_a_parquet_file_cut_short_or_renamed_is_refused_and_the_night_goes_on(home):
    write_delivery(home, "registry", good_frame("registry"))
    path = write_delivery(home, "disaster", good_frame("disaster"), fmt="parquet")
    path.write_bytes(path.read_bytes()[:-100])
    other = path.with_name("renamed.parquet")
    other.write_bytes(b"event_id,household_id\n1,2\n")
    outcomes = {outcome.file: outcome for outcome in ingest_landing(home, DELIVERY).files}
    for name in ("data.parquet", "renamed.parquet"):
        [outcome] = [o for file, o in outcomes.items() if file.endswith(name)]
        assert outcome.status == "rejected"
        assert "does not end as a Parquet file does" in outcome.message
    assert len(read_source(home, "registry", DELIVERY)) == 3


@pytest.mark.parametrize(("limit", "value", "words"), [
    ("PARQUET_MAX_FOOTER_BYTES", 64, "Parquet footer is"),
    ("PARQUET_MAX_ROWS", 2, "3 rows, more than 2: not read"),
    ("PARQUET_MAX_TEXT_BYTES", 40, "unpack to more than 40 bytes of text"),
])
def test_a_parquet_file_past_a_limit_is_refused_naming_it(home, monkeypatch, limit, value,
                                                          words):
    monkeypatch.setattr(landing, limit, value)
    write_delivery(home, "registry", good_frame("registry"))
    write_delivery(home, "disaster", good_frame("disaster"), fmt="parquet")
    outcomes = {outcome.source: outcome for outcome in ingest_landing(home, DELIVERY).files}
    assert outcomes["disaster"].status == "rejected"
    assert words in outcomes["disaster"].message
    assert outcomes["registry"].status == "accepted"
    assert not list(home.glob("lake/disaster/**/*.parquet"))  # nothing of the file kept


def test_a_parquet_batch_read_in_pieces_numbers_its_rows_as_one_would(home, monkeypatch):
    frame = pd.concat([good_frame("disaster")] * 40, ignore_index=True)
    frame["event_id"] = [f"E{number:05d}" for number in range(len(frame))]
    frame.loc[[7, 93], "loss_amount"] = "-5"
    write_delivery(home, "disaster", frame, fmt="parquet")
    monkeypatch.setattr(landing, "PARQUET_PIECE_TEXT_BYTES", 200)  # pieces of a few rows
    raw = landing.open_delivered_file(next((home / "landing" / "disaster").rglob("*.parquet")),
                                      SOURCES["disaster"], "x.parquet")
    batches = list(raw.batches)
    assert len(batches) > 10
    rows = pd.concat([batch.frame for batch in batches], ignore_index=True)
    assert rows[ROW].tolist() == list(range(1, len(frame) + 1))
    assert rows["event_id"].tolist() == frame["event_id"].tolist()
    [outcome] = ingest_landing(home, DELIVERY).files
    assert outcome.reasons == {"negative_amount": 2}
    quarantine = pd.read_parquet(next((home / "quarantine" / "disaster").glob("*.parquet")))
    assert sorted(quarantine["_row"]) == [8, 94]


# --------------------------------------------------------------------------- time


def test_a_file_still_being_read_past_the_time_limit_is_refused_and_the_others_are_read(
        home, monkeypatch):
    # Each look at the clock is two seconds later: a file of one batch takes two, one of
    # many batches passes the limit of five.
    clock = iter(range(0, 10_000, 2))
    monkeypatch.setattr(landing, "monotonic", lambda: next(clock))  # this module's clock only
    write_delivery(home, "registry", good_frame("registry"))
    big = pd.concat([good_frame("disaster")] * 2_000, ignore_index=True)
    big["event_id"] = [f"E{number:05d}" for number in range(len(big))]
    write_delivery(home, "disaster", big)
    batching = landing.Batching(csv_bytes=4_096, file_seconds=5)
    outcomes = {outcome.source: outcome
                for outcome in ingest_landing(home, DELIVERY, batching=batching).files}
    assert outcomes["disaster"].status == "rejected"
    assert "still being read after 5 s" in outcomes["disaster"].message
    assert "split it into smaller files" in outcomes["disaster"].message
    assert outcomes["registry"].status == "accepted"
    assert len(read_source(home, "registry", DELIVERY)) == 3
    assert not list(home.glob("lake/disaster/**/*.parquet"))  # nothing of the file kept
