"""The risk model as the nightly run uses it: settings, scores and the reasons behind a score.

Pure. :class:`ModelSettings` validates ``rules/model.yaml``.
:class:`RiskModel` wraps a fitted, calibrated scikit-learn classifier
(:mod:`monitor.model.training` makes one) with what it needs to be used and
explained: the feature names, a reference household and the Chinese phrase
of each feature.

A household's 风险评分 is its calibrated probability × 100, rounded. Its
reasons are found by occlusion: each feature in turn is set to the reference
household's value (the training median) and the score is computed again; the
features whose own value raised the score most are named, with the points
they added. This works the same for any model, and a reason can be checked by
hand: put the reference value in, and the score drops by the points shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitor.model.features import FEATURE_NAMES
from monitor.model.labels import HOUSEHOLD_FLAG, LabelSettings

MAXIMUM_SCORE = 100
#: Households explained at once (rows predicted = households × features).
EXPLAIN_CHUNK = 4096
REASON_SEPARATOR = "；"


class ModelSettingsError(ValueError):
    """``rules/model.yaml`` cannot be used."""


@dataclass(frozen=True)
class FeaturePhrase:
    """How a feature is said in 预警原因."""

    phrase: str
    digits: int = 0
    absent: str | None = None


@dataclass(frozen=True)
class ModelSettings:
    """The settings of ``rules/model.yaml``: label, training, capacity, fairness, explanation."""

    label: LabelSettings
    snapshots: int
    validation_share: float
    calibration_share: float
    seed: int
    max_training_rows: int
    prefer_simpler_within: float
    gradient_boosting: dict
    logistic_regression: dict
    calibration: str
    capacity: int
    also_report: tuple[int, ...]
    head_age_bands: tuple[int, ...]
    recall_ratio_flag: float
    minimum_positives: int
    explanation_top: int
    minimum_points: int
    no_single_reason: str
    phrases: dict[str, FeaturePhrase] = field(repr=False)

    @classmethod
    def from_definition(cls, document: object, origin: str = "rules/model.yaml"
                        ) -> ModelSettings:
        """Validate the parsed YAML; errors name the file and the entry."""
        def fail(problem: str) -> ModelSettingsError:
            return ModelSettingsError(f"{origin}: {problem}")

        if not isinstance(document, dict):
            raise fail("expected a mapping")
        try:
            label, training = document["label"], document["training"]
            capacity, fairness = document["capacity"], document["fairness"]
            explanation, features = document["explanation"], document["features"]
            settings = cls(
                label=LabelSettings(int(label["horizon_months"]),
                                    tuple(label["programs_entered"]),
                                    tuple(label["standing_order"]),
                                    str(label["verified_value"])),
                snapshots=int(training["snapshots"]),
                validation_share=float(training["validation_share"]),
                calibration_share=float(training["calibration_share"]),
                seed=int(training["seed"]),
                max_training_rows=int(training["max_training_rows"]),
                prefer_simpler_within=float(training["prefer_simpler_within"]),
                gradient_boosting=dict(training["gradient_boosting"]),
                logistic_regression=dict(training["logistic_regression"]),
                calibration=str(training["calibration"]),
                capacity=int(capacity["per_township"]),
                also_report=tuple(int(k) for k in capacity.get("also_report", ())),
                head_age_bands=tuple(int(age) for age in fairness["head_age_bands"]),
                recall_ratio_flag=float(fairness["recall_ratio_flag"]),
                minimum_positives=int(fairness["minimum_positives"]),
                explanation_top=int(explanation["top"]),
                minimum_points=int(explanation["minimum_points"]),
                no_single_reason=str(explanation["no_single_reason"]),
                phrases={name: FeaturePhrase(**entry) for name, entry in features.items()},
            )
        except KeyError as error:
            raise fail(f"missing {error.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise fail(str(error)) from None
        unranked = sorted(set(settings.label.standing_order) - set(HOUSEHOLD_FLAG))
        if unranked:
            raise fail(f"label.standing_order: {unranked} not among {sorted(HOUSEHOLD_FLAG)}")
        if set(settings.phrases) != set(FEATURE_NAMES):
            missing = sorted(set(FEATURE_NAMES) - set(settings.phrases))
            unknown = sorted(set(settings.phrases) - set(FEATURE_NAMES))
            raise fail(f"features: missing {missing}, unknown {unknown}")
        if not (settings.validation_share > 0 and settings.calibration_share > 0
                and settings.validation_share + settings.calibration_share < 1):
            raise fail("training: validation_share and calibration_share must be above 0 and "
                       "leave townships to fit on")
        if settings.calibration not in ("sigmoid", "isotonic"):
            raise fail("training.calibration must be sigmoid or isotonic")
        if min(settings.snapshots, settings.capacity, settings.label.horizon_months) < 1:
            raise fail("snapshots, capacity and horizon_months must be at least 1")
        return settings


@dataclass
class RiskModel:
    """A fitted, calibrated classifier ready to score and explain households.

    Parameters
    ----------
    estimator : object
        Fitted scikit-learn classifier with ``predict_proba`` over
        :data:`monitor.model.features.FEATURE_NAMES` columns.
    reference : numpy.ndarray
        The reference household: each feature's training median.
    phrases : dict
        :class:`FeaturePhrase` per feature.
    metadata : dict
        Version, training window, features, data hash and metrics.
    explanation_top : int
        How many reasons a household is given.
    minimum_points : int
        Reasons that added fewer points are not given.
    no_single_reason : str
        What is said when no feature added that many points.
    """

    estimator: object
    reference: np.ndarray
    phrases: dict[str, FeaturePhrase]
    metadata: dict
    explanation_top: int = 3
    minimum_points: int = 1
    no_single_reason: str = "多项因素共同作用，无单一突出因素"

    @property
    def version(self) -> str:
        """The model version (training date and data hash)."""
        return self.metadata["version"]

    @property
    def description(self) -> str:
        """What the score is, for the run manifest."""
        return (f"风险评分 = calibrated probability × 100 of model {self.version} "
                f"({self.metadata['kind']}, trained {self.metadata['trained_on']})")

    def probabilities(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of each household's outcome within the horizon."""
        if not len(features):
            return np.zeros(0)
        return self.estimator.predict_proba(feature_matrix(features))[:, 1]

    def scores(self, features: pd.DataFrame) -> pd.Series:
        """风险评分 0–100: the calibrated probability × 100, rounded."""
        return pd.Series(to_score(self.probabilities(features)), index=features.index,
                         name="risk_score")

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Points each feature added to each household's score (households × features).

        A feature's points are the household's score less its score with that
        feature set to the reference value; a missing value is not credited.
        """
        matrix = feature_matrix(features)
        count, width = matrix.shape
        points = np.zeros((count, width))
        for start in range(0, count, EXPLAIN_CHUNK):
            block = matrix[start:start + EXPLAIN_CHUNK]
            rows = len(block)
            base = self.estimator.predict_proba(block)[:, 1]
            # Every household repeated once per feature, that feature set to the reference.
            occluded = np.repeat(block[None, :, :], width, axis=0)
            columns = np.arange(width)
            occluded[columns, :, columns] = self.reference[:, None]
            changed = self.estimator.predict_proba(occluded.reshape(width * rows, width))[:, 1]
            points[start:start + rows] = (base[:, None] - changed.reshape(width, rows).T
                                          ) * MAXIMUM_SCORE
        points[np.isnan(matrix)] = 0.0
        return points

    def reasons(self, features: pd.DataFrame) -> pd.Series:
        """The features that raised each household's score most, in Chinese.

        At most :attr:`explanation_top` of them, each having added at least
        :attr:`minimum_points`; :attr:`no_single_reason` for a household with none.

        Examples of one household's text: ``近期医疗自付8600元（+12分）；单人户（+6分）``.
        """
        if not len(features):
            return pd.Series([], index=features.index, dtype="string")
        points = self.contributions(features)
        order = np.argsort(-points, axis=1, kind="stable")[:, :self.explanation_top]
        text = pd.Series("", index=features.index, dtype="string")
        for rank in range(order.shape[1]):
            chosen = order[:, rank]
            gained = np.round(points[np.arange(len(points)), chosen])
            part = pd.Series(pd.NA, index=features.index, dtype="string")
            for number, name in enumerate(FEATURE_NAMES):
                rows = (chosen == number) & (gained >= self.minimum_points)
                if rows.any():
                    said = self._phrase(name, features[name].to_numpy()[rows])
                    part[rows] = said + "（+" + gained[rows].astype(np.int64).astype(str) + "分）"
            joined = np.where(text.eq("").to_numpy(dtype=bool), "", REASON_SEPARATOR)
            text = text.where(part.isna(), text + joined + part.fillna(""))
        return text.replace("", self.no_single_reason)

    def _phrase(self, name: str, values: np.ndarray) -> np.ndarray:
        """One feature's phrase for each value (``absent`` for a yes/no feature at 0)."""
        phrase = self.phrases[name]
        rounded = np.round(values, phrase.digits)
        shown = (rounded.astype(np.int64).astype(str) if phrase.digits == 0
                 else np.char.mod(f"%.{phrase.digits}f", rounded))
        said = np.char.replace(np.full(len(values), phrase.phrase), "{value}", shown)
        if phrase.absent is not None:
            said = np.where(values > 0, said, phrase.absent)
        return said.astype(object)


def feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """The features as the model reads them, in training and at night alike.

    Training keeps its history of features as float32 (millions of rows);
    scoring rounds to float32 too, so that a household scores the same either way.
    """
    return features[list(FEATURE_NAMES)].to_numpy(dtype="float32").astype("float64")


def to_score(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities as whole scores 0–100, rounded half up (四舍五入).

    Examples
    --------
    >>> to_score(np.array([0.0, 0.004, 0.125, 0.135, 1.0])).tolist()
    [0, 0, 13, 14, 100]
    """
    scaled = np.asarray(probabilities, dtype="float64") * MAXIMUM_SCORE
    # A hair of tolerance: 0.135 × 100 is 13.499999… in binary and should round up.
    return np.clip(np.floor(scaled + 0.5 + 1e-9), 0, MAXIMUM_SCORE).astype(np.int64)


def model_is_usable(metadata: dict, run_date: dt.date) -> bool:
    """Whether a model may score a run: trained for a date on or before the run date."""
    return dt.date.fromisoformat(metadata["trained_on"]) <= run_date
