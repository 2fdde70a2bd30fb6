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

import pandas as pd
from deliveries import DELIVERY, good_frame, write_delivery

from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_source
from monitor.io.landing import XLSX_MAX_UNPACKED_BYTES


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
