"""What the risk model learns to foresee: whether a household came to need help in the horizon.

Pure. For an as-of date ``start`` and the horizon's end ``end``, a household
(as registered on ``start``) is positive when, on a date in ``(start, end]``,

- one of its living members (on ``start``) began a spell of 临时救助, or of
  低保边缘, 低保 or 特困 above the household's standing on ``start`` (the
  highest of these it was in: 低保边缘 to 低保 is new need, 低保 to 低保边缘
  is a step out);
- or feedback verified one of its warnings as 属实 (by 办结日期).

The programs and the verified value come from ``rules/model.yaml``. The
assistance and feedback passed in are those known at ``end``; the facts are
those of ``start``, so a label never reaches back into the features.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.contract.keys import id_positions_in_many, positions_in_many
from monitor.policy.facts import HOUSEHOLD_PROGRAMS, PROGRAM_FLAGS, Facts


@dataclass(frozen=True)
class LabelSettings:
    """The ``label`` section of ``rules/model.yaml``."""

    horizon_months: int
    programs_entered: tuple[str, ...]
    #: Programs that rank a household's standing, lowest first.
    standing_order: tuple[str, ...]
    verified_value: str


#: For a program a household can be in, the household fact that says so (the
#: programs a standing can be ranked by).
HOUSEHOLD_FLAG = {program: HOUSEHOLD_PROGRAMS[flag] for program, flag in PROGRAM_FLAGS.items()
                   if flag in HOUSEHOLD_PROGRAMS}


#: The columns of each history source that :func:`outcome_labels` reads.
LABEL_COLUMNS = {"assistance": ["id_number", "program", "start_date"],
                 "feedback": ["household_id", "verified", "closed_date"]}


def outcome_labels(facts: Facts, assistance: pd.DataFrame, feedback: pd.DataFrame,
                   end: dt.date, settings: LabelSettings) -> pd.DataFrame:
    """Each household's outcome over ``(facts.as_of, end]``.

    Parameters
    ----------
    facts : Facts
        The facts on the as-of date: the households and members labelled, and
        the programs they were already in.
    assistance : pandas.DataFrame
        The assistance snapshot known at ``end`` (id_number, program, start_date).
    feedback : pandas.DataFrame
        Feedback known at ``end`` (household_id, verified, closed_date).
    end : datetime.date
        The last day of the horizon.
    settings : LabelSettings

    Returns
    -------
    pandas.DataFrame
        Indexed like ``facts.households``: ``entered_program`` and
        ``verified_need`` (bool) and ``label`` (either).
    """
    start, stop = pd.Timestamp(facts.as_of), pd.Timestamp(end)
    households = facts.households
    count = len(households)

    began = assistance["start_date"]
    spells = assistance[((began > start) & (began <= stop)
                         & assistance["program"].isin(settings.programs_entered)).to_numpy(
                             dtype=bool)]
    (person,) = id_positions_in_many([spells["id_number"]],
                                     facts.persons["id_number"].reset_index(drop=True))
    living = facts.persons["is_living"].to_numpy(dtype=bool)
    known = person >= 0
    known[known] = living[person[known]]
    household = facts.person_household[person[known]]
    program = spells["program"].to_numpy(dtype=object)[known]

    # Standing: 0 outside the ranked programs, else 1 + the rank of the highest one held.
    standing = np.zeros(count, dtype=np.int64)
    rank_of = {name: rank for rank, name in enumerate(settings.standing_order, start=1)}
    for name, rank in rank_of.items():
        held = households[HOUSEHOLD_FLAG[name]].to_numpy(dtype=bool)
        standing = np.where(held, np.maximum(standing, rank), standing)
    entry_rank = pd.Series(program).map(rank_of).to_numpy(dtype="float64", na_value=np.nan)
    # An unranked program (临时救助) always counts; a ranked one only above the standing.
    counts = np.isnan(entry_rank) | (entry_rank > standing[household])
    entered = np.bincount(household[counts], minlength=count) > 0

    closed = feedback["closed_date"]
    verified = feedback[((closed > start) & (closed <= stop)
                         & feedback["verified"].eq(settings.verified_value)).fillna(False)
                        .to_numpy(dtype=bool)]
    (where,) = positions_in_many([verified["household_id"]],
                                 pd.Series(households.index, dtype="string"))
    need = np.bincount(where[where >= 0], minlength=count) > 0
    return pd.DataFrame({"entered_program": entered, "verified_need": need,
                         "label": entered | need}, index=households.index)
