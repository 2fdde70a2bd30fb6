"""Training the risk model: the plan of as-of dates, the rows, the fit and the comparison.

Pure: functions take DataFrames, settings and dates. The flow
(:mod:`flows.training`) reads each county's sources for each as-of date,
calls :func:`snapshot_rows`, then :func:`train_model` on the rows.

The split is by time and by place, never at random across time:

- validation is the latest as-of date whose horizon is complete by the
  training date (``train_date - horizon``), on a held-out set of whole
  townships;
- training uses monthly as-of dates whose horizons end by the validation
  date, on the other townships (a household seen in validation is dropped
  from training wherever it lived);
- the latest training date is held out of fitting and used to calibrate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from monitor import metrics
from monitor.facts import build_facts
from monitor.features import FEATURE_NAMES, audit_groups, model_features
from monitor.labels import outcome_labels
from monitor.model import ModelSettings, RiskModel
from monitor.params import Parameters
from monitor.rules import Rule, evaluate
from monitor.scoring import RulesOnlyScore

TRAINING, CALIBRATION, VALIDATION = "training", "calibration", "validation"
LOGISTIC, BOOSTING = "logistic_regression", "gradient_boosting"


@dataclass(frozen=True)
class Snapshot:
    """One as-of date of the plan: features on ``as_of``, outcome over ``(as_of, end]``."""

    as_of: dt.date
    end: dt.date
    role: str


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` earlier, clamped to the month's end.

    Examples
    --------
    >>> months_before(dt.date(2026, 6, 30), 4)
    datetime.date(2026, 2, 28)
    """
    return (pd.Timestamp(day) - pd.DateOffset(months=months)).date()


def training_plan(train_date: dt.date, settings: ModelSettings) -> list[Snapshot]:
    """The as-of dates of a training on ``train_date``, oldest first.

    Examples
    --------
    >>> from monitor.io.config import load_model_settings
    >>> plan = training_plan(dt.date(2026, 6, 30), load_model_settings())
    >>> [(s.as_of.isoformat(), s.role) for s in plan][-3:]
    [('2025-05-30', 'training'), ('2025-06-30', 'calibration'), ('2025-12-30', 'validation')]
    """
    horizon = settings.label.horizon_months
    validation = months_before(train_date, horizon)
    plan = [Snapshot(validation, train_date, VALIDATION)]
    for step in range(settings.snapshots):
        as_of = months_before(validation, horizon + step)
        plan.append(Snapshot(as_of, months_before(validation, step),
                             CALIBRATION if step == 0 else TRAINING))
    return sorted(plan, key=lambda snapshot: snapshot.as_of)


def validation_townships(townships: pd.Series, settings: ModelSettings) -> np.ndarray:
    """Whether each township is held out for validation (a stable draw from its code)."""
    key = f"{settings.seed:016d}"[-16:]
    hashed = pd.util.hash_array(townships.astype(str).to_numpy(dtype=object), hash_key=key)
    return (hashed % 10_000) < settings.validation_share * 10_000


def snapshot_rows(sources: dict[str, pd.DataFrame], assistance_at_end: pd.DataFrame,
                  feedback_at_end: pd.DataFrame, snapshot: Snapshot, params: Parameters,
                  settings: ModelSettings, rules: list[Rule] | None = None,
                  scoring: RulesOnlyScore | None = None) -> pd.DataFrame:
    """One county's rows for one as-of date: features, groups, outcome (and rules baseline).

    Only the households of the snapshot's side of the split are kept
    (validation townships for validation, the others otherwise). With
    ``rules`` and ``scoring``, adds ``rules_score``: the rules-only 风险评分
    the household would have had that night (0 when no rule hit).
    """
    facts = build_facts(sources, snapshot.as_of, params)
    groups = audit_groups(facts, list(settings.head_age_bands))
    held_out = validation_townships(groups["township_code"], settings)
    keep = held_out if snapshot.role == VALIDATION else ~held_out
    features = model_features(facts, params)
    labels = outcome_labels(facts, assistance_at_end, feedback_at_end, snapshot.end,
                            settings.label)
    rows = pd.concat([features.astype("float32"), groups, labels], axis=1)
    if rules is not None and scoring is not None:
        hits = evaluate(rules, facts, params)
        rows["rules_score"] = scoring.scores(hits).reindex(rows.index, fill_value=0).astype(
            "int64")
    rows = rows[keep]
    return rows.assign(as_of=pd.Timestamp(snapshot.as_of), role=snapshot.role)


def combine_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Every snapshot's rows in one frame, the group columns kept as categories.

    (Concatenating categories that differ gives plain objects; made categories again,
    millions of rows of history stay small.)
    """
    rows = pd.concat(frames)
    groups = sorted({column for frame in frames for column, dtype in frame.dtypes.items()
                     if isinstance(dtype, pd.CategoricalDtype)})
    rows[groups] = rows[groups].astype("category")
    return rows


def data_hash(rows: pd.DataFrame) -> str:
    """sha256 of the rows a model learns from (features, labels and dates)."""
    digest = hashlib.sha256()
    hashed = pd.util.hash_pandas_object(rows[[*FEATURE_NAMES, "label", "as_of"]], index=True)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def log_amounts(values: np.ndarray) -> np.ndarray:
    """log(1 + x) of non-negative features: amounts are skewed, and a linear model wants them even.

    A module function, not a lambda, so that a fitted model can be saved.
    """
    return np.log1p(np.clip(values, 0, None))


def candidate_models(settings: ModelSettings) -> dict[str, Pipeline]:
    """The models tried: a logistic regression and a histogram gradient boosting model."""
    logarithm = FunctionTransformer(log_amounts, feature_names_out="one-to-one")
    return {
        LOGISTIC: make_pipeline(
            SimpleImputer(strategy="median"), logarithm, StandardScaler(),
            LogisticRegression(max_iter=2000, **settings.logistic_regression)),
        BOOSTING: make_pipeline(HistGradientBoostingClassifier(
            early_stopping=False, random_state=settings.seed, **settings.gradient_boosting)),
    }


@dataclass
class TrainingResult:
    """The chosen model, every candidate's validation figures, and the validation rows."""

    model: RiskModel
    chosen: str
    candidates: dict[str, dict]
    validation: pd.DataFrame
    rows: dict[str, int]


def _sample(rows: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, a stable random sample of them."""
    if len(rows) <= limit:
        return rows
    return rows.sample(n=limit, random_state=seed).sort_index(kind="stable")


def train_model(rows: pd.DataFrame, settings: ModelSettings, train_date: dt.date
                ) -> TrainingResult:
    """Fit the candidates, calibrate them, compare them on validation and keep one.

    Parameters
    ----------
    rows : pandas.DataFrame
        Every snapshot's rows (:func:`snapshot_rows`), validation rows with ``rules_score``.
    settings : ModelSettings
    train_date : datetime.date
        The date the model is trained for (the end of the validation horizon).

    Returns
    -------
    TrainingResult
    """
    validation = rows[rows["role"] == VALIDATION]
    seen_in_validation = rows.index.isin(validation.index)
    fitting = rows[(rows["role"] == TRAINING) & ~seen_in_validation]
    calibration = rows[(rows["role"] == CALIBRATION) & ~seen_in_validation]
    fitting = _sample(fitting, settings.max_training_rows, settings.seed)
    for name, part in (("training", fitting), ("calibration", calibration),
                       ("validation", validation)):
        if part["label"].nunique() < 2:  # noqa: PLR2004 - both classes are needed
            raise ValueError(f"the {name} rows have {len(part)} households and only one "
                             "outcome; more history or more households are needed")

    def matrix(part: pd.DataFrame) -> np.ndarray:
        return part[list(FEATURE_NAMES)].to_numpy(dtype="float64")

    capacity = settings.capacity
    candidates, fitted = {}, {}
    for name, pipeline in candidate_models(settings).items():
        pipeline.fit(matrix(fitting), fitting["label"].to_numpy())
        calibrated = CalibratedClassifierCV(FrozenEstimator(pipeline),
                                            method=settings.calibration)
        calibrated.fit(matrix(calibration), calibration["label"].to_numpy())
        probability = calibrated.predict_proba(matrix(validation))[:, 1]
        fitted[name] = calibrated
        candidates[name] = metrics.headline(validation, probability, capacity)
    chosen = LOGISTIC
    if (candidates[BOOSTING]["recall_at_capacity"]
            > candidates[LOGISTIC]["recall_at_capacity"] + settings.prefer_simpler_within):
        chosen = BOOSTING
    estimator = fitted[chosen]
    validation = validation.assign(
        probability=estimator.predict_proba(matrix(validation))[:, 1])
    reference = np.nanmedian(matrix(fitting), axis=0)
    digest = data_hash(rows)
    # The version names the data and the settings: either changed makes another model.
    settings_text = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str,
                               ensure_ascii=False)
    version_hash = hashlib.sha256((digest + settings_text).encode()).hexdigest()
    trained_rows = {"training": len(fitting), "calibration": len(calibration),
                    "validation": len(validation)}
    dates = {role: sorted({day.date().isoformat() for day in rows.loc[rows["role"] == role,
                                                                       "as_of"]})
             for role in (TRAINING, CALIBRATION, VALIDATION)}
    metadata = {
        "version": f"{train_date.isoformat()}-{version_hash[:8]}",
        "trained_on": train_date.isoformat(),
        "kind": chosen,
        "features": list(FEATURE_NAMES),
        "data_sha256": digest,
        "horizon_months": settings.label.horizon_months,
        "as_of_dates": dates,
        "rows": trained_rows,
        "positives": {role: int(rows.loc[rows["role"] == role, "label"].sum())
                      for role in (TRAINING, CALIBRATION, VALIDATION)},
        "capacity_per_township": capacity,
        "validation": candidates[chosen],
        "candidates": candidates,
        "seed": settings.seed,
    }
    model = RiskModel(estimator, reference, settings.phrases, metadata,
                      settings.explanation_top, settings.minimum_points,
                      settings.no_single_reason)
    return TrainingResult(model, chosen, candidates, validation, trained_rows)
