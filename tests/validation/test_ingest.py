"""Ingest (contract section 2): formats, headers, quarantine reasons, rejection, idempotence."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
from deliveries import DELIVERY, GOOD_ROWS, PERSON_IDS, good_frame, ids, write_delivery
from row_faults import FAULTS

from monitor.contract.sources import SOURCES
from monitor.io import files as lake_files
from monitor.io import ingest as lake_ingest
from monitor.io.deliveries import record_decision
from monitor.io.ingest import ingest_landing
from monitor.io.lake import counties_as_of, read_manifest, read_source

FORMATS = ["csv", "csv-bom", "gb18030", "xlsx", "parquet"]
PROVENANCE = ["_delivery_date"]


def lake_rows(home, source):
    return read_source(home, source, DELIVERY).drop(columns=PROVENANCE)


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_format_and_header_language_gives_identical_lake_rows(tmp_path, source):
    baseline = None
    for fmt in FORMATS:
        for chinese in (False, True):
            home = tmp_path / f"{fmt}-{chinese}"
            write_delivery(home, source, good_frame(source, chinese=chinese), fmt=fmt)
            report = ingest_landing(home, DELIVERY)
            assert [f.status for f in report.files] == ["accepted"], report.files
            rows = lake_rows(home, source)
            assert len(rows) == len(GOOD_ROWS[source]["household_id" if "household_id" in
                                                     GOOD_ROWS[source] else "id_number"])
            if baseline is None:
                baseline = rows
            else:
                pd.testing.assert_frame_equal(rows, baseline, check_dtype=False)


def test_headers_are_matched_after_trimming_and_in_any_case(home):
    frame = good_frame("housing").rename(columns={"household_id": " Household_ID ",
                                                  "rating": "RATING"})
    frame["备注"] = "ignored extra column"
    write_delivery(home, "housing", frame)
    report = ingest_landing(home, DELIVERY)
    assert report.files[0].rows_accepted == len(frame)


def _bad(source: str, column: str, value: str, row: int = 0) -> pd.DataFrame:
    frame = good_frame(source)
    frame.loc[row, column] = value
    return frame




@pytest.mark.parametrize(("source", "column", "value", "reason"), FAULTS,
                         ids=[f"{s}.{c}={r}" for s, c, _, r in FAULTS])
def test_a_row_fault_goes_to_quarantine_with_its_reason(home, source, column, value, reason):
    frame = _bad(source, column, value)
    write_delivery(home, source, frame)
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert outcome.status == "accepted"
    assert outcome.rows_read == len(frame) == outcome.rows_accepted + outcome.rows_quarantined
    assert outcome.rows_quarantined == 1
    quarantined = pd.read_parquet(next((home / "quarantine" / source).glob("*.parquet")))
    assert quarantined["_reason"].tolist() == [reason]
    assert quarantined["_row"].tolist() == [1]
    # The original text is kept, so the department can be told exactly what to fix.
    assert quarantined[column].fillna("").tolist() == [value]
    assert quarantined["_file"].iloc[0].startswith(f"landing/{source}/")
    assert len(lake_rows(home, source)) == len(frame) - 1


def test_quarantine_detail_never_shows_an_id_number(home):
    bad_id = PERSON_IDS[0][:17] + ("0" if PERSON_IDS[0][-1] != "0" else "1")
    write_delivery(home, "registry", _bad("registry", "id_number", bad_id))
    ingest_landing(home, DELIVERY)
    quarantined = pd.read_parquet(next((home / "quarantine" / "registry").glob("*.parquet")))
    assert bad_id not in quarantined["_detail"].iloc[0]


def test_duplicate_keys_within_a_delivery_keep_the_first_row(home):
    frame = good_frame("medical")
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    write_delivery(home, "medical", frame)
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined) == (4, 3, 1)
    assert outcome.reasons == {"duplicate_key": 1}


def test_duplicate_keys_across_files_of_one_delivery_are_caught(home):
    write_delivery(home, "housing", good_frame("housing"), name="a")
    write_delivery(home, "housing", good_frame("housing").iloc[[0]], name="b")
    report = ingest_landing(home, DELIVERY)
    assert sum(f.rows_quarantined for f in report.files) == 1
    # A file added to the same delivery in a later run is checked against the earlier one.
    write_delivery(home, "housing", good_frame("housing").iloc[[2]], name="c")
    later = ingest_landing(home, DELIVERY).files
    assert [f.reasons for f in later] == [{"duplicate_key": 1}]


def test_legacy_ids_and_lowercase_x_are_normalised_in_the_lake(home):
    frame = good_frame("registry")
    frame.loc[0, "id_number"] = "110105491231002"
    frame.loc[1, "id_number"] = PERSON_IDS[1].lower()
    write_delivery(home, "registry", frame)
    ingest_landing(home, DELIVERY)
    rows = lake_rows(home, "registry")
    assert "11010519491231002X" in rows["id_number"].tolist()
    assert PERSON_IDS[1].endswith("X") and PERSON_IDS[1] in rows["id_number"].tolist()
    assert rows.loc[rows["id_number"] == "11010519491231002X", "sex"].item() == "女"


def test_ragged_csv_rows_are_quarantined_not_lost(home):
    path = write_delivery(home, "housing", good_frame("housing"))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "0009,2024-01-01,B,extra")  # becomes data row 2
    lines.append("0010")                          # data row 5
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined) == (5, 3, 2)
    assert outcome.reasons == {"malformed_row": 2}
    quarantined = pd.read_parquet(next((home / "quarantine" / "housing").glob("*.parquet")))
    assert quarantined["_row"].tolist() == [2, 5]
    assert quarantined["_raw_line"].tolist() == ["0009,2024-01-01,B,extra", "0010"]
    # Good rows keep their own row numbers, so a department can find them in the file.
    rows = pq.read_table(home / "lake" / "housing").to_pandas().sort_values("_row")
    assert rows["_row"].tolist() == [1, 3, 4]


def test_missing_required_column_rejects_only_that_file(home):
    write_delivery(home, "income", good_frame("income").drop(columns="annual_income"),
                   name="bad")
    write_delivery(home, "housing", good_frame("housing"))
    report = ingest_landing(home, DELIVERY)
    outcomes = {f.source: f for f in report.files}
    assert outcomes["income"].status == "rejected"
    message = outcomes["income"].message
    assert "landing/income/2024-06-30/bad.csv" in message
    assert "annual_income" in message and "家庭年收入" in message
    assert outcomes["housing"].status == "accepted"
    assert len(lake_rows(home, "housing")) == len(GOOD_ROWS["housing"]["household_id"])


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "empty"),
    ("household_id,assess_date,rating\n".encode("utf-16"), "neither UTF-8 nor GB18030"),
])
def test_unreadable_files_are_rejected_with_a_message(home, content, problem):
    folder = home / "landing" / "housing" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    (folder / "x.csv").write_bytes(content)
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert outcome.status == "rejected"
    assert "landing/housing/2024-06-30/x.csv" in outcome.message and problem in outcome.message


def test_header_only_file_is_accepted_with_no_rows(home):
    write_delivery(home, "housing", good_frame("housing").iloc[:0])
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert (outcome.status, outcome.rows_read) == ("accepted", 0)


def test_unknown_folders_and_future_deliveries_are_reported_or_left(home):
    write_delivery(home, "housing", good_frame("housing"), delivery=DELIVERY + dt.timedelta(1))
    (home / "landing" / "weather").mkdir(parents=True)
    report = ingest_landing(home, DELIVERY)
    assert report.files == []
    assert any("landing/weather" in notice for notice in report.notices)
    assert [f.status for f in ingest_landing(home, DELIVERY + dt.timedelta(1)).files] == [
        "accepted"]


def _lake_snapshot(home):
    return {p.relative_to(home).as_posix(): p.read_bytes()
            for p in sorted((home / "lake").rglob("*.parquet"))}


def test_ingesting_the_same_file_twice_changes_nothing(home):
    write_delivery(home, "medical", good_frame("medical"))
    ingest_landing(home, DELIVERY)
    before, manifest = _lake_snapshot(home), read_manifest(home)
    assert ingest_landing(home, DELIVERY).files == []
    assert _lake_snapshot(home) == before
    pd.testing.assert_frame_equal(read_manifest(home), manifest)


def test_an_unchanged_file_is_not_hashed_again_and_a_touched_one_only_once(home, monkeypatch):
    import os

    path = write_delivery(home, "medical", good_frame("medical"))
    ingest_landing(home, DELIVERY)
    hashed = []
    real = lake_ingest.sha256_of
    monkeypatch.setattr(lake_ingest, "sha256_of",
                        lambda file: hashed.append(file.name) or real(file))
    assert ingest_landing(home, DELIVERY).files == [] and hashed == []
    # The same bytes with a new time: hashed once, found the same, and its time noted.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert ingest_landing(home, DELIVERY).files == [] and hashed == [path.name]
    assert read_manifest(home)["mtime_ns"].tolist() == [path.stat().st_mtime_ns]
    assert ingest_landing(home, DELIVERY).files == [] and hashed == [path.name]
    # New bytes of the same size, at a new time: read again.
    frame = good_frame("medical")
    frame.iloc[0, frame.columns.get_loc("claim_id")] = frame.iloc[0]["claim_id"][::-1]
    write_delivery(home, "medical", frame)
    assert path.stat().st_size == read_manifest(home)["size_bytes"].iloc[0]
    assert [outcome.status for outcome in ingest_landing(home, DELIVERY).files] == ["accepted"]


def test_same_bytes_delivered_again_are_not_ingested_twice(home):
    first = write_delivery(home, "medical", good_frame("medical"))
    later = DELIVERY + dt.timedelta(days=5)
    copy = home / "landing" / "medical" / later.isoformat() / "again.csv"
    copy.parent.mkdir(parents=True)
    shutil.copy(first, copy)
    report = ingest_landing(home, later)
    assert [f.status for f in report.files] == ["accepted", "duplicate"]
    assert len(read_source(home, "medical", later)) == len(GOOD_ROWS["medical"]["claim_id"])


def test_snapshot_is_the_newest_delivery_and_events_accumulate(home):
    early, late = dt.date(2024, 1, 31), dt.date(2024, 6, 30)
    write_delivery(home, "housing", good_frame("housing").iloc[:2], delivery=early)
    write_delivery(home, "housing", good_frame("housing").iloc[[2]], delivery=late)
    first_claims = good_frame("medical").iloc[:2].copy()
    first_claims["settle_date"] = "2024-01-01"
    write_delivery(home, "medical", first_claims, delivery=early)
    corrected = good_frame("medical").iloc[[1, 2]].copy()
    corrected.loc[1, "out_of_pocket"] = "100"  # a claim delivered again replaces the earlier row
    write_delivery(home, "medical", corrected, delivery=late)
    ingest_landing(home, late)

    assert read_source(home, "housing", early)["household_id"].tolist() == ["0001", "0002"]
    assert read_source(home, "housing", late)["household_id"].tolist() == ["0003"]
    assert read_source(home, "housing", early - dt.timedelta(1)).empty
    claims = read_source(home, "medical", late).set_index("claim_id")
    assert sorted(claims.index) == ["C1", "C2", "C3"]
    assert claims.loc["C2", "out_of_pocket"] == 100
    assert sorted(read_source(home, "medical", early)["claim_id"]) == ["C1", "C2"]


def test_one_county_is_read_without_the_others(home):
    for source in ("registry", "medical", "housing"):
        write_delivery(home, source, good_frame(source))
    ingest_landing(home, DELIVERY)
    # One file per delivered file, each county in row groups of its own.
    (lake_file,) = (home / "lake" / "medical").iterdir()
    metadata = pq.ParquetFile(lake_file).metadata
    county_column = metadata.schema.names.index("county_code")
    statistics = [metadata.row_group(number).column(county_column).statistics
                  for number in range(metadata.num_row_groups)]
    assert [(s.min, s.max) for s in statistics] == [("500101", "500101"), ("500102", "500102")]
    assert read_source(home, "medical", DELIVERY, county="500102")["claim_id"].tolist() == ["C3"]
    # The lake is plain Parquet: pyarrow reads a county without the project.
    table = pq.read_table(home / "lake" / "medical", filters=[("county_code", "=", "500101")])
    assert sorted(table.column("claim_id").to_pylist()) == ["C1", "C2"]
    # Every file of a source shares one schema, so the whole folder reads as one table.
    sparse = good_frame("registry").assign(phone="", status_date="", status="正常")
    write_delivery(home, "registry", sparse, delivery=DELIVERY + dt.timedelta(1))
    ingest_landing(home, DELIVERY + dt.timedelta(1))
    whole = pq.read_table(home / "lake" / "registry")
    assert sorted(map(str, whole.column("county_code").to_pylist())) == [
        "500101", "500101", "500101", "500101", "500102", "500102"]


def _in_county_folders(home):
    """Lay the lake out as it was before one file per delivered file: a folder per county."""
    import pyarrow.compute as pc

    for lake_file in sorted((home / "lake").glob("*/*.parquet")):
        table = pq.read_table(lake_file)
        for county in sorted(set(table.column("county_code").to_pylist())):
            piece = table.filter(pc.equal(table.column("county_code"), county))
            folder = lake_file.parent / f"county_code={county}"
            folder.mkdir(exist_ok=True)
            pq.write_table(piece.drop_columns(["county_code"]), folder / lake_file.name)
        lake_file.unlink()


def test_a_lake_in_county_folders_is_refused_by_readers_and_laid_out_again_by_the_ingest(home):
    from monitor.io.lake import LakeLayoutError

    for source in ("registry", "medical", "housing"):
        write_delivery(home, source, good_frame(source))
    ingest_landing(home, DELIVERY)
    before = {source: read_source(home, source, DELIVERY, county="500101")
              for source in ("registry", "medical", "housing")}
    _in_county_folders(home)
    assert (home / "lake" / "medical" / "county_code=500102").is_dir()
    # Read as it is, it would look empty: every household would drop off the lists.
    with pytest.raises(LakeLayoutError, match="lake/registry: the lake is in county folders"):
        read_source(home, "registry", DELIVERY, county="500101")
    # A dead writer's temporary in a county folder goes with it.
    (home / "lake" / "medical" / "county_code=500101" / ".x.parquet.999999999.tmp").write_bytes(
        b"half")
    assert ingest_landing(home, DELIVERY).files == []
    assert not list((home / "lake").glob("*/county_code=*"))
    for source, rows in before.items():
        pd.testing.assert_frame_equal(read_source(home, source, DELIVERY, county="500101"), rows)
    assert counties_as_of(home, DELIVERY) == ["500101", "500102"]


def test_rows_the_registry_does_not_know_yet_are_found_later(home):
    newcomer = ids("1990-01-01", sequence=51)[0]
    claims = good_frame("medical").iloc[[0]].copy()
    claims["id_number"] = newcomer
    write_delivery(home, "medical", claims, delivery=dt.date(2024, 1, 31))
    registry = good_frame("registry")
    registry.loc[2, "id_number"] = newcomer
    write_delivery(home, "registry", registry)
    ingest_landing(home, DELIVERY)
    assert read_source(home, "medical", DELIVERY, county="500102")["claim_id"].tolist() == ["C1"]
    assert read_source(home, "medical", DELIVERY, county="500101").empty


class Killed(Exception):
    pass


@pytest.mark.parametrize("fail_at_write", [1, 2, 3, 5, 8])
def test_an_ingest_killed_between_writes_leaves_a_readable_lake_and_a_rerun_completes(
        tmp_path, monkeypatch, fail_at_write):
    def deliver(home):
        for source in ("registry", "medical", "housing"):
            write_delivery(home, source, _bad(source, "id_number" if source != "housing"
                                              else "rating", "bad" if source != "housing"
                                              else "Z"))
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    deliver(clean)
    ingest_landing(clean, DELIVERY)
    deliver(crashed)

    # Every file the ingest finishes (lake, quarantine, manifest) is a point to be killed at.
    real_move, real_write = lake_ingest._move_into_place, lake_files.write_table
    calls = {"n": 0}

    def killed_at(real):
        def finish(*args):
            calls["n"] += 1
            if calls["n"] == fail_at_write:
                raise Killed
            real(*args)
        return finish

    monkeypatch.setattr(lake_ingest, "_move_into_place", killed_at(real_move))
    monkeypatch.setattr(lake_files, "write_table", killed_at(real_write))
    with pytest.raises(Killed):
        ingest_landing(crashed, DELIVERY)
    monkeypatch.setattr(lake_ingest, "_move_into_place", real_move)
    monkeypatch.setattr(lake_files, "write_table", real_write)
    # Readable in between: each source is either absent or complete.
    for source in ("registry", "medical", "housing"):
        rows = read_source(crashed, source, DELIVERY)
        assert len(rows) in (0, len(lake_rows(clean, source)))
    assert not list(crashed.rglob("*.tmp"))
    ingest_landing(crashed, DELIVERY)
    for source in ("registry", "medical", "housing"):
        pd.testing.assert_frame_equal(lake_rows(crashed, source), lake_rows(clean, source))
    counts = ["source", "status", "rows_read", "rows_accepted", "rows_quarantined"]
    pd.testing.assert_frame_equal(read_manifest(crashed)[counts], read_manifest(clean)[counts])


def test_a_character_cut_by_the_encoding_probe_does_not_change_the_encoding(home):
    frame = pd.concat([good_frame("employment", chinese=True)] * 3000, ignore_index=True)
    frame["事件日期"] = pd.date_range("1990-01-01", periods=len(frame)).strftime("%Y-%m-%d")
    probe = 1 << 16
    for fmt, encoding in (("csv-bom", "utf-8-sig"), ("gb18030", "gb18030")):
        # Pad an ignored column until the 64 KiB header probe ends inside a character.
        for padding in range(64):
            frame["备注"] = "x" * padding
            head = frame.to_csv(index=False).encode(encoding)[:probe]
            try:
                head.decode(encoding)
            except UnicodeDecodeError:
                break
        else:
            pytest.fail("no padding cuts a character at the probe boundary")
        target = home / fmt
        write_delivery(target, "employment", frame, fmt=fmt)
        outcome = ingest_landing(target, DELIVERY).files[0]
        assert (outcome.status, outcome.rows_accepted) == ("accepted", len(frame)), outcome
        assert outcome.message.endswith("UTF-8" if fmt == "csv-bom" else "GB18030")


def test_a_file_replaced_at_the_same_path_replaces_its_rows(home):
    path = write_delivery(home, "housing", _bad("housing", "rating", "E"))
    ingest_landing(home, DELIVERY)
    assert len(lake_rows(home, "housing")) == len(GOOD_ROWS["housing"]["rating"]) - 1
    write_delivery(home, "housing", good_frame("housing"))  # the department's corrected file
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert (outcome.file, outcome.rows_quarantined) == (path.relative_to(home).as_posix(), 0)
    assert lake_rows(home, "housing")["rating"].tolist() == GOOD_ROWS["housing"]["rating"]
    assert read_manifest(home)["status"].tolist() == ["superseded", "accepted"]


def test_reading_recent_events_only_still_lets_a_correction_replace_its_row(home):
    early, late = dt.date(2024, 1, 31), dt.date(2024, 6, 30)
    claims = good_frame("medical").copy()
    claims["settle_date"] = ["2023-06-01", "2024-01-10", "2024-01-20"]
    write_delivery(home, "medical", claims, delivery=early)
    corrected = claims.iloc[[2]].copy()
    corrected["settle_date"] = "2023-12-01"  # C3 was settled earlier than first reported
    write_delivery(home, "medical", corrected, delivery=late)
    ingest_landing(home, late)
    recent = read_source(home, "medical", late, since=("settle_date", dt.date(2024, 1, 1)))
    assert recent["claim_id"].tolist() == ["C2"]
    everything = read_source(home, "medical", late).set_index("claim_id")
    assert everything.loc["C3", "settle_date"] == pd.Timestamp("2023-12-01")


def test_full_width_digits_are_read_as_the_digits_they_stand_for(home):
    frame = good_frame("registry")
    typed = frame.loc[[0, 1], ["id_number", "region_code"]].copy()
    frame.loc[0, "id_number"] = "５００１０１１９５００３０１０１１Ｘ"
    frame.loc[1, "region_code"] = "５００１０１００１２０１"
    write_delivery(home, "registry", frame)
    outcome = ingest_landing(home, DELIVERY).files[0]
    assert (outcome.status, outcome.rows_accepted, outcome.reasons) == ("accepted", 3, {})
    rows = read_source(home, "registry", DELIVERY).set_index("name")
    names = frame["name"]
    assert rows.loc[names[0], "id_number"] == "50010119500301011X"
    assert rows.loc[names[1], "region_code"] == typed.loc[1, "region_code"]


def test_a_file_whose_rows_cannot_be_validated_is_rejected_alone(home, monkeypatch):
    from monitor.validation import checks

    real = checks.parse_rows

    def explode(raw, source, delivery_date, **options):
        if source.name == "income":
            raise RuntimeError("unforeseen")
        return real(raw, source, delivery_date, **options)

    monkeypatch.setattr(checks, "parse_rows", explode)
    write_delivery(home, "income", good_frame("income"))
    write_delivery(home, "housing", good_frame("housing"))
    outcomes = {f.source: f for f in ingest_landing(home, DELIVERY).files}
    assert outcomes["income"].status == "rejected"
    assert "landing/income/2024-06-30/data.csv" in outcomes["income"].message
    assert "RuntimeError: unforeseen" in outcomes["income"].message
    assert outcomes["housing"].status == "accepted"


def test_a_rejected_file_delivered_again_is_rejected_again_and_the_snapshot_holds(home):
    write_delivery(home, "registry", good_frame("registry"), delivery=dt.date(2024, 6, 1))
    broken = good_frame("registry").drop(columns="status")
    for day in (dt.date(2024, 6, 10), dt.date(2024, 6, 20)):
        write_delivery(home, "registry", broken, delivery=day)
    report = ingest_landing(home, DELIVERY)
    assert [f.status for f in report.files] == ["accepted", "rejected", "rejected"]
    manifest = read_manifest(home)
    assert manifest["lake_file"].dropna().tolist() == [manifest["lake_file"].iloc[0]]
    assert len(read_source(home, "registry", DELIVERY)) == len(GOOD_ROWS["registry"]["name"])


def test_a_shifted_id_number_is_never_echoed_in_a_quarantine_detail(home):
    frame = good_frame("assistance")
    frame.loc[0, "program"] = PERSON_IDS[0]  # the department's columns slipped
    write_delivery(home, "assistance", frame)
    ingest_landing(home, DELIVERY)
    quarantined = pd.read_parquet(next((home / "quarantine" / "assistance").glob("*.parquet")))
    assert quarantined["_reason"].tolist() == ["code_not_listed"]
    assert PERSON_IDS[0] not in quarantined["_detail"].iloc[0]
    assert "[masked]" in quarantined["_detail"].iloc[0]


def test_rows_follow_a_household_that_moves_county(home):
    before, moved_on, after = dt.date(2024, 3, 1), dt.date(2024, 5, 1), dt.date(2024, 6, 30)
    write_delivery(home, "registry", good_frame("registry"), delivery=before)
    claims = good_frame("medical")
    claims["settle_date"] = "2024-03-15"
    write_delivery(home, "medical", claims, delivery=dt.date(2024, 4, 1))
    write_delivery(home, "income", good_frame("income"), delivery=dt.date(2024, 4, 1))
    moved = good_frame("registry")
    moved.loc[2, "region_code"] = "500101001201"  # household 0002 moves from 涪陵区 to 万州区
    write_delivery(home, "registry", moved, delivery=moved_on)
    ingest_landing(home, after)

    def claims_in(county, day):
        return sorted(read_source(home, "medical", day, county=county)["claim_id"])

    assert claims_in("500102", before + dt.timedelta(days=45)) == ["C3"]
    assert claims_in("500101", after) == ["C1", "C2", "C3"]
    assert claims_in("500102", after) == []
    income = read_source(home, "income", after, county="500101")
    assert sorted(income["household_id"]) == ["0001", "0002"]
    assert set(income["county_code"]) == {"500101"}


def _extra_income_file(home, day: dt.date) -> None:
    """A second income file for a sample delivery, its faults spread over many small batches."""
    lines = ["household_id,assess_date,annual_income,employment_cost"]
    lines += [f"{9000 + number:012d},2026-01-01,{1000 + number},0" for number in range(1, 301)]
    lines[250] = lines[5]                                 # row 250 repeats row 5: far apart
    lines[100] = "000000000001,2026-01-01,5000,0"         # repeats a key of the first file
    lines[200] = lines[200].replace(",1200,", ",-5,")     # a negative amount
    lines.insert(151, "x,y")                              # data row 151: ragged
    (home / "landing" / "income" / day.isoformat() / "zz_extra.csv").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")


def _move_first_household(home, day: dt.date) -> None:
    """Move the first household of a sample registry delivery to the other county."""
    path = home / "landing" / "registry" / day.isoformat() / f"registry_{day}.csv"
    registry = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    household, region = registry.columns[2], registry.columns[4]
    assert (household, region) == ("household_id", "region_code")
    first = registry[household] == registry[household].iloc[0]
    county = registry.loc[first, region].iloc[0][:6]
    registry.loc[first, region] = "500102001201" if county == "500101" else "500101001201"
    registry.to_csv(path, index=False, encoding="utf-8-sig")


def test_files_read_in_small_batches_give_the_lake_of_files_read_whole(tmp_path):
    from monitor.io.landing import Batching, open_delivered_file
    from monitor.io.sample_writer import write_sample

    day = dt.date(2026, 6, 30)
    whole, batched = tmp_path / "whole", tmp_path / "batched"
    write_sample(whole, 150, 11, day, places=("500101", "500102"), monthly=False)
    # The last two registry deliveries and what came with them: every format, and a move.
    for folder in whole.glob("landing/*/*"):
        if folder.name < "2025-12-30":
            shutil.rmtree(folder)
    _move_first_household(whole, day)
    _extra_income_file(whole, day)
    shutil.copytree(whole, batched)
    small = Batching(csv_bytes=2048, parquet_rows=20)
    registry_file = whole / "landing" / "registry" / day.isoformat() / f"registry_{day}.csv"
    assert len(list(open_delivered_file(registry_file, SOURCES["registry"], "r.csv",
                                        small).batches)) > 10
    assert any(whole.glob("landing/*/*/*.parquet"))

    ingest_landing(whole, day)
    report = ingest_landing(batched, day, batching=small)

    extra = next(f for f in report.files if f.file.endswith("zz_extra.csv"))
    assert (extra.rows_read, extra.rows_accepted, extra.rows_quarantined) == (301, 297, 4)
    assert extra.reasons == {"duplicate_key": 2, "malformed_row": 1, "negative_amount": 1}
    counts = ["file", "status", "rows_read", "rows_accepted", "rows_quarantined", "lake_file"]
    pd.testing.assert_frame_equal(read_manifest(batched)[counts], read_manifest(whole)[counts])
    for source in SOURCES:
        pd.testing.assert_frame_equal(read_source(batched, source, day),
                                      read_source(whole, source, day))
    written = sorted(path.relative_to(whole) for folder in ("quarantine", "state/county_moves")
                     for path in (whole / folder).rglob("*.parquet"))
    assert any(path.parts[0] == "quarantine" for path in written)
    assert any(path.parts[1] == "county_moves" for path in written)
    assert written == sorted(path.relative_to(batched) for folder in ("quarantine",
                             "state/county_moves") for path in (batched / folder).rglob(
                                 "*.parquet"))
    for path in written:
        expected, got = (pd.read_parquet(home / path) for home in (whole, batched))
        order = [column for column in ("_row", "kind", "key") if column in expected]
        pd.testing.assert_frame_equal(got.sort_values(order, ignore_index=True),
                                      expected.sort_values(order, ignore_index=True))


def test_a_file_rejected_part_way_leaves_nothing_and_its_keys_do_not_count(home):
    from monitor.io.landing import Batching

    folder = home / "landing" / "income" / DELIVERY.isoformat()
    folder.mkdir(parents=True)
    header = "household_id,assess_date,annual_income\n"
    rows = "".join(f"{number:04d},2024-01-01,100\n" for number in range(1, 400))
    # Hundreds of good rows, many batches, then a quote left open for longer than a block.
    (folder / "a.csv").write_text(header + rows + '0400,"2024\n' + "x" * 5000 + "\n",
                                  encoding="utf-8")
    (folder / "b.csv").write_text(header + "0001,2024-02-01,200\n", encoding="utf-8")
    report = ingest_landing(home, DELIVERY, batching=Batching(csv_bytes=2048))
    first, second = report.files
    assert first.status == "rejected"
    assert "a.csv" in first.message and "quote left open" in first.message
    # The rejected file's rows were never accepted, so b.csv's 0001 is no repeat.
    assert (second.status, second.rows_accepted) == ("accepted", 1)
    assert read_source(home, "income", DELIVERY)["household_id"].tolist() == ["0001"]
    assert not list(home.rglob("*.tmp"))
    assert len(list((home / "lake" / "income").rglob("*.parquet"))) == 1


def _trailing_commas(home, rows: int, every: int) -> None:
    """An income file in which every ``every``-th row ends with a comma (one cell too many)."""
    folder = home / "landing" / "income" / DELIVERY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{number:012d},2024-01-01,100,0" + ("," if number % every == 0 else "")
             for number in range(1, rows + 1)]
    (folder / "data.csv").write_text(
        "household_id,assess_date,annual_income,employment_cost\n" + "\n".join(lines) + "\n",
        encoding="utf-8")


def test_malformed_lines_are_quarantined_batch_by_batch_under_their_row_numbers(home):
    from monitor.io.landing import Batching

    _trailing_commas(home, 600, every=3)
    # The parser meets malformed lines a block (here about 23) ahead of the rows it returns.
    outcome = ingest_landing(home, DELIVERY, batching=Batching(csv_bytes=2048,
                                                               malformed_lines=200)).files[0]
    # Read and checked as ever; a third of its rows quarantined holds the delivery back from
    # the state (monitor.triage.deliveries) until an operator releases it.
    assert (outcome.status, outcome.rows_read, outcome.rows_accepted,
            outcome.rows_quarantined) == ("held", 600, 400, 200)
    quarantined = pd.read_parquet(next((home / "quarantine" / "income").glob("*.parquet")))
    assert sorted(quarantined["_row"]) == list(range(3, 601, 3))
    assert (quarantined["_raw_line"].str[:12].astype(int) == quarantined["_row"]).all()
    assert lake_rows(home, "income").empty  # held
    record_decision(home, "income", DELIVERY, release=True, note="the department confirmed it")
    assert sorted(lake_rows(home, "income")["_row"]) == [n for n in range(1, 601) if n % 3]


@pytest.mark.parametrize("rows", [30, 100])
def test_a_file_of_malformed_lines_is_refused_past_the_limit_without_showing_them(home, rows):
    from monitor.io.landing import Batching

    _trailing_commas(home, rows, every=1)
    outcome = ingest_landing(home, DELIVERY, batching=Batching(malformed_lines=40)).files[0]
    if rows <= 40:
        # Under the limit, every line is quarantined as before.
        assert (outcome.status, outcome.rows_quarantined) == ("accepted", rows)
        assert outcome.reasons == {"malformed_row": rows}
        return
    # Past it the parser returns no row at all: the file is refused, its lines not shown.
    assert outcome.status == "rejected"
    assert outcome.message.startswith("landing/income/2024-06-30/data.csv: more than 40 lines")
    assert "header's 4 columns" in outcome.message
    assert "000000000001" not in outcome.message
    assert not list((home / "lake").rglob("*.parquet"))


@pytest.mark.parametrize("failure", [ValueError("unforeseen"), OSError(28, "No space left")])
def test_a_failure_part_way_rejects_the_file_but_a_disk_failure_stops_the_ingest(
        home, monkeypatch, failure):
    from monitor.io.landing import Batching

    _trailing_commas(home, 300, every=1000)
    real_check = lake_ingest._check_batch
    calls = {"n": 0}

    def failing_check(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise failure
        return real_check(*args)

    monkeypatch.setattr(lake_ingest, "_check_batch", failing_check)
    small = Batching(csv_bytes=2048)
    if isinstance(failure, OSError):
        with pytest.raises(OSError):
            ingest_landing(home, DELIVERY, batching=small)
    else:
        outcome = ingest_landing(home, DELIVERY, batching=small).files[0]
        assert outcome.status == "rejected"
        assert outcome.message == ("landing/income/2024-06-30/data.csv: rows could not be "
                                   "validated (ValueError: unforeseen); please report this file")
    # Either way the two batches written before are gone.
    assert calls["n"] == 3
    assert not list(home.rglob("*.tmp")) and not list((home / "lake").rglob("*.parquet"))


def test_a_part_that_cannot_take_the_files_schema_fails_while_written_and_leaves_nothing(
        tmp_path):
    import pyarrow as pa

    target = tmp_path / "lake" / "income" / "2024-06-30_0123456789abcdef.parquet"
    with pytest.raises(pa.ArrowInvalid), lake_ingest._StagedFiles() as staged:
        staged.write_part(target, "500101", pa.table({"amount": pa.array([1.5, 2.0])}))
        # Another county's rows whose column cannot be read as the file's: refused here, in
        # the batch (whose file is then rejected), not when the file is assembled.
        staged.write_part(target, "500102", pa.table({"amount": pa.array(["x"])}))
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
    with lake_ingest._StagedFiles() as staged:
        staged.write_part(target, "500102", pa.table({"amount": pa.array([3.5])}))
        staged.write_part(target, "500101", pa.table({"amount": pa.array([1], pa.int64())}))
        staged.commit()
    # Each county in its own row group, in county order, in the first part's schema.
    written = pq.ParquetFile(target)
    assert written.metadata.num_row_groups == 2
    assert written.schema_arrow.field("amount").type == pa.float64()
    assert written.read().column("amount").to_pylist() == [1.0, 3.5]
