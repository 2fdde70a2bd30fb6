"""The delivery decisions log, and an operator's release or rejection of a held delivery.

``state/delivery_decisions.parquet`` keeps every decision about a delivery:
held by an ingest (with the reasons), accepted once a later file completed
it, superseded by a later delivery, released or rejectd by an operator
(with the time and the reason they gave). The ingest manifest's ``hold``
column carries the effect; this log says who decided, when and why.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from monitor.contract.dates import BUREAU_TIME_ZONE
from monitor.io.files import write_parquet
from monitor.io.home import Home
from monitor.io.lake import manifest_path, read_manifest
from monitor.triage.deliveries import (
    BY_INGEST,
    BY_OPERATOR,
    HELD,
    Decision,
    DeliveryExpectations,
    decide,
    delivery_health,
)

DECISION_COLUMNS = {
    "source": "string", "delivery_date": "string", "decision": "string", "reasons": "string",
    "reasons_zh": "string", "decided_by": "string", "note": "string", "decided_at": "string",
    # The run date of the ingest that made it (empty for an operator's decision).
    "run_date": "string",
}


def decisions_path(home: Path) -> Path:
    """Where the delivery decisions log lives."""
    return Home.of(home).delivery_decisions


def read_decisions(home: Path) -> pd.DataFrame:
    """Every decision about a delivery, oldest first (:data:`DECISION_COLUMNS`)."""
    path = decisions_path(home)
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype=kind)
                             for name, kind in DECISION_COLUMNS.items()})
    return pd.read_parquet(path).reindex(columns=list(DECISION_COLUMNS)).astype(DECISION_COLUMNS)


def append_decisions(home: Path, decisions: pd.DataFrame, made: list[Decision],
                     run_date: dt.date | None = None) -> pd.DataFrame:
    """Add decisions to the log (written atomically); return the whole log.

    ``run_date`` is the run whose ingest made them (None: an operator's).
    """
    if not made:
        return decisions
    now = dt.datetime.now(BUREAU_TIME_ZONE).isoformat(timespec="seconds")
    day = None if run_date is None else run_date.isoformat()
    added = pd.DataFrame([{**vars(decision), "decided_at": now, "run_date": day}
                          for decision in made]).astype(DECISION_COLUMNS)
    decisions = pd.concat([decisions, added], ignore_index=True) if len(decisions) else added
    write_parquet(decisions, decisions_path(home))
    return decisions


def decided_on(decisions: pd.DataFrame, run_date: dt.date) -> list[Decision]:
    """What the ingests of ``run_date`` decided, in order: the same on every rerun of the date."""
    made = decisions[(decisions["decided_by"] == BY_INGEST).fillna(False).to_numpy(dtype=bool)
                     & (decisions["run_date"] == run_date.isoformat()).fillna(False).to_numpy(
                         dtype=bool)]
    fields = [name for name in DECISION_COLUMNS if name not in ("decided_at", "run_date")]
    return [Decision(**{name: ("" if pd.isna(row[name]) else str(row[name])) for name in fields})
            for row in made[fields].to_dict("records")]


def operator_decided(decisions: pd.DataFrame) -> set[tuple[str, str]]:
    """The (source, delivery date) pairs an operator has released or rejectd."""
    chosen = decisions[decisions["decided_by"] == BY_OPERATOR]
    return set(zip(chosen["source"], chosen["delivery_date"], strict=True))


def held_reasons(decisions: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Why each delivery was held, by (source, delivery date): its latest hold's reasons."""
    held = decisions[decisions["decision"] == HELD].drop_duplicates(
        ["source", "delivery_date"], keep="last")
    return {(source, day): reasons for source, day, reasons in zip(
        held["source"], held["delivery_date"], held["reasons"], strict=True)}


def home_delivery_health(home: Path, expectations: DeliveryExpectations, as_of: dt.date,
                         manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """A home's delivery health (see monitor.triage.deliveries), with its holds' reasons."""
    manifest = read_manifest(home) if manifest is None else manifest
    return delivery_health(manifest, expectations, as_of, held_reasons(read_decisions(home)))


def record_decision(home: Path, source: str, delivery_date: dt.date, release: bool,
                    note: str) -> Decision:
    """Release or reject a held delivery (the caller holds the home's lock).

    The log is written first, then the manifest: killed in between, the
    delivery is still held and the command can be given again.

    Raises
    ------
    ValueError
        When the source has no held delivery of that date.
    """
    manifest, decision = decide(read_manifest(home), source, delivery_date.isoformat(),
                                release, note)
    append_decisions(home, read_decisions(home), [decision])
    write_parquet(manifest, manifest_path(home))
    return decision
