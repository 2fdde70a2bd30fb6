"""A catalogue of hostile deliveries: each refused or quarantined clearly, nothing else lost.

Every case writes one bad delivery beside a good file of another source and
ingests them. The good file must arrive whole; the bad one must come out as
its catalogue entry says: rejected with a message naming the file and the
problem, accepted with its faulty rows quarantined under a reason (every row
accounted for: read = accepted + quarantined), or left with a notice.
Row-level faults of single values (a bad check digit, a negative amount, …)
are catalogued in ``tests/row_faults.py`` (``FAULTS``, run by test_ingest.py); ``docs/faults.md``
lists both.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deliveries import DELIVERY, GOOD_ROWS, OTHER_REGION, PERSON_IDS, good_frame, ids
from deliveries import write_delivery as write

from monitor.io.ingest import ingest_landing

COMPANION = "housing"


def folder(home: Path, source: str, day: dt.date = DELIVERY) -> Path:
    path = home / "landing" / source / day.isoformat()
    path.mkdir(parents=True, exist_ok=True)
    return path


def good_csv(source: str) -> str:
    return good_frame(source).to_csv(index=False)


@dataclass(frozen=True)
class Case:
    """One hostile delivery and what must come of it."""

    kind: str
    build: Callable[[Path], None]
    source: str = "income"
    #: accepted, rejected, or none (no file taken: a notice, or left for later).
    status: str = "accepted"
    #: Quarantine reasons and their counts (accepted files).
    reasons: dict[str, int] = field(default_factory=dict)
    #: Rows accepted into the lake (accepted files), when it matters.
    accepted: int | None = None
    #: Words the rejection message or a notice must hold (besides the file's path).
    words: tuple[str, ...] = ()
    #: A (column, value) the lake must then hold, exactly.
    lake_has: tuple[str, str] | None = None


def csv_bytes(source: str, text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    def build(home: Path) -> None:
        (folder(home, source) / "data.csv").write_bytes(text.encode(encoding))
    return build


def raw(source: str, name: str, content: bytes) -> Callable[[Path], None]:
    def build(home: Path) -> None:
        (folder(home, source) / name).write_bytes(content)
    return build


def income_text() -> str:
    return good_csv("income")


def with_lines(extra: list[str], source: str = "income") -> str:
    return good_csv(source) + "\n".join(extra) + "\n"


def xlsx(build_book: Callable[[openpyxl.Workbook], None], source: str = "income"
         ) -> Callable[[Path], None]:
    def build(home: Path) -> None:
        book = openpyxl.Workbook()
        build_book(book)
        book.save(folder(home, source) / "data.xlsx")
    return build


def fill(sheet: object, frame: pd.DataFrame, first_row: int = 1) -> None:
    for offset, values in enumerate([list(frame.columns), *frame.to_numpy().tolist()]):
        for column, value in enumerate(values, start=1):
            sheet.cell(row=first_row + offset, column=column, value=value)


def parquet(table: pa.Table, source: str = "income") -> Callable[[Path], None]:
    def build(home: Path) -> None:
        pq.write_table(table, folder(home, source) / "data.parquet")
    return build


def income_frame() -> pd.DataFrame:
    return good_frame("income")


def registry_with(**changes: list[str]) -> Callable[[Path], None]:
    def build(home: Path) -> None:
        frame = good_frame("registry")
        extra = pd.DataFrame({column: [value[0] if column in changes else frame[column].iloc[0]]
                              for column, value in {**GOOD_ROWS["registry"], **changes}.items()},
                             dtype="string")
        write(home, "registry", pd.concat([frame, extra], ignore_index=True))
    return build


def truncated_xlsx(home: Path) -> None:
    buffer = io.BytesIO()
    income_frame().to_excel(buffer, index=False)
    (folder(home, "income") / "data.xlsx").write_bytes(buffer.getvalue()[:-200])


def big_csv(home: Path) -> None:
    rows = 200_000
    frame = pd.DataFrame({"household_id": [f"{n:08d}" for n in range(rows)],
                          "assess_date": "2024-01-01", "annual_income": "12000",
                          "employment_cost": "100"})
    frame.loc[7, "annual_income"] = "-5"
    frame.to_csv(folder(home, "income") / "big.csv", index=False)


def csv_in_zip(home: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("income.csv", income_text())
    (folder(home, "income") / "data.zip").write_bytes(buffer.getvalue())


def undated_folder(home: Path) -> None:
    path = home / "landing" / "income" / "2024-6-30"
    path.mkdir(parents=True)
    (path / "data.csv").write_text(income_text(), encoding="utf-8")


def ragged_quotes() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["household_id", "assess_date", "annual_income", "employment_cost"])
    writer.writerow(["0001", "2024-01-01", "12000", "1000"])
    writer.writerow(["0002\n二组", "2024-01-02", "8000", "0"])       # newline inside quotes
    writer.writerow(['00"03', "2024-01-03", "9000", "0"])            # an escaped quote
    return buffer.getvalue()


CATALOGUE = [
    # The file as a whole.
    Case("empty file", raw("income", "data.csv", b""), status="rejected",
         words=("empty",)),
    Case("header only", csv_bytes("income", "household_id,assess_date,annual_income\n"),
         accepted=0),
    Case("blank first line, no header", csv_bytes("income", "\n\n" + income_text()),
         status="rejected", words=("no header row",)),
    Case("UTF-16 text", csv_bytes("income", income_text(), "utf-16"), status="rejected",
         words=("neither UTF-8 nor GB18030",)),
    Case("Latin-1 bytes that are not GB18030",
         raw("income", "data.csv", b"household_id,assess_date,annual_income\n\xff\xfe,\x80\n"),
         status="rejected", words=("neither UTF-8 nor GB18030",)),
    Case("GB18030 with Chinese headers", lambda home: write(
        home, "income", good_frame("income", chinese=True), fmt="gb18030"), accepted=3),
    Case("UTF-8 with BOM", lambda home: write(home, "income", income_frame(), fmt="csv-bom"),
         accepted=3),
    Case("two files with BOMs joined into one (a second header mid-file)",
         csv_bytes("income", "\ufeff" + income_text() + "\ufeff" + income_text()),
         reasons={"bad_date": 1, "duplicate_key": 3}, accepted=3),
    Case("zero-width spaces and a BOM inside ids are removed",
         csv_bytes("income", with_lines(["\u200b0009\ufeff,2024-01-09,500,0"])),
         accepted=4, lake_has=("household_id", "0009")),
    Case("CRLF line ends", csv_bytes("income", income_text().replace("\n", "\r\n")),
         accepted=3),
    Case("ragged rows (too many and too few cells)",
         csv_bytes("income", with_lines(["0009,2024-01-09,500,0,extra", "0010"])),
         reasons={"malformed_row": 2}, accepted=3),
    Case("quoted cells with a newline and an escaped quote", csv_bytes("income",
                                                                       ragged_quotes()),
         accepted=3),
    Case("a quote never closed", csv_bytes("income", with_lines(['"0009,2024-01-09,500,0'])),
         reasons={"malformed_row": 1}, accepted=3),
    Case("blank lines between rows", csv_bytes("income", income_text().replace("\n", "\n\n")),
         accepted=3),
    Case("NUL bytes in a cell", csv_bytes("income", with_lines(["00\x0009,2024-01-09,500,0"])),
         accepted=4, lake_has=("household_id", "00\x0009")),
    Case("semicolon separated", csv_bytes("income", income_text().replace(",", ";")),
         status="rejected", words=("missing required",)),
    Case("truncated mid-row", csv_bytes("income", income_text()[:-9]),
         reasons={"malformed_row": 1}, accepted=2),
    Case("a 1 MB cell", csv_bytes("income", with_lines(["0009,2024-01-09," + "9" * 1_000_000
                                                        + ",0"])),
         reasons={"too_long": 1}, accepted=3),
    Case("200,000 rows with one bad", big_csv, reasons={"negative_amount": 1},
         accepted=199_999),
    Case("a date in year 0000 (found by the property tests: it crashed the parser)",
         lambda home: write(home, "income", income_frame().assign(
             assess_date=["00000101", "2024-02-01", "9999-12-31"])),
         reasons={"bad_date": 2}, accepted=1),
    Case("a disability level of 128 (found by the property tests)", lambda home: write(
        home, "disability", good_frame("disability").assign(disability_level=["1", "128", "4"])),
         source="disability", reasons={"bad_number": 1}, accepted=2),
    # Columns.
    Case("a required column missing", lambda home: write(
        home, "income", income_frame().drop(columns="annual_income")), status="rejected",
         words=("missing required", "annual_income", "家庭年收入")),
    Case("two columns meaning the same", csv_bytes(
        "income", "household_id,户编号,assess_date,annual_income\n0001,0001,2024-01-01,1\n"),
         status="rejected", words=("two columns both mean",)),
    Case("unknown extra columns are ignored", lambda home: write(
        home, "income", income_frame().assign(备注="x", note="y")), accepted=3),
    Case("thousands separators and ¥ are read; a unit word is not", lambda home: write(
        home, "income", income_frame().assign(annual_income=["12,000", "¥8000", "8000元"])),
         reasons={"bad_number": 1}, accepted=2),
    # Spreadsheets.
    Case("XLSX with several sheets (the first is read)", xlsx(lambda book: (
        fill(book.active, income_frame()),
        fill(book.create_sheet("说明"), pd.DataFrame({"说明": ["本表为家庭收入核算"]})))),
         accepted=3),
    Case("XLSX with a title row above the header", xlsx(lambda book: (
        book.active.cell(row=1, column=1, value="2024年家庭收入核算表"),
        fill(book.active, income_frame(), first_row=2))), status="rejected",
         words=("missing required",)),
    Case("XLSX with merged cells", xlsx(lambda book: (
        fill(book.active, income_frame()), book.active.merge_cells("B2:B3"))),
         reasons={"missing_value": 1}, accepted=2),
    Case("XLSX cut short", truncated_xlsx, status="rejected", words=("cannot read as xlsx",)),
    Case("a CSV renamed .xlsx", raw("income", "data.xlsx", income_text().encode()),
         status="rejected", words=("cannot read as xlsx",)),
    Case("an Excel lock file ~$data.xlsx is skipped",
         raw("income", "~$data.xlsx", b"\x00" * 165), status="none"),
    # Parquet.
    Case("Parquet with numbers and dates as typed columns", parquet(pa.table({
        "household_id": ["0001", "0002"], "assess_date": pa.array(
            [dt.date(2024, 1, 1), dt.date(2024, 2, 1)], pa.date32()),
        "annual_income": pa.array([12000, 8000], pa.int64())})), accepted=2),
    Case("Parquet with a list column where a value belongs", parquet(pa.table({
        "household_id": ["0001"], "assess_date": ["2024-01-01"],
        "annual_income": pa.array([[1, 2]], pa.list_(pa.int64()))})), status="rejected",
         words=("cannot read as parquet",)),
    Case("Parquet cut short", raw("income", "data.parquet", b"PAR1" + b"\x00" * 50),
         status="rejected", words=("cannot read as parquet",)),
    # Names and places.
    Case("a file name with spaces and Chinese", lambda home: write(
        home, "income", income_frame(), name="家庭 收入 第1批"), accepted=3),
    Case("an unsupported type (.txt)", raw("income", "data.txt", income_text().encode()),
         status="rejected", words=("unsupported file type",)),
    Case("a zip archive", csv_in_zip, status="rejected", words=("unsupported file type",)),
    Case("a folder that is not a contract source", lambda home: write(
        home, "社保", income_frame()), status="none", words=("not a contract source",)),
    Case("a delivery folder that is not a date", undated_folder, status="none",
         words=("not a delivery date",)),
    Case("a delivery dated after the run date", lambda home: write(
        home, "income", income_frame(), delivery=DELIVERY + dt.timedelta(days=1)),
         status="none"),
    Case("a file in a subfolder of the delivery", lambda home: (
        folder(home, "income").joinpath("sub").mkdir(),
        folder(home, "income").joinpath("sub", "data.csv").write_text(income_text())),
         accepted=3),
    # Identity.
    Case("the same id number in two households", registry_with(
        household_id=["0002"], relation=["户主"]), source="registry",
         reasons={"duplicate_key": 1}, accepted=3),
    Case("a person in two regions", registry_with(region_code=[OTHER_REGION]),
         source="registry", reasons={"duplicate_key": 1}, accepted=3),
    Case("an id number turned into a number by Excel", registry_with(
        id_number=["5.00101E+17"]), source="registry", reasons={"id_format": 1}, accepted=3),
    Case("an id number of 15 digits (first generation) is normalised", registry_with(
        id_number=["110105491231002"], household_id=["0003"]), source="registry",
         accepted=4, lake_has=("id_number", "11010519491231002X")),
    Case("a person born after the delivery", registry_with(
        id_number=ids("2025-01-01", sequence=71), household_id=["0003"]), source="registry",
         reasons={"id_birth_date": 1}, accepted=3),
    Case("the same claim delivered twice in one file", lambda home: write(
        home, "medical", pd.concat([good_frame("medical"), good_frame("medical").iloc[[0]]],
                                   ignore_index=True)), source="medical",
         reasons={"duplicate_key": 1}, accepted=3),
    Case("feedback for a person, not a household", lambda home: write(
        home, "feedback", good_frame("feedback").assign(household_id=PERSON_IDS)),
         source="feedback", accepted=3),
]


def test_the_catalogue_has_at_least_forty_kinds():
    from row_faults import FAULTS

    kinds = {case.kind for case in CATALOGUE} | {f"{s}.{c}: {r}" for s, c, _, r in FAULTS}
    assert len(CATALOGUE) == len({case.kind for case in CATALOGUE})
    assert len(kinds) >= 40 + len(FAULTS) // 2


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.kind for case in CATALOGUE])
def test_a_hostile_delivery_is_refused_or_quarantined_and_nothing_else_is_lost(home, case):
    case.build(home)
    write(home, COMPANION, good_frame(COMPANION), name="companion")
    report = ingest_landing(home, DELIVERY)

    companion = [f for f in report.files if f.source == COMPANION]
    assert [(f.status, f.rows_accepted) for f in companion] == [("accepted", 3)]
    for outcome in report.files:
        assert outcome.rows_read == outcome.rows_accepted + outcome.rows_quarantined
    files = [f for f in report.files if f.source != COMPANION]
    said = " ".join([*report.notices, *(f.message for f in files)])
    for word in case.words:
        assert word in said, said
    if case.status == "none":
        assert files == []
        return
    assert [f.status for f in files] == [case.status], said
    (outcome,) = files
    assert outcome.file.startswith(f"landing/{case.source}/")
    if case.status == "rejected":
        assert outcome.file in outcome.message
        assert outcome.rows_accepted == 0
        return
    assert outcome.reasons == case.reasons
    if case.accepted is not None:
        assert outcome.rows_accepted == case.accepted
    if case.lake_has is not None:
        column, value = case.lake_has
        lake = pd.read_parquet(home / "lake" / case.source)
        assert value in lake[column].astype(str).tolist()
    if outcome.rows_quarantined:
        quarantined = pd.concat([pd.read_parquet(path) for path in
                                 (home / "quarantine" / case.source).glob("*.parquet")])
        assert len(quarantined) == outcome.rows_quarantined
        assert quarantined["_reason"].value_counts().to_dict() == case.reasons
