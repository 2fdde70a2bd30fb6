"""Invisible characters and spreadsheet habits: the same id however it was delivered.

Hostile input round two (issue 20): household ids with a zero-width space or
a byte-order mark inside, in an XLSX or a Parquet file, were kept as other
ids that matched nothing; an answer quoting the id as a spreadsheet shows it
(a leading ``'``) matched nothing either. Every format is normalised alike.
"""

from __future__ import annotations

import pandas as pd
import pytest
from deliveries import DELIVERY, PERSON_IDS, good_frame, write_delivery

from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_source
from monitor.triage.lifecycle import apply_feedback, as_state, warning_ids

ZERO_WIDTH, BYTE_ORDER_MARK = "\u200b", "\ufeff"


@pytest.mark.parametrize("fmt", ["xlsx", "parquet", "csv"])
def test_household_ids_with_invisible_characters_are_the_same_household(home, fmt):
    registry = good_frame("registry")
    income = good_frame("income")
    # The registry says 0001 and 0002; the income file the same ids, with characters
    # nobody sees: in the middle, at the start, at the end.
    income["household_id"] = [f"00{ZERO_WIDTH}01", f"{BYTE_ORDER_MARK}0002", "0003\u2060"][
        :len(income)]
    write_delivery(home, "registry", registry, fmt=fmt)
    write_delivery(home, "income", income, fmt=fmt)
    report = ingest_landing(home, DELIVERY)
    assert all(outcome.status == "accepted" for outcome in report.files), report.files
    rows = read_source(home, "income", DELIVERY)
    assert set(rows["household_id"]) <= {"0001", "0002", "0003"}
    assert {"0001", "0002"} <= set(rows["household_id"])
    assert not rows["household_id"].str.contains(f"[{ZERO_WIDTH}{BYTE_ORDER_MARK}\u2060]").any()


def test_an_id_number_with_a_zero_width_space_is_that_person(home):
    registry = good_frame("registry")
    registry.loc[0, "id_number"] = PERSON_IDS[0][:6] + ZERO_WIDTH + PERSON_IDS[0][6:]
    write_delivery(home, "registry", registry, fmt="xlsx")
    ingest_landing(home, DELIVERY)
    rows = read_source(home, "registry", DELIVERY)
    assert PERSON_IDS[0] in set(rows["id_number"])  # accepted, not quarantined as id_format


def test_an_answer_quoting_ids_as_the_list_showed_them_closes_the_warning(home):
    registry = good_frame("registry")
    write_delivery(home, "registry", registry)
    warning = warning_ids(pd.Series(["0002"]), pd.Series(["DIBAO_GAP"]))[0]
    answer = pd.DataFrame({"warning_id": [f"'{warning}"], "household_id": ["'0002"],
                           "verified": ["属实"], "action": ["纳入低保"],
                           "closed_date": [DELIVERY.isoformat()], "caseworker": ["王"]},
                          dtype="string")
    write_delivery(home, "feedback", answer, fmt="xlsx")
    report = ingest_landing(home, DELIVERY)
    assert all(outcome.status == "accepted" for outcome in report.files), report.files
    feedback = read_source(home, "feedback", DELIVERY)
    assert feedback["warning_id"].tolist() == [warning]
    assert feedback["household_id"].tolist() == ["0002"]
    state = as_state(pd.DataFrame({
        "warning_id": [warning], "household_id": ["0002"], "rule": ["DIBAO_GAP"],
        "level": ["橙色"], "status": ["open"],
        "first_warning_date": [pd.Timestamp(DELIVERY) - pd.Timedelta(days=5)],
        "last_seen_date": [pd.Timestamp(DELIVERY) - pd.Timedelta(days=1)],
        "evidence_hash": [0]}))
    closed, events, unmatched = apply_feedback(state, feedback, pd.Timestamp(DELIVERY))
    assert closed.loc[0, "status"] == "closed" and closed.loc[0, "closed_by"] == "feedback"
    assert unmatched.empty and len(events) == 1


def _full_width(text: str) -> str:
    """ASCII as an input method types it in full-width mode (０-９, Ａ-Ｚ, －)."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet", "csv"])
def test_ids_amounts_and_dates_typed_in_full_width_are_read_as_typed_in_ascii(home, fmt):
    registry = good_frame("registry")
    registry.loc[0, "id_number"] = _full_width(registry.loc[0, "id_number"])
    income = good_frame("income")
    income["household_id"] = [_full_width(value) for value in income["household_id"]]
    income.loc[0, "annual_income"] = _full_width("12,000")
    income.loc[1, "assess_date"] = _full_width(income.loc[1, "assess_date"])
    write_delivery(home, "registry", registry, fmt=fmt)
    write_delivery(home, "income", income, fmt=fmt)
    report = ingest_landing(home, DELIVERY)
    assert all(outcome.rows_quarantined == 0 for outcome in report.files), report.files
    people = read_source(home, "registry", DELIVERY)
    assert set(people["id_number"]) == set(good_frame("registry")["id_number"])
    rows = read_source(home, "income", DELIVERY).set_index("household_id")
    assert set(rows.index) == set(good_frame("income")["household_id"])
    first = good_frame("income").loc[0, "household_id"]
    assert rows.loc[first, "annual_income"] == 12_000


def test_an_answer_typed_in_full_width_names_its_warning_and_household(home):
    write_delivery(home, "registry", good_frame("registry"))
    warning = warning_ids(pd.Series(["0002"]), pd.Series(["DIBAO_GAP"]))[0]
    answer = pd.DataFrame({"warning_id": [_full_width(warning)],
                           "household_id": [_full_width("0002")], "verified": ["属实"],
                           "action": ["纳入低保"], "closed_date": [_full_width(
                               DELIVERY.isoformat())], "caseworker": ["王"]}, dtype="string")
    write_delivery(home, "feedback", answer)
    ingest_landing(home, DELIVERY)
    feedback = read_source(home, "feedback", DELIVERY)
    assert feedback["warning_id"].tolist() == [warning]
    assert feedback["household_id"].tolist() == ["0002"]
    assert feedback["closed_date"].tolist() == [pd.Timestamp(DELIVERY)]
