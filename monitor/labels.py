"""What the risk model learns to foresee: whether a household came to need help in the horizon.

Pure. For an as-of date ``start`` and the horizon's end ``end``, a household
(as registered on ``start``) is positive when, on a date in ``(start, end]``,

- one of its members (on ``start``) began a spell of 低保, 特困 or 低保边缘
  that the household was not already in on ``start``, or a spell of 临时救助;
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

from monitor.facts import HOUSEHOLD_PROGRAMS, PROGRAM_FLAGS, Facts
from monitor.keys import id_positions_in_many, positions_in_many


@dataclass(frozen=True)
class LabelSettings:
    """The ``label`` section of ``rules/model.yaml``."""

    horizon_months: int
    programs_entered: tuple[str, ...]
    verified_value: str


#: For a program a household can already be in, the household fact that says so.
_ALREADY_IN = {program: HOUSEHOLD_PROGRAMS[flag] for program, flag in PROGRAM_FLAGS.items()
               if flag in HOUSEHOLD_PROGRAMS}


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
    known = person >= 0
    household = facts.person_household[person[known]]
    program = spells["program"].to_numpy(dtype=object)[known]
    # Entering a program the household was already in is not news.
    already = np.zeros(len(household), dtype=bool)
    for name, fact in _ALREADY_IN.items():
        is_program = program == name
        already[is_program] = households[fact].to_numpy(dtype=bool)[household[is_program]]
    entered = np.bincount(household[~already], minlength=count) > 0

    closed = feedback["closed_date"]
    verified = feedback[((closed > start) & (closed <= stop)
                         & feedback["verified"].eq(settings.verified_value)).fillna(False)
                        .to_numpy(dtype=bool)]
    (where,) = positions_in_many([verified["household_id"]],
                                 pd.Series(households.index, dtype="string"))
    need = np.bincount(where[where >= 0], minlength=count) > 0
    return pd.DataFrame({"entered_program": entered, "verified_need": need,
                         "label": entered | need}, index=households.index)
