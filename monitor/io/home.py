"""Every path under a deployment's home folder, and how what is half-written is named.

One place for the layout, so that nothing else builds a path under HOME by
hand (and a store that is not a local folder has one seam to replace)::

    landing/<source>/<delivery date>/            deliveries, as departments put them
    lake/<source>/<date>_<sha16>.parquet         accepted rows (monitor.io.lake)
    lake/warning_state/<run date>.parquet        every warning after that run
    lake/warning_events/<run date>.parquet       that run's state changes
    quarantine/<source>/<date>_<sha16>.parquet   refused rows, with their reasons
    state/ingest_manifest.parquet                what was ingested, and how
    state/county_moves/<registry file>.parquet   households and persons that moved county
    state/delivery_decisions.parquet             the operator's releases and rejections
    state/pseudonyms.json                        whether the lake holds pseudonyms
    state/run.lock                               one run at a time
    state/font_subsets/                          the report font's subsets, kept
    out/<run date>/                              a run's outputs
    models/<version>/                            trained models
    tune/<name>/                                 tune reports
    parameters.yaml, deliveries.yaml             the home's overrides of rules/

**Half-written things** are named ``.<final name>.<process id>.<kind>``
beside their final name (:func:`temporary_name`): ``tmp`` for a file being
written, ``pending`` for a warning state file staged until the run's
outputs are in place, ``staging`` for a folder being written, ``replaced``
for the folder it replaces while it moves in. Readers never look at them
(the names start with a dot); :meth:`Home.leftovers` finds those of
processes that died.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

TEMPORARY, PENDING, STAGING, REPLACED = "tmp", "pending", "staging", "replaced"
WARNING_STATE, WARNING_EVENTS = "warning_state", "warning_events"
PARAMETERS_OVERRIDE, DELIVERIES_OVERRIDE = "parameters.yaml", "deliveries.yaml"


def temporary_name(target: Path, kind: str = TEMPORARY) -> Path:
    """The name ``target`` has while it is written: hidden, with the writer's process id.

    Examples
    --------
    >>> temporary_name(Path("out/2026-06-30"), STAGING).name.startswith(".2026-06-30.")
    True
    """
    return target.with_name(f".{target.name}.{os.getpid()}.{kind}")


def writer_of(path: Path) -> int | None:
    """The process id in a half-written thing's name (None if it has none)."""
    pid = path.suffixes[-2][1:] if len(path.suffixes) > 1 else ""
    return int(pid) if pid.isdigit() else None


def dated_files(folder: Path, pattern: str = "*.parquet") -> dict[dt.date, Path]:
    """The entries of a folder named by a date (``2026-06-30.parquet``, ``2026-06-30/``)."""
    files = {}
    for path in folder.glob(pattern):
        try:
            files[dt.date.fromisoformat(path.stem)] = path
        except ValueError:
            continue
    return files


@dataclass(frozen=True)
class Home:
    """A deployment's home folder: where each kind of file lives."""

    root: Path

    @classmethod
    def of(cls, home: Path | str | Home) -> Home:
        """The home of a path (or the home itself)."""
        return home if isinstance(home, Home) else cls(Path(home))

    # --- deliveries and the lake ----------------------------------------------------------
    @property
    def landing(self) -> Path:
        """Where departments put their deliveries, ``landing/<source>/<delivery date>/``."""
        return self.root / "landing"

    def delivery(self, source: str, delivery_date: dt.date) -> Path:
        """One delivery's folder."""
        return self.landing / source / delivery_date.isoformat()

    def lake(self, source: str) -> Path:
        """One source's accepted rows."""
        return self.root / "lake" / source

    @property
    def warning_state(self) -> Path:
        """Every warning after each run, a file per run date."""
        return self.root / "lake" / WARNING_STATE

    @property
    def warning_events(self) -> Path:
        """Each run's warning state changes, a file per run date."""
        return self.root / "lake" / WARNING_EVENTS

    def quarantine(self, source: str) -> Path:
        """One source's refused rows, with their reasons."""
        return self.root / "quarantine" / source

    # --- state -------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        """What the home remembers between runs."""
        return self.root / "state"

    @property
    def ingest_manifest(self) -> Path:
        """Every delivered file: what became of it."""
        return self.state / "ingest_manifest.parquet"

    @property
    def county_moves(self) -> Path:
        """The county moves each registry delivery recorded."""
        return self.state / "county_moves"

    @property
    def delivery_decisions(self) -> Path:
        """The operator's releases and rejections of held deliveries."""
        return self.state / "delivery_decisions.parquet"

    @property
    def pseudonym_marker(self) -> Path:
        """Whether the lake holds pseudonyms, and a check value of the key."""
        return self.state / "pseudonyms.json"

    @property
    def run_lock(self) -> Path:
        """The lock that lets one run at a time use the home."""
        return self.state / "run.lock"

    @property
    def font_subsets(self) -> Path:
        """The report font's subsets, kept between runs."""
        return self.state / "font_subsets"

    # --- outputs -------------------------------------------------------------------------
    @property
    def outputs(self) -> Path:
        """Every run's outputs, a folder per run date."""
        return self.root / "out"

    def out(self, run_date: dt.date) -> Path:
        """One run date's outputs."""
        return self.outputs / run_date.isoformat()

    @property
    def models(self) -> Path:
        """Trained models, a folder per version."""
        return self.root / "models"

    @property
    def tune(self) -> Path:
        """Tune reports, a folder per candidate and date."""
        return self.root / "tune"

    @property
    def parameters_override(self) -> Path:
        """The home's parameter overrides (``parameters.yaml``)."""
        return self.root / PARAMETERS_OVERRIDE

    @property
    def deliveries_override(self) -> Path:
        """The home's delivery expectations (``deliveries.yaml``)."""
        return self.root / DELIVERIES_OVERRIDE

    def leftovers(self) -> list[Path]:
        """Every half-written file or folder (:func:`temporary_name`) under the home."""
        lake, quarantine = self.root / "lake", self.root / "quarantine"
        return [
            *self.outputs.glob(f".*.{STAGING}"), *self.outputs.glob(f".*.{REPLACED}"),
            *self.models.glob(f".*.{STAGING}"),
            *self.tune.glob(f".*.{STAGING}"), *self.tune.glob(f".*.{REPLACED}"),
            *self.warning_state.glob(f".*.{PENDING}"), *self.warning_events.glob(f".*.{PENDING}"),
            *lake.glob(f"*/.*.{TEMPORARY}"),
            *lake.glob(f"*/county_code=*/.*.{TEMPORARY}"),  # the lake's earlier layout
            *quarantine.glob(f"*/.*.{TEMPORARY}"),
            *self.state.rglob(f".*.{TEMPORARY}"),
        ]
