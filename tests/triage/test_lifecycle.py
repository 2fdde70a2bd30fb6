"""The warning lifecycle: stable ids, 新增/持续, closing by the run and by feedback."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from monitor.triage.lifecycle import (
    CONTINUING,
    NEW,
    SETTLED,
    empty_state,
    evidence_hashes,
    track,
    warning_ids,
)

DAY1, DAY2, DAY3, DAY4 = (dt.date(2026, 7, day) for day in (1, 2, 3, 4))
NO_FEEDBACK = pd.DataFrame({"warning_id": pd.Series(dtype="string"),
                            "household_id": pd.Series(dtype="string"),
                            "verified": pd.Series(dtype="string"),
                            "action": pd.Series(dtype="string"),
                            "closed_date": pd.Series(dtype="datetime64[ns]")})


def hits(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """Hits as (household, rule, evidence)."""
    frame = pd.DataFrame(rows, columns=["household_id", "rule", "evidence"])
    return frame.assign(level="黄色", county_code="500101", township_code="500101001",
                        reason="…").astype({"household_id": "string", "rule": "string"})


def feedback(warning_id: str, household_id: str, closed: dt.date,
             verified: str = "属实") -> pd.DataFrame:
    return pd.DataFrame({"warning_id": [warning_id], "household_id": [household_id],
                         "verified": [verified], "action": ["纳入低保"],
                         "closed_date": [pd.Timestamp(closed)]}).astype(
        {"warning_id": "string", "household_id": "string"})


def status_of(result, household: str, rule: str) -> tuple[str, dt.date]:
    row = result.hits.set_index(["household_id", "rule"]).loc[(household, rule)]
    return row["status"], row["first_warning_date"].date()


def test_warning_id_is_derived_from_household_and_rule():
    first = warning_ids(pd.Series(["000000000001", "000000000001"]),
                        pd.Series(["DIBAO_GAP", "JOBLESS"]))
    again = warning_ids(pd.Series(["000000000001"]), pd.Series(["DIBAO_GAP"]))
    assert first[0] == again[0]
    assert first[0] != first[1]
    # Pinned: a pandas upgrade that changed the hash would change every id in the field.
    assert first[0] == "YJ774A9B01D38F3C46"
    assert first.str.fullmatch(r"YJ[0-9A-F]{16}").all()


def test_first_run_opens_then_next_run_continues_with_the_same_id_and_date():
    today = hits(("h1", "DIBAO_GAP", "{}"), ("h2", "JOBLESS", "{}"))
    first = track(empty_state(), today, NO_FEEDBACK, DAY1)
    assert first.hits["status"].tolist() == [NEW, NEW]
    assert (first.events["event"] == "opened").sum() == 2
    second = track(first.state, today, NO_FEEDBACK, DAY2)
    assert second.hits["status"].tolist() == [CONTINUING, CONTINUING]
    assert second.hits["warning_id"].tolist() == first.hits["warning_id"].tolist()
    assert status_of(second, "h1", "DIBAO_GAP") == (CONTINUING, DAY1)
    assert second.events.empty


def test_a_warning_closes_when_the_household_stops_triggering_and_reopens_as_new():
    first = track(empty_state(), hits(("h1", "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY1)
    second = track(first.state, hits(), NO_FEEDBACK, DAY2)
    assert second.events[["event", "by"]].to_numpy().tolist() == [["closed", "run 2026-07-02"]]
    closed = second.state.set_index("warning_id").iloc[0]
    assert (closed["status"], closed["closed_by"]) == ("closed", "run")
    third = track(second.state, hits(("h1", "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY3)
    assert status_of(third, "h1", "DIBAO_GAP") == (NEW, DAY3)


def test_feedback_closes_the_household_and_it_is_not_relisted_until_its_facts_change():
    today = hits(("h1", "DIBAO_GAP", '{"income": 500}'), ("h1", "JOBLESS", "{}"),
                 ("h2", "JOBLESS", "{}"))
    first = track(empty_state(), today, NO_FEEDBACK, DAY1)
    listed_id = first.hits["warning_id"][0]
    settled = track(first.state, today, feedback(listed_id, "h1", DAY2), DAY2)
    assert status_of(settled, "h1", "DIBAO_GAP")[0] == SETTLED
    assert status_of(settled, "h1", "JOBLESS")[0] == SETTLED
    assert status_of(settled, "h2", "JOBLESS")[0] == CONTINUING
    events = settled.events.set_index("rule").loc[["DIBAO_GAP", "JOBLESS"]]
    assert set(events["event"]) == {"closed_by_feedback"}
    assert set(events["verified"]) == {"属实"} and set(events["action"]) == {"纳入低保"}
    assert set(events["by"]) == {f"feedback {listed_id}"}

    # The same facts, and the same feedback still in force: nothing changes.
    quiet = track(settled.state, today, feedback(listed_id, "h1", DAY2), DAY3)
    assert status_of(quiet, "h1", "DIBAO_GAP")[0] == SETTLED
    assert quiet.events.empty
    # The income changes: a new episode of that rule only.
    changed = hits(("h1", "DIBAO_GAP", '{"income": 300}'), ("h1", "JOBLESS", "{}"),
                   ("h2", "JOBLESS", "{}"))
    moved = track(quiet.state, changed, feedback(listed_id, "h1", DAY2), DAY4)
    assert status_of(moved, "h1", "DIBAO_GAP") == (NEW, DAY4)
    assert status_of(moved, "h1", "JOBLESS")[0] == SETTLED


@pytest.mark.parametrize(("household", "as_saved", "matches"), [
    ("000123", "123", True),                         # leading zeros dropped
    ("500101001234", "5.00101E+11", True),           # a long number shown in scientific form
    ("500101001234", "500101001234.0", False),       # not a form a spreadsheet writes
    ("500101001234", "5.00102E+11", False),          # another household
])
def test_feedback_household_ids_as_a_spreadsheet_saves_them(household, as_saved, matches):
    first = track(empty_state(), hits((household, "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY1)
    answered = feedback(first.hits["warning_id"][0], as_saved, DAY2)
    result = track(first.state, hits((household, "DIBAO_GAP", "{}")), answered, DAY2)
    assert (status_of(result, household, "DIBAO_GAP")[0] == SETTLED) is matches
    assert result.unmatched_feedback.empty is matches
    if matches:
        assert result.events["household_id"].tolist() == [household]


def test_a_warning_answered_by_its_own_row_keeps_that_outcome():
    today = hits(("h1", "DIBAO_GAP", "{}"), ("h1", "JOBLESS", "{}"))
    first = track(empty_state(), today, NO_FEEDBACK, DAY1)
    dibao, jobless = first.hits["warning_id"]
    answers = pd.concat([feedback(dibao, "h1", DAY2),
                         feedback(jobless, "h1", DAY1, verified="不属实")])
    result = track(first.state, today, answers, DAY2)
    outcome = result.events.set_index("rule")["verified"]
    assert outcome.to_dict() == {"DIBAO_GAP": "属实", "JOBLESS": "不属实"}


def test_an_answer_arriving_after_the_run_closed_the_warning_is_still_recorded():
    first = track(empty_state(), hits(("h1", "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY1)
    listed_id = first.hits["warning_id"][0]
    closed = track(first.state, hits(), NO_FEEDBACK, DAY3)        # stopped triggering on DAY3
    late = track(closed.state, hits(), feedback(listed_id, "h1", DAY2), DAY4)
    assert late.events[["event", "verified"]].to_numpy().tolist() == [
        ["closed_by_feedback", "属实"]]
    # The same facts coming back are not listed again; the answer stands.
    back = track(late.state, hits(("h1", "DIBAO_GAP", "{}")), feedback(listed_id, "h1", DAY2),
                 DAY4)
    assert status_of(back, "h1", "DIBAO_GAP")[0] == SETTLED
    # An answer dated after the run closed it belongs to no listing of it.
    after = track(closed.state, hits(), feedback(listed_id, "h1", DAY4), DAY4)
    assert after.events.empty


def test_feedback_does_not_close_a_warning_first_listed_after_it():
    first = track(empty_state(), hits(("h1", "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY1)
    listed_id = first.hits["warning_id"][0]
    closed = track(first.state, hits(("h1", "DIBAO_GAP", "{}")), feedback(listed_id, "h1", DAY1),
                   DAY2)
    later = hits(("h1", "DIBAO_GAP", "{}"), ("h1", "JOBLESS", "{}"))
    result = track(closed.state, later, feedback(listed_id, "h1", DAY1), DAY3)
    assert status_of(result, "h1", "JOBLESS") == (NEW, DAY3)
    assert status_of(result, "h1", "DIBAO_GAP")[0] == SETTLED


@pytest.mark.parametrize(("warning_id", "household"), [
    ("YJ0000000000000000", "h1"),   # no such warning
    (None, "h2"),                   # a real warning id, quoted for another household
])
def test_feedback_that_matches_no_warning_is_reported_and_changes_nothing(warning_id, household):
    first = track(empty_state(), hits(("h1", "DIBAO_GAP", "{}")), NO_FEEDBACK, DAY1)
    quoted = warning_id or first.hits["warning_id"][0]
    result = track(first.state, hits(("h1", "DIBAO_GAP", "{}")), feedback(quoted, household, DAY2),
                   DAY2)
    assert len(result.unmatched_feedback) == 1
    assert status_of(result, "h1", "DIBAO_GAP")[0] == CONTINUING
    assert result.events.empty


def test_evidence_fingerprints_survive_the_state_exactly():
    # Hashes use all 64 bits; a float on the way would lose the low ones and reopen warnings.
    evidence = pd.Series([f'{{"income": {value}}}' for value in range(2000)])
    fingerprints = evidence_hashes(evidence)
    assert (abs(fingerprints) > 2**53).any()
    today = hits(*[(f"h{number}", "DIBAO_GAP", text) for number, text in enumerate(evidence)])
    first = track(empty_state(), today, NO_FEEDBACK, DAY1)
    answers = pd.concat([feedback(warning, household, DAY1) for warning, household in
                         zip(first.hits["warning_id"], first.hits["household_id"], strict=True)])
    settled = track(first.state, today, answers, DAY2)
    again = track(settled.state, today, answers, DAY3)
    assert (again.hits["status"] == SETTLED).all()
