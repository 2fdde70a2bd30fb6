"""As-of semantics: which deliveries make the state of a source on a date.

Pure functions over the ingest manifest and lake rows. A *snapshot* source's
state is its newest accepted delivery on or before the date; an *events*
source's history is every delivery on or before the date, a key delivered
again replacing the earlier row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from monitor.contract.keys import last_per_key
from monitor.contract.sources import SNAPSHOT, Source

DELIVERY_DATE = "_delivery_date"
LIVE_STATUSES = ("accepted", "duplicate")
#: The manifest column that holds a delivery back from the state (see monitor.triage.deliveries).
HOLD = "hold"


def is_live(manifest: pd.DataFrame) -> np.ndarray:
    """Which manifest entries' rows count: accepted (or the same bytes as such) and not held.

    A held delivery (``hold`` set: waiting for an operator, refused or
    superseded) is in the lake, but not part of any source's state.
    """
    held = manifest[HOLD].notna() if HOLD in manifest else pd.Series(False, index=manifest.index)
    return (manifest["status"].isin(LIVE_STATUSES) & ~held).to_numpy(dtype=bool)


def deliveries_in_force_all(manifest: pd.DataFrame, source: Source, as_of: dt.date
                            ) -> pd.DataFrame:
    """Every live delivery of ``source`` on or before ``as_of``, oldest first, one per lake file."""
    return manifest[
        (manifest["source"] == source.name).to_numpy(dtype=bool)
        & is_live(manifest)
        & (pd.to_datetime(manifest["delivery_date"]) <= pd.Timestamp(as_of)).to_numpy(dtype=bool)
    ].sort_values(["delivery_date", "ingest_order"]).drop_duplicates("lake_file", keep="last")


def deliveries_in_force(manifest: pd.DataFrame, source: Source, as_of: dt.date) -> pd.DataFrame:
    """Manifest entries whose rows make up ``source`` as of ``as_of``.

    Events: every delivery on or before the date. Snapshots: the newest one
    (all its files; the same bytes delivered twice are read once).
    """
    entries = deliveries_in_force_all(manifest, source, as_of)
    if source.kind == SNAPSHOT and not entries.empty:
        entries = entries[entries["delivery_date"] == entries["delivery_date"].max()]
    return entries


def latest_rows(rows: pd.DataFrame, source: Source) -> np.ndarray:
    """Which rows make the source's state: a boolean mask over ``rows``.

    ``rows`` carries the ``_delivery_date`` of the delivery each came from
    (and at least the key columns). For an events source a key delivered again
    replaces the earlier row (one delivery never holds a key twice: ingest
    quarantines repeats); a snapshot's rows are all taken.
    """
    keep = np.ones(len(rows), dtype=bool)
    if source.kind == SNAPSHOT or rows.empty:
        return keep
    delivered = rows[DELIVERY_DATE].to_numpy(dtype="datetime64[ns]").astype("int64")
    latest = last_per_key(rows, list(source.key), delivered)
    if len(latest) < len(rows):
        keep[:] = False
        keep[latest] = True
    return keep
