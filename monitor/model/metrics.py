"""How well a ranking finds the households that came to need help, at caseworker capacity.

Pure. Caseworkers in a township can visit ``k`` households from a list; a
ranking is judged by the households it puts in each township's top ``k``:

- precision at capacity: the share of those households that were positive;
- recall at capacity: the share of all positive households that were among them.

The model ranks by its probability, households with a living member only
(as MODEL_RISK lists them); the rules-only baseline by the score the nightly
run gave before there was a model, and it lists only households with a rule
hit. Ties are broken by a stable hash of the household id, the same
for both, so that neither gains from the order households happen to be in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

TIE_KEY = "monitor-capacity"


def select_at_capacity(townships: pd.Series, score: np.ndarray, k: int,
                       eligible: np.ndarray | None = None) -> np.ndarray:
    """Whether each household is in its township's top ``k`` by ``score``.

    Examples
    --------
    >>> towns = pd.Series(["a", "a", "a", "b"], index=["h1", "h2", "h3", "h4"])
    >>> select_at_capacity(towns, np.array([0.9, 0.1, 0.5, 0.2]), 2).tolist()
    [True, False, True, True]
    """
    score = np.asarray(score, dtype="float64")
    eligible = np.ones(len(score), dtype=bool) if eligible is None else np.asarray(eligible)
    tie = pd.util.hash_array(pd.Index(townships.index).astype(str).to_numpy(dtype=object),
                             hash_key=TIE_KEY.ljust(16)[:16])
    town_codes = pd.factorize(townships.to_numpy())[0]
    # Ineligible households sort after every eligible one of their township: they take no place.
    order = np.lexsort((tie, -score, ~eligible, town_codes))
    ranked_towns = town_codes[order]
    starts = np.flatnonzero(np.r_[True, ranked_towns[1:] != ranked_towns[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    chosen = np.zeros(len(score), dtype=bool)
    chosen[order] = eligible[order] & (rank < k)
    return chosen


def model_eligible(rows: pd.DataFrame) -> np.ndarray:
    """Households the model may list, as MODEL_RISK's condition says (``model_eligible``).

    Worked out with the rows (:func:`monitor.model.training.snapshot_rows`)
    from the parsed rule, so that the metrics follow an edit of ``rules/rules.yaml``.
    """
    return rows["model_eligible"].fillna(False).to_numpy(dtype=bool)


def at_capacity(label: np.ndarray, selected: np.ndarray) -> dict[str, float]:
    """Precision and recall of a selection.

    Examples
    --------
    >>> at_capacity(np.array([1, 0, 1, 1]), np.array([True, True, False, False]))
    {'selected': 2, 'true_positives': 1, 'precision': 0.5, 'recall': 0.3333333333333333}
    """
    label = np.asarray(label, dtype=bool)
    true_positives = int((label & selected).sum())
    chosen = int(selected.sum())
    positives = int(label.sum())
    return {"selected": chosen, "true_positives": true_positives,
            "precision": true_positives / chosen if chosen else float("nan"),
            "recall": true_positives / positives if positives else float("nan")}


def roc_auc(label: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, NaN when only one outcome occurs."""
    label = np.asarray(label, dtype=bool)
    if label.all() or not label.any():
        return float("nan")
    return float(roc_auc_score(label, score))


def headline(rows: pd.DataFrame, probability: np.ndarray, k: int) -> dict[str, float]:
    """The model against the rules-only baseline at capacity ``k`` on validation rows."""
    label = rows["label"].to_numpy(dtype=bool)
    model = at_capacity(label, select_at_capacity(rows["township_code"], probability, k,
                                                  model_eligible(rows)))
    rules_score = rows["rules_score"].to_numpy()
    rules = at_capacity(label, select_at_capacity(rows["township_code"], rules_score, k,
                                                  rules_score > 0))
    return {
        "households": len(rows), "positives": int(label.sum()),
        "roc_auc": roc_auc(label, probability),
        "rules_roc_auc": roc_auc(label, rules_score),
        "capacity_per_township": k,
        "selected": model["selected"], "precision_at_capacity": model["precision"],
        "recall_at_capacity": model["recall"],
        "rules_selected": rules["selected"], "rules_precision_at_capacity": rules["precision"],
        "rules_recall_at_capacity": rules["recall"],
    }


def capacity_curve(rows: pd.DataFrame, k_values: list[int]) -> pd.DataFrame:
    """:func:`headline` at several capacities (rows must carry ``probability``)."""
    return pd.DataFrame([headline(rows, rows["probability"].to_numpy(), k) for k in k_values])


def calibration_table(label: np.ndarray, probability: np.ndarray,
                      edges: tuple[float, ...] = (0, .02, .05, .1, .2, .3, .5, .7, 1.0001)
                      ) -> pd.DataFrame:
    """Households, mean predicted probability and observed rate per band of probability."""
    bands = pd.cut(pd.Series(probability), list(edges), right=False)
    frame = pd.DataFrame({"band": bands, "probability": probability,
                          "label": np.asarray(label, dtype=float)})
    table = frame.groupby("band", observed=True).agg(
        households=("label", "size"), predicted=("probability", "mean"),
        observed=("label", "mean"))
    table.index = table.index.astype(str)
    return table.reset_index()


def group_table(rows: pd.DataFrame, group: str, k: int, recall_ratio_flag: float,
                minimum_positives: int) -> pd.DataFrame:
    """Per group: households, positives, AUC, precision and recall at capacity, for both rankings.

    The selection is made per township over everyone (as caseworkers would),
    then judged within each group. A group with at least ``minimum_positives``
    positives whose model recall is below ``recall_ratio_flag`` × the overall
    recall is flagged.
    """
    label = rows["label"].to_numpy(dtype=bool)
    probability = rows["probability"].to_numpy()
    rules_score = rows["rules_score"].to_numpy()
    model_selected = select_at_capacity(rows["township_code"], probability, k,
                                        model_eligible(rows))
    rules_selected = select_at_capacity(rows["township_code"], rules_score, k, rules_score > 0)
    overall = at_capacity(label, model_selected)["recall"]
    records = []
    values = rows[group].to_numpy()
    for value in sorted(pd.unique(values)):
        member = values == value
        model = at_capacity(label[member], model_selected[member])
        rules = at_capacity(label[member], rules_selected[member])
        positives = int(label[member].sum())
        records.append({
            group: value, "households": int(member.sum()), "positives": positives,
            "roc_auc": roc_auc(label[member], probability[member]),
            "precision": model["precision"], "recall": model["recall"],
            "rules_recall": rules["recall"],
            "flagged": bool(positives >= minimum_positives
                            and model["recall"] < recall_ratio_flag * overall),
        })
    return pd.DataFrame.from_records(records)
