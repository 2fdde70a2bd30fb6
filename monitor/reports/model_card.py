"""The model card: what a trained risk model predicts, from what, and how well, in Markdown.

Pure: built from a :class:`monitor.model.training.TrainingResult` and the settings.
Analysts read it before a model goes live; ``metadata.json`` beside it holds
the same figures for a notebook.
"""

from __future__ import annotations

import math

import pandas as pd

from monitor.model import metrics
from monitor.model.risk import ModelSettings
from monitor.model.training import BOOSTING, LOGISTIC, TrainingResult
from monitor.reports.markdown import MISSING, markdown_table

KIND_NAMES = {LOGISTIC: "logistic regression on standardised log features",
              BOOSTING: "histogram gradient boosting"}
GROUPS = {"county_code": "county (区县)", "head_sex": "sex of the household head",
          "head_age_band": "age band of the household head"}


def _number(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _what_it_predicts(result: TrainingResult, settings: ModelSettings) -> list[str]:
    meta, label = result.model.metadata, settings.label
    return [
        f"# 风险模型 {meta['version']}",
        "",
        f"Trained for {meta['trained_on']}: a {KIND_NAMES[result.chosen]}, calibrated "
        f"({settings.calibration}) on townships it was not fitted on.",
        "",
        "## What it predicts",
        f"The probability that, within {label.horizon_months} months of the date it is scored "
        f"on, a household enters {'、'.join(label.programs_entered)} (低保, 特困 and 低保边缘 "
        "only when not already in them) or has a warning verified "
        f"{label.verified_value} by feedback. Entering {'、'.join(label.standing_order)} "
        "counts only above the household's standing (a step out of 低保 into 低保边缘 is "
        "not new need). 风险评分 = that probability × 100, rounded. "
        "MODEL_RISK lists a household whose score reaches `model_threshold` when no other "
        "rule does.",
        "",
        "Features are built by the same code as the nightly facts, from what was delivered "
        "on or before each as-of date; outcomes come only from the months after it.",
        "",
    ]


def _data(result: TrainingResult, settings: ModelSettings) -> list[str]:
    meta = result.model.metadata
    lines = ["## Data",
             "| role | as-of dates | rows (household × date) | positives |",
             "|---|---|---|---|"]
    for role in ("training", "calibration", "validation"):
        dates = meta["as_of_dates"][role]
        span = dates[0] if len(dates) == 1 else f"{dates[0]} … {dates[-1]} ({len(dates)})"
        lines.append(f"| {role} | {span} | {meta['rows'][role]:,} | "
                     f"{meta['positives'][role]:,} |")
    return [*lines,
            "",
            f"Whole townships, drawn by a stable hash of their code, are held out: "
            f"{settings.validation_share:.0%} for validation, {settings.calibration_share:.0%} "
            "for calibration; the model is fitted on the rest. No household is in two of these "
            f"(fitting rows are a sample of at most {settings.max_training_rows:,}). sha256 of "
            f"every row before sampling (features, outcomes, dates): `{meta['data_sha256']}`.",
            ""]


def _against_the_rules(result: TrainingResult, settings: ModelSettings) -> list[str]:
    chosen, k = result.model.metadata["validation"], settings.capacity
    lines = [
        f"## Against the rules alone, at capacity {k} per township",
        "Each township's caseworkers visit the top "
        f"{k} households of a list. The model's list is ranked by probability (households "
        "with a living member); the rules-only list by the rules-only 风险评分 of that night, "
        "households with a rule hit only.",
        "",
        "| ranking | ROC AUC | households listed | precision | recall |",
        "|---|---|---|---|---|",
        f"| model | {_number(chosen['roc_auc'])} | {chosen['selected']:,} | "
        f"{_number(chosen['precision_at_capacity'])} | "
        f"**{_number(chosen['recall_at_capacity'])}** |",
        f"| rules only | {_number(chosen['rules_roc_auc'])} | {chosen['rules_selected']:,} | "
        f"{_number(chosen['rules_precision_at_capacity'])} | "
        f"**{_number(chosen['rules_recall_at_capacity'])}** |",
        "",
        f"Validation: {chosen['households']:,} households, {chosen['positives']:,} positive.",
        "",
        "### Candidates",
    ]
    candidates = pd.DataFrame([
        {"model": name, "ROC AUC": figures["roc_auc"],
         "precision": figures["precision_at_capacity"],
         "recall": figures["recall_at_capacity"]}
        for name, figures in result.candidates.items()])
    lines += [markdown_table(candidates), "",
              f"Kept: **{result.chosen}** (gradient boosting must beat the logistic regression's "
              f"recall by more than {settings.prefer_simpler_within} to be kept).", "",
              "### Other capacities"]
    curve = metrics.capacity_curve(result.validation, sorted({k, *settings.also_report}))
    return [*lines,
            markdown_table(curve[["capacity_per_township", "selected", "precision_at_capacity",
                                  "recall_at_capacity", "rules_selected",
                                  "rules_precision_at_capacity", "rules_recall_at_capacity"]]),
            ""]


def _calibration_and_groups(result: TrainingResult, settings: ModelSettings) -> list[str]:
    validation, k = result.validation, settings.capacity
    chosen = result.model.metadata["validation"]
    lines = ["## Calibration (validation)",
             markdown_table(metrics.calibration_table(validation["label"].to_numpy(),
                                                      validation["probability"].to_numpy())),
             "", "## By group (validation, capacity per township as above)", ""]
    flagged = []
    for column, title in GROUPS.items():
        table = metrics.group_table(validation, column, k, settings.recall_ratio_flag,
                                    settings.minimum_positives)
        flagged += [f"{title} {row[column]}: recall {_number(row['recall'])}"
                    for row in table.to_dict("records") if row["flagged"]]
        lines += [f"### {title}", markdown_table(table), ""]
    lines.append("### Groups called out")
    if flagged:
        lines += [f"- **{item}**, below {settings.recall_ratio_flag:.0%} of the overall recall "
                  f"({_number(chosen['recall_at_capacity'])})" for item in flagged]
    else:
        lines.append(f"None: no group with {settings.minimum_positives} or more positives has "
                     f"a recall below {settings.recall_ratio_flag:.0%} of the overall recall.")
    return lines


def _reasons_and_limits(result: TrainingResult, settings: ModelSettings) -> list[str]:
    meta = result.model.metadata
    lines = [
        "",
        "## Reasons given to caseworkers",
        f"For a MODEL_RISK warning, 预警原因 names the {settings.explanation_top} features "
        "whose own value raised the score most, with the points each added: the score less "
        "the score with that feature set to the training median (the *reference household*). "
        "Setting the feature back to the reference moves the score by those points.",
        "",
        "## Features",
        "| feature | phrase | reference (training median) |",
        "|---|---|---|",
    ]
    for name, reference in zip(meta["features"], result.model.reference, strict=True):
        lines.append(f"| `{name}` | {settings.phrases[name].phrase} | {_number(reference, 2)} |")
    return [
        *lines,
        "",
        "## Limits",
        "- The outcome is a decision by the system itself (an entry into a program, a "
        "verified visit), not need as such: households the offices never reached look "
        "negative. Compare the rules list too, and read the groups above.",
        "- The sex of the household head is not a feature; it is used only to audit.",
        "- The same validation households choose between the two candidates and give the "
        "figures above, so the kept model's figures lean a little to the optimistic.",
        "- Once MODEL_RISK warnings are verified 属实, they become positives of later "
        "trainings: the model partly learns from its own lists. Compare cards over time.",
        "- On synthetic sample data these figures say that the pipeline works, not how "
        "a model would do in a real county.",
        "",
    ]


def model_card(result: TrainingResult, settings: ModelSettings) -> str:
    """The Markdown model card of a training result."""
    sections = (_what_it_predicts, _data, _against_the_rules, _calibration_and_groups,
                _reasons_and_limits)
    return "\n".join(line for section in sections for line in section(result, settings))
