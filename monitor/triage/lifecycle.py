"""The warning lifecycle: stable warning ids, 新增/持续, closing by the run or by feedback.

Pure and vectorised. A warning is one (household, rule) pair; its id is
derived from the two, so it is the same in every run. Each run starts from
the state the latest earlier run left (see
:func:`monitor.io.warnings.previous_state`), applies the feedback delivered
so far, then compares with today's rule hits:

* a hit with an open warning is 持续 (continuing);
* a hit with no warning, or one the run closed earlier, opens a new episode,
  新增, dated today;
* a hit whose warning was closed by feedback stays closed (not listed) while
  the rule's evidence is unchanged, and opens a new episode when it changes;
* an open warning with no hit today is closed by the run.

Feedback is keyed by the warning id printed on the household's referral row
(its 预警编号). A caseworker verifies the household as a whole, so a
feedback row closes every verification warning of that household that was
open and first listed on or before its 办结日期, with its outcome; a warning
answered by a row of its own takes that row's outcome. An answer that
arrives after the run has closed the warning (the household stopped
triggering the rule) is still recorded, when its 办结日期 falls while the
warning was listed. The evidence compared is the rule's evidence without the
ages (:data:`monitor.policy.facts.TICKING_FACTS`): a settled household does not
come back because a birthday passed.

*Roster* rules (定期探访) are answered by visits, never closed by them: an
answer quoting a roster warning's id records a visit (``last_visit_date``)
on the household's open roster warnings, and only that; whether the
household is due again is the cadence's business (:mod:`monitor.triage.referrals`).
A roster entry ends when the household no longer meets the rule. Every state
change is returned as an event (when, by what, with which outcome).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.contract.keys import hex16
from monitor.policy.facts import TICKING_FACTS

WARNING_ID_PREFIX = "YJ"
#: A number as a spreadsheet writes a long one: 5.00101E+11.
SCIENTIFIC = r"^(?P<mantissa>\d)(?:\.(?P<decimals>\d+))?[Ee]\+?(?P<exponent>\d+)$"
NEW, CONTINUING, SETTLED = "新增", "持续", "已办结"
OPEN, CLOSED = "open", "closed"
BY_RUN, BY_FEEDBACK = "run", "feedback"
OPENED, CLOSED_EVENT, FEEDBACK_EVENT = "opened", "closed", "closed_by_feedback"
VISITED_EVENT = "visited"
#: A fact that changes only as time passes, as it stands in a hit's evidence JSON (key and
#: value, with the separator after it): left out of the fingerprint that decides whether a
#: settled warning's evidence changed.
_TICKING_EVIDENCE = "|".join(rf'"{name}": [^,}}]*(?:, )?' for name in TICKING_FACTS)

#: One row per warning ever opened: its current (or last) episode.
STATE_COLUMNS = {
    "warning_id": "string", "household_id": "string", "rule": "string", "level": "string",
    "county_code": "string", "township_code": "string", "status": "string",
    "first_warning_date": "datetime64[ns]", "last_seen_date": "datetime64[ns]",
    "evidence_hash": "int64", "closed_date": "datetime64[ns]", "closed_by": "string",
    "feedback_warning_id": "string", "verified": "string", "action": "string",
    #: Roster warnings: the latest visit an answer recorded (missing: never visited).
    "last_visit_date": "datetime64[ns]",
}
#: One row per state change.
EVENT_COLUMNS = {
    "warning_id": "string", "household_id": "string", "rule": "string", "event": "string",
    "date": "datetime64[ns]", "run_date": "datetime64[ns]", "by": "string",
    "verified": "string", "action": "string",
}


def _hash_text(values: pd.Series) -> np.ndarray:
    """A stable 64-bit hash of each string (pandas' SipHash with its fixed key)."""
    return pd.util.hash_array(values.astype("string").fillna("").to_numpy(dtype=object))


def warning_ids(household_ids: pd.Series, rules: pd.Series) -> pd.Series:
    """The warning id of each (household, rule): ``YJ`` and 16 hex digits, the same every run.

    The letters in front keep spreadsheets from reading the id as a number.

    Examples
    --------
    >>> warning_ids(pd.Series(["500101001001000001"]), pd.Series(["DIBAO_GAP"])).tolist()
    ['YJ3659C7779F9A2A08']
    """
    keys = household_ids.astype("string").reset_index(drop=True) + "\x1f" + rules.astype(
        "string").reset_index(drop=True)
    return pd.Series(WARNING_ID_PREFIX + pd.Series(hex16(_hash_text(keys))), dtype="string")


def evidence_hashes(evidence: pd.Series, ages: bool = False) -> np.ndarray:
    """A fingerprint of each hit's evidence: the facts behind the rule, as int64.

    Ages are left out (unless ``ages``): they change by themselves.

    Examples
    --------
    >>> older = pd.Series(['{"age": 95, "elder_age": 60}', '{"is_living": true, "age": 95}'])
    >>> younger = pd.Series(['{"age": 94, "elder_age": 60}', '{"is_living": true, "age": 94}'])
    >>> (evidence_hashes(older) == evidence_hashes(younger)).tolist()
    [True, True]
    >>> (evidence_hashes(older, ages=True) == evidence_hashes(younger, ages=True)).tolist()
    [False, False]
    """
    if not ages and len(evidence):
        evidence = evidence.astype("string").str.replace(_TICKING_EVIDENCE, "", regex=True)
    return _hash_text(evidence).view(np.int64)


def empty_state() -> pd.DataFrame:
    """A state with no warnings (before the first run)."""
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in STATE_COLUMNS.items()})


def as_state(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored state in :data:`STATE_COLUMNS` (a column added since it was written: missing)."""
    return frame.reindex(columns=list(STATE_COLUMNS)).astype(STATE_COLUMNS).reset_index(
        drop=True)


def _events(frame: pd.DataFrame, event: str, date: pd.Series | pd.Timestamp,
            run_date: pd.Timestamp, by: pd.Series | str) -> pd.DataFrame:
    return pd.DataFrame({
        "warning_id": frame["warning_id"].to_numpy(), "household_id": frame["household_id"],
        "rule": frame["rule"], "event": event, "date": date, "run_date": run_date, "by": by,
        "verified": frame["verified"] if event in (FEEDBACK_EVENT, VISITED_EVENT) else pd.NA,
        "action": frame["action"] if event in (FEEDBACK_EVENT, VISITED_EVENT) else pd.NA,
    }).astype(EVENT_COLUMNS)


@dataclass
class Lifecycle:
    """The outcome of one run's lifecycle step."""

    #: Every warning after this run (write it for the next run).
    state: pd.DataFrame
    #: This run's state changes.
    events: pd.DataFrame
    #: Today's hits with ``warning_id``, ``status`` (新增, 持续 or 已办结) and
    #: ``first_warning_date``.
    hits: pd.DataFrame
    #: Feedback rows whose warning id is unknown or names another household.
    unmatched_feedback: pd.DataFrame


def _same_household(warned: pd.Series, answered: pd.Series) -> pd.Series:
    """Whether feedback names the warned household, allowing for what spreadsheets do to it.

    The warning id already names the household; the 户编号 is a cross-check.
    A caseworker's spreadsheet shows 户编号 ``000123`` as the number 123, and
    a long one as ``5.00101E+11``, and saves it so. A lost leading zero is
    not another household, and a number in that form agrees when it is the
    warned 户编号 rounded to the digits shown.

    Examples
    --------
    >>> _same_household(pd.Series(["000123", "000123", "9", "500101001234", "500101001234"]),
    ...                 pd.Series(["123", "124", None, "5.00101E+11", "5.00102E+11"])).tolist()
    [True, False, False, True, False]
    """
    def digits(values: pd.Series) -> pd.Series:
        return values.astype("string").str.strip().str.lstrip("0")

    same = (digits(warned) == digits(answered)).fillna(False).astype(bool)
    shown = answered.astype("string").str.strip().str.extract(SCIENTIFIC, expand=True)
    scientific = shown["mantissa"].notna().to_numpy(dtype=bool)
    if scientific.any():
        value = pd.to_numeric(answered.astype("string").str.strip(), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        exact = pd.to_numeric(digits(warned), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        decimals = shown["decimals"].fillna("").str.len().to_numpy(dtype="float64")
        step = 10.0 ** (shown["exponent"].astype("float64").to_numpy() - decimals)
        rounded = np.round(exact / step) * step
        same |= scientific & (np.abs(rounded - value) < step / 2)
    return same


def _match_feedback(state: pd.DataFrame, feedback: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feedback rows with the household and rule of the warning each names; and the unmatched."""
    known = state[["warning_id", "household_id", "rule"]].rename(
        columns={"household_id": "_warned_household", "rule": "_rule"})
    matched = feedback.merge(known, on="warning_id", how="left", validate="many_to_one")
    matched["household_id"] = matched["_warned_household"].where(
        _same_household(matched["_warned_household"], matched["household_id"]))
    is_match = matched["household_id"].notna().to_numpy(dtype=bool)
    return (matched[is_match].sort_values(["household_id", "closed_date", "warning_id"]),
            feedback[~is_match].reset_index(drop=True))


def _record_visits(state: pd.DataFrame, visits: pd.DataFrame, is_roster: np.ndarray,
                   run_date: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each household's latest visit on its open roster warnings listed by then; the events."""
    if visits.empty or not is_roster.any():
        return state, _events(state.iloc[:0], VISITED_EVENT, pd.NaT, run_date, "")
    latest = visits.drop_duplicates("household_id", keep="last").set_index("household_id")
    at = latest.index.get_indexer(state["household_id"])
    visited = latest["closed_date"].to_numpy(dtype="datetime64[ns]")[np.maximum(at, 0)]
    before = state["last_visit_date"].to_numpy(dtype="datetime64[ns]")
    records = (is_roster & (at >= 0) & (state["status"] == OPEN).to_numpy(dtype=bool)
               & (state["first_warning_date"].to_numpy(dtype="datetime64[ns]") <= visited)
               & (np.isnat(before) | (visited > before)))
    if not records.any():
        return state, _events(state.iloc[:0], VISITED_EVENT, pd.NaT, run_date, "")
    state = state.copy()
    state.loc[records, "last_visit_date"] = visited[records]
    done = state[records].assign(
        verified=latest["verified"].to_numpy()[at[records]],
        action=latest["action"].to_numpy()[at[records]],
        feedback_warning_id=latest["warning_id"].to_numpy()[at[records]])
    return state, _events(done, VISITED_EVENT, done["last_visit_date"], run_date,
                          "feedback " + done["feedback_warning_id"])


def apply_feedback(state: pd.DataFrame, feedback: pd.DataFrame, run_date: pd.Timestamp,
                   roster_rules: frozenset[str] = frozenset()
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Close the warnings that feedback has settled; return (state, events, unmatched rows).

    An answer to a roster warning (a rule in ``roster_rules``) records a visit
    on the household's roster warnings; an answer to any other warning closes
    the household's other (verification) warnings.
    """
    matched, unmatched = _match_feedback(state, feedback)
    is_roster = state["rule"].isin(list(roster_rules)).to_numpy(dtype=bool)
    visit_rows = matched["_rule"].isin(list(roster_rules)).to_numpy(dtype=bool)
    state, visit_events = _record_visits(state, matched[visit_rows], is_roster, run_date)
    matched = matched[~visit_rows]
    # The row that speaks for a warning: the caseworker's answer to that warning itself,
    # else the household's latest answer (a row settles the household's whole listing).
    own = matched.drop_duplicates("warning_id", keep="last").set_index("warning_id")
    latest = matched.drop_duplicates("household_id", keep="last").set_index("household_id")
    own_rows = own.index.get_indexer(state["warning_id"])
    house_rows = latest.index.get_indexer(state["household_id"])
    first = state["first_warning_date"].to_numpy(dtype="datetime64[ns]")
    own_date = own["closed_date"].to_numpy(dtype="datetime64[ns]")
    use_own = own_rows >= 0
    use_own[use_own] = own_date[own_rows[use_own]] >= first[use_own]
    chosen = pd.DataFrame({"closed_date": pd.Series(pd.NaT, index=state.index,
                                                    dtype="datetime64[ns]")})
    for column in ("warning_id", "verified", "action"):
        chosen[column] = pd.Series(pd.NA, index=state.index, dtype="string")
    by_household = ~use_own & (house_rows >= 0)
    for mask, source, at in ((use_own, own.reset_index(), own_rows),
                             (by_household, latest.reset_index(), house_rows)):
        for column in chosen.columns:
            chosen.loc[mask, column] = source[column].to_numpy()[at[mask]]
    answered = chosen["closed_date"].to_numpy(dtype="datetime64[ns]")
    is_open = (state["status"] == OPEN).to_numpy(dtype=bool)
    # A warning the run closed before the answer arrived: the visit was while it was listed.
    closed_by_run = ((state["status"] == CLOSED) & (state["closed_by"] == BY_RUN)).fillna(
        False).to_numpy(dtype=bool) & (answered <= state["closed_date"].to_numpy(
            dtype="datetime64[ns]"))
    # A corrected answer (the same row delivered again with another outcome) replaces the
    # outcome it settled before.
    by_same_row = ((state["closed_by"] == BY_FEEDBACK) & (chosen["warning_id"] == state[
        "feedback_warning_id"])).fillna(False).to_numpy(dtype=bool)
    changed = ~((chosen["verified"] == state["verified"]) & (chosen["action"] == state["action"])
                & (chosen["closed_date"] == state["closed_date"])).fillna(False).to_numpy(
                    dtype=bool)
    settles = (((is_open | closed_by_run) | (by_same_row & changed)) & ~np.isnat(answered)
               & (first <= answered) & ~is_roster)
    if not settles.any():
        return state, visit_events, unmatched
    state = state.copy()
    state.loc[settles, "status"] = CLOSED
    state.loc[settles, "closed_by"] = BY_FEEDBACK
    state.loc[settles, "closed_date"] = answered[settles]
    for column, source in (("feedback_warning_id", "warning_id"), ("verified", "verified"),
                           ("action", "action")):
        state.loc[settles, column] = chosen.loc[settles, source].astype("string")
    settled = state[settles]
    events = _events(settled, FEEDBACK_EVENT, settled["closed_date"], run_date,
                     "feedback " + settled["feedback_warning_id"])
    return state, pd.concat([visit_events, events], ignore_index=True), unmatched


#: Columns of the warnings a run keeps open because a source they rest on is stale.
CARRIED_COLUMNS = ["warning_id", "household_id", "rule", "level", "county_code",
                   "township_code", "reason", "evidence", "person_id_masked", "stale_sources"]
STALE_SEPARATOR = ";"
#: 预警原因 of a warning kept open whose earlier reason is no longer on record.
UNKNOWN_REASON = "此前已列入名单（上次运行的预警原因记录已不可得）"


def carried_warnings(state: pd.DataFrame, resting: dict[str, tuple[str, ...]],
                     said: pd.DataFrame | None) -> pd.DataFrame:
    """The open warnings of rules that read a stale source, as the previous run listed them.

    ``resting`` maps a rule code to the stale sources it reads
    (:func:`monitor.triage.deliveries.stale_rules`); ``said`` is what the previous
    run wrote of these warnings (:func:`monitor.io.outputs.previous_hits`).
    A county's evaluation lists them again when no rule hits them today
    (:func:`monitor.triage.evaluation.evaluate_county`), so that a warning never
    closes because the data behind it stopped arriving.
    """
    candidates = state[(state["status"] == OPEN).to_numpy(dtype=bool)
                       & state["rule"].isin(list(resting)).to_numpy(dtype=bool)]
    said = said if said is not None else pd.DataFrame(columns=["warning_id"])
    carried = candidates.merge(said.drop_duplicates("warning_id"), on="warning_id", how="left",
                               validate="one_to_one")
    carried["stale_sources"] = carried["rule"].map(
        {rule: STALE_SEPARATOR.join(sources) for rule, sources in resting.items()})
    carried = carried.reindex(columns=CARRIED_COLUMNS).astype("string").reset_index(drop=True)
    # The previous run's outputs gone (removed by hand): still kept open, in general words.
    return carried.fillna({"reason": UNKNOWN_REASON, "evidence": "{}"})


def _is(before: pd.DataFrame, column: str, value: object) -> np.ndarray:
    """Where a column of the hits' earlier warnings equals a value (missing: false)."""
    return before[column].eq(value).fillna(False).to_numpy(dtype=bool)


def _settled_and_unchanged(before: pd.DataFrame, hits: pd.DataFrame, roster: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Which hits' warnings were settled by feedback on the very evidence they show today.

    ``before`` holds each hit's warning as the state had it; rosters are never
    settled. A warning settled before ages were left out of the fingerprint
    is compared with the fingerprint as it was taken then; the second mask
    says which matched so (they keep today's fingerprint from now on, so that
    the next birthday is not taken for new evidence).
    """
    def same_evidence(hashes: np.ndarray) -> np.ndarray:
        return before["evidence_hash"].eq(pd.Series(hashes, dtype="Int64")).fillna(
            False).to_numpy(dtype=bool)

    settled = _is(before, "status", CLOSED) & _is(before, "closed_by", BY_FEEDBACK) & ~roster
    unchanged = settled & same_evidence(hits["evidence_hash"].to_numpy())
    again = settled & ~unchanged
    by_old_print = np.zeros(len(hits), dtype=bool)
    if again.any():
        with_ages = np.zeros(len(hits), dtype=np.int64)
        with_ages[again] = evidence_hashes(hits["evidence"][again], ages=True)
        by_old_print = again & same_evidence(with_ages)
    return unchanged | by_old_print, by_old_print


def _hit_warnings(hits: pd.DataFrame, before: pd.DataFrame, keeps_print: np.ndarray,
                  unchanged: np.ndarray, run_date: pd.Timestamp) -> pd.DataFrame:
    """Every hit's warning in the new state: listed (open) unless settled and unchanged.

    A settled warning keeps the fingerprint it was settled on (``keeps_print``),
    but for one settled under the fingerprint with ages, which takes today's.
    """
    listed = ~unchanged
    current = pd.DataFrame({
        "warning_id": hits["warning_id"], "household_id": hits["household_id"],
        "rule": hits["rule"], "level": hits["level"], "county_code": hits["county_code"],
        "township_code": hits["township_code"],
        "status": np.where(listed, OPEN, CLOSED),
        "first_warning_date": hits["first_warning_date"],
        "last_seen_date": before["last_seen_date"].where(~listed, run_date).to_numpy(),
        "evidence_hash": pd.Series(hits["evidence_hash"], dtype="Int64").where(
            ~keeps_print, before["evidence_hash"]).to_numpy(dtype="int64"),
        "last_visit_date": hits["last_visit_date"],
    }).astype({name: STATE_COLUMNS[name] for name in ("status", "last_seen_date")})
    for column in ("closed_date", "closed_by", "feedback_warning_id", "verified", "action"):
        current[column] = before[column].astype(STATE_COLUMNS[column]).where(unchanged)
    return current


def track(previous: pd.DataFrame, hits: pd.DataFrame, feedback: pd.DataFrame,
          as_of: dt.date, roster_rules: frozenset[str] = frozenset()) -> Lifecycle:
    """Carry the warnings forward to ``as_of``.

    Parameters
    ----------
    previous : pandas.DataFrame
        The state the latest earlier run left (:data:`STATE_COLUMNS`).
    hits : pandas.DataFrame
        Today's rule hits: ``household_id``, ``rule``, ``level``, ``evidence``,
        ``county_code``, ``township_code`` (and anything else, kept).
    feedback : pandas.DataFrame
        The ``feedback`` source as of ``as_of``: ``warning_id``,
        ``household_id``, ``verified``, ``action``, ``closed_date``.
    as_of : datetime.date
        The run date.
    roster_rules : frozenset of str
        The codes of the roster rules (定期探访): visited, never settled.
    """
    run_date = pd.Timestamp(as_of)
    previous = as_state(previous)
    state, feedback_events, unmatched = apply_feedback(previous, feedback, run_date,
                                                       roster_rules)

    hits = hits.reset_index(drop=True).copy()
    hits["warning_id"] = warning_ids(hits["household_id"], hits["rule"])
    hits["evidence_hash"] = evidence_hashes(hits["evidence"])
    rows = pd.Index(state["warning_id"]).get_indexer(hits["warning_id"])
    known = rows >= 0
    # Each hit's warning as the state had it (all missing where there was none);
    # the hash as nullable Int64, so that no 64-bit value passes through a float.
    before = state.astype({"evidence_hash": "Int64"}).reindex(rows).reset_index(drop=True)

    roster = hits["rule"].isin(list(roster_rules)).to_numpy(dtype=bool)
    was_open = _is(before, "status", OPEN)
    unchanged, by_old_print = _settled_and_unchanged(before, hits, roster)
    opens = ~was_open & ~unchanged
    hits["status"] = pd.array(np.select([was_open, unchanged], [CONTINUING, SETTLED], NEW),
                              dtype="string")
    hits["first_warning_date"] = before["first_warning_date"].where(
        was_open | unchanged, run_date).astype("datetime64[ns]").to_numpy()
    # A roster entry keeps its visits while open; one settled before rosters existed starts
    # again with that answer as its visit.
    answered_before = _is(before, "closed_by", BY_FEEDBACK)
    hits["last_visit_date"] = np.where(
        roster & was_open, before["last_visit_date"].to_numpy(dtype="datetime64[ns]"),
        np.where(roster & answered_before,
                 before["closed_date"].to_numpy(dtype="datetime64[ns]"),
                 np.datetime64("NaT", "ns")))

    # The new state: warnings without a hit today, then every hit's warning.
    hit_rows = np.zeros(len(state), dtype=bool)
    hit_rows[rows[known]] = True
    quiet = state[~hit_rows].copy()
    closing = (quiet["status"] == OPEN).to_numpy(dtype=bool)
    quiet.loc[closing, ["status", "closed_by"]] = [CLOSED, BY_RUN]
    quiet.loc[closing, "closed_date"] = run_date
    current = _hit_warnings(hits, before, unchanged & ~by_old_print, unchanged, run_date)
    new_state = (pd.concat([quiet, current], ignore_index=True)[list(STATE_COLUMNS)]
                 .astype(STATE_COLUMNS).sort_values("warning_id", ignore_index=True))

    events = pd.concat([
        feedback_events,
        _events(quiet[closing], CLOSED_EVENT, run_date, run_date, f"run {as_of.isoformat()}"),
        _events(current[opens].assign(verified=pd.NA, action=pd.NA), OPENED, run_date, run_date,
                f"run {as_of.isoformat()}"),
    ], ignore_index=True).astype(EVENT_COLUMNS)
    return Lifecycle(new_state, events, hits.drop(columns="evidence_hash"), unmatched)
