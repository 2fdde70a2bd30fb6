"""Training the risk model: the plan of as-of dates, the rows, the fit and the comparison.

Pure: functions take DataFrames, settings and dates. The flow
(:mod:`flows.train`) reads each county's sources for each as-of date,
calls :func:`snapshot_rows`, then :func:`train_model` on the rows.

The split is by time and by place, never at random across time. Whole
townships are drawn, by a stable hash of their code, into three groups:

- *validation* townships, at the latest as-of date whose horizon is complete
  by the training date (``train_date - horizon``);
- *calibration* and *fitting* townships, at every training date: monthly
  as-of dates whose horizons end by the validation date.

No household is in two groups: one seen in validation is dropped from
fitting and calibration, one seen in calibration from fitting, wherever it
lived at the time.
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

from monitor.contract.dates import months_before
from monitor.model import metrics
from monitor.model.features import FEATURE_NAMES, audit_groups, model_features
from monitor.model.labels import outcome_labels
from monitor.model.risk import ModelSettings, RiskModel, feature_matrix
from monitor.policy.facts import build_facts
from monitor.policy.params import Parameters
from monitor.policy.rules import Rule, evaluate, open_to_score, score_rule
from monitor.policy.scoring import RulesOnlyScore

TRAINING, CALIBRATION, VALIDATION = "training", "calibration", "validation"
LOGISTIC, BOOSTING = "logistic_regression", "gradient_boosting"


@dataclass(frozen=True)
class Snapshot:
    """One as-of date of the plan: features on ``as_of``, outcome over ``(as_of, end]``.

    ``role`` is VALIDATION for the validation date and TRAINING for the
    others (which give the rows of both the fitting and the calibration
    townships).
    """

    as_of: dt.date
    end: dt.date
    role: str


def training_plan(train_date: dt.date, settings: ModelSettings) -> list[Snapshot]:
    """The as-of dates of a training on ``train_date``, oldest first.

    Examples
    --------
    >>> from monitor.io.config import load_model_settings
    >>> plan = training_plan(dt.date(2026, 6, 30), load_model_settings())
    >>> [(s.as_of.isoformat(), s.role) for s in plan][-3:]
    [('2025-05-30', 'training'), ('2025-06-30', 'training'), ('2025-12-30', 'validation')]
    """
    horizon = settings.label.horizon_months
    validation = months_before(train_date, horizon)
    plan = [Snapshot(validation, train_date, VALIDATION)]
    for step in range(settings.snapshots):
        as_of = months_before(validation, horizon + step)
        plan.append(Snapshot(as_of, months_before(validation, step), TRAINING))
    return sorted(plan, key=lambda snapshot: snapshot.as_of)


def township_roles(townships: pd.Series, settings: ModelSettings) -> np.ndarray:
    """Each township's group: VALIDATION, CALIBRATION or TRAINING (a stable draw from its code).

    Examples
    --------
    >>> from monitor.io.config import load_model_settings
    >>> roles = township_roles(pd.Series([f"500101{n:03d}" for n in range(400)]),
    ...                        load_model_settings())
    >>> sorted(pd.Series(roles).value_counts().index)
    ['calibration', 'training', 'validation']
    """
    key = f"{settings.seed:016d}"[-16:]
    hashed = pd.util.hash_array(np.asarray(townships.astype(str), dtype=object), hash_key=key)
    draw = (hashed % 10_000) / 10_000
    return np.select([draw < settings.validation_share,
                      draw < settings.validation_share + settings.calibration_share],
                     [VALIDATION, CALIBRATION], TRAINING)


def snapshot_rows(sources: dict[str, pd.DataFrame], assistance_at_end: pd.DataFrame,
                  feedback_at_end: pd.DataFrame, snapshot: Snapshot, params: Parameters,
                  settings: ModelSettings, rules: list[Rule] | None = None,
                  scoring: RulesOnlyScore | None = None) -> pd.DataFrame:
    """One county's rows for one as-of date: features, groups, outcome (and rules baseline).

    Only the households of the townships the date is for are kept, each row
    with its ``role``: validation townships on the validation date,
    calibration and fitting townships on the training dates. With ``rules``
    and ``scoring``, adds ``rules_score``: the rules-only 风险评分 the household
    would have had that night (0 when no rule hit), and ``model_eligible``:
    whether MODEL_RISK could list it (:func:`monitor.policy.rules.open_to_score`).
    """
    facts = build_facts(sources, snapshot.as_of, params)
    groups = audit_groups(facts, list(settings.head_age_bands))
    role = township_roles(groups["township_code"], settings)
    keep = (role == VALIDATION) if snapshot.role == VALIDATION else (role != VALIDATION)
    features = model_features(facts, params)
    labels = outcome_labels(facts, assistance_at_end, feedback_at_end, snapshot.end,
                            settings.label)
    rows = pd.concat([features.astype("float32"), groups, labels], axis=1)
    if rules is not None and scoring is not None:
        hits = evaluate(rules, facts, params)
        rows["rules_score"] = scoring.scores(hits).reindex(rows.index, fill_value=0).astype(
            "int64")
        # Who the model may list, as MODEL_RISK's own condition says (ranked alone).
        rows["model_eligible"] = pd.Series(open_to_score(score_rule(rules), facts, params),
                                           index=facts.households.index).reindex(rows.index)
    return rows[keep].assign(as_of=pd.Timestamp(snapshot.as_of), role=role[keep])


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
            LogisticRegression(**settings.logistic_regression)),
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
    #: Rows used in each role (household × as-of date), after exclusions and sampling.
    row_counts: dict[str, int]


def separate(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validation, calibration and fitting rows, no household in two of them.

    A household can move between townships from one date to another; it is
    kept only in the latest role it has (validation before calibration before
    fitting), so that nothing learnt about it can flatter the figures.
    """
    validation = rows[(rows["role"] == VALIDATION).to_numpy()]
    in_validation = rows.index.isin(validation.index)
    calibration = rows[((rows["role"] == CALIBRATION).to_numpy()) & ~in_validation]
    fitting = rows[((rows["role"] == TRAINING).to_numpy()) & ~in_validation
                   & ~rows.index.isin(calibration.index)]
    return validation, calibration, fitting


def _sample(rows: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows (household × date), a stable random sample of them."""
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
    validation, calibration, fitting = separate(rows)
    fitting = _sample(fitting, settings.max_training_rows, settings.seed)
    for name, part in (("training", fitting), ("calibration", calibration),
                       ("validation", validation)):
        if part["label"].nunique() < 2:  # noqa: PLR2004 - both classes are needed
            raise ValueError(f"the {name} rows have {len(part)} households and only one "
                             "outcome; more history or more households are needed")

    def matrix(part: pd.DataFrame) -> np.ndarray:
        return feature_matrix(part)

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
    parts = {TRAINING: fitting, CALIBRATION: calibration, VALIDATION: validation}
    row_counts = {role: len(part) for role, part in parts.items()}
    dates = {role: sorted({day.date().isoformat() for day in part["as_of"]})
             for role, part in parts.items()}
    metadata = {
        "version": f"{train_date.isoformat()}-{version_hash[:8]}",
        "trained_on": train_date.isoformat(),
        "kind": chosen,
        "features": list(FEATURE_NAMES),
        "data_sha256": digest,
        "horizon_months": settings.label.horizon_months,
        "as_of_dates": dates,
        "rows": row_counts,
        "positives": {role: int(part["label"].sum()) for role, part in parts.items()},
        "capacity_per_township": capacity,
        "validation": candidates[chosen],
        "candidates": candidates,
        "seed": settings.seed,
    }
    model = RiskModel(estimator, reference, settings.phrases, metadata,
                      settings.explanation_top, settings.minimum_points,
                      settings.no_single_reason)
    return TrainingResult(model, chosen, candidates, validation, row_counts)
