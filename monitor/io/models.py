"""Model artifacts under the home: write one atomically, find the newest for a run.

Layout::

    models/<version>/model.joblib       the fitted RiskModel (joblib pickle)
    models/<version>/metadata.json      version, training window, features, data hash, metrics
    models/<version>/MODEL_CARD.md      the model card
    models/<version>/validation.parquet validation households: probability, outcome, rules score

A version is ``<training date>-<8 hex digits>`` of a sha256 over the
training data and the settings: training again on the same data with the
same settings gives the same version (and the same model), and the folder
already there is kept. A run uses the newest model trained for a date on or
before its own (the latest written, among several for that date), so a past
date run again scores as it did unless a model for a date up to it has been
trained since. A model is loaded only by the scikit-learn and numpy versions
that saved it.

A model file is a pickle: load only models this system wrote into the home.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from monitor.io.files import write_parquet
from monitor.io.home import STAGING, Home, temporary_name
from monitor.model.features import FEATURE_NAMES
from monitor.model.risk import RiskModel, model_is_usable

MODEL_FILE, METADATA_FILE, CARD_FILE = "model.joblib", "metadata.json", "MODEL_CARD.md"
VALIDATION_FILE = "validation.parquet"
#: Bumped when RiskModel changes in a way an old pickle cannot follow.
MODEL_FORMAT = 1


class ModelError(ValueError):
    """A model artifact that cannot be used."""


def models_dir(home: Path) -> Path:
    """Where a home keeps its models."""
    return Home.of(home).models


def library_versions() -> dict[str, str]:
    """The versions a model file depends on: a pickle is only safe to load with the same."""
    import sklearn  # here, not at the top: a run without a model need not import it

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "model_format": str(MODEL_FORMAT)}


def write_model(home: Path, model: RiskModel, card: str, validation: pd.DataFrame) -> Path:
    """Write a model's folder: staged beside it, then moved into place in one rename.

    A folder of the same version (the same data and settings) is already that
    model: it is kept as it is.
    """
    folder = models_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.version
    if (target / MODEL_FILE).exists():
        return target
    staging = temporary_name(target, STAGING)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    metadata = {**model.metadata, "libraries": library_versions(),
                "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    model.metadata = metadata
    joblib.dump(model, staging / MODEL_FILE)
    (staging / METADATA_FILE).write_text(json.dumps(metadata, ensure_ascii=False, indent=2),
                                         encoding="utf-8")
    (staging / CARD_FILE).write_text(card, encoding="utf-8")
    write_parquet(validation, staging / VALIDATION_FILE)
    staging.rename(target)
    return target


def model_versions(home: Path) -> list[dict]:
    """The metadata of every complete model folder, oldest first."""
    found = []
    for path in models_dir(home).glob(f"*/{METADATA_FILE}"):
        if path.parent.name.startswith(".") or not (path.parent / MODEL_FILE).exists():
            continue
        try:
            found.append({**json.loads(path.read_text(encoding="utf-8")),
                          "folder": str(path.parent)})
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda meta: (meta.get("trained_on", ""),
                                           meta.get("written_at", ""), meta.get("version", "")))


#: Modules a model saved before the stage packages may name (a logistic regression's
#: ``log_amounts``), and where they are now.
EARLIER_MODULES = {"monitor.training": "monitor.model.training",
                   "monitor.features": "monitor.model.features",
                   "monitor.labels": "monitor.model.labels"}


@contextmanager
def _earlier_module_names() -> Iterator[None]:
    """While a model is unpickled, the modules it may name by their earlier names."""
    added = [name for name in EARLIER_MODULES if name not in sys.modules]
    for name in added:
        sys.modules[name] = importlib.import_module(EARLIER_MODULES[name])
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def load_latest_model(home: Path, run_date: dt.date) -> RiskModel | None:
    """The newest model trained for a date on or before ``run_date`` (None: there is none)."""
    usable = [meta for meta in model_versions(home) if model_is_usable(meta, run_date)]
    if not usable:
        return None
    folder = Path(usable[-1]["folder"])
    if usable[-1].get("libraries") != library_versions():
        raise ModelError(f"{folder}: the model was saved with {usable[-1].get('libraries')}, "
                         f"this installation has {library_versions()}; run `monitor train` "
                         "again")
    try:
        with _earlier_module_names():
            model = joblib.load(folder / MODEL_FILE)
    except Exception as error:
        raise ModelError(f"{folder / MODEL_FILE}: cannot load the model: {error}") from None
    if not isinstance(model, RiskModel) or model.metadata.get("features") != list(FEATURE_NAMES):
        raise ModelError(f"{folder}: the model was trained on other features than this version "
                         "computes; run `monitor train` again")
    return model
