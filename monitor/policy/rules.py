"""The warning rules: definitions read from ``rules/rules.yaml`` and evaluated over facts.

Each rule is data (code, Chinese name, level, measure, office, scope,
condition, reason template). Conditions are parsed by
:mod:`monitor.policy.expressions`; names resolve to a fact of the scope (person or
household), then to a household fact, then to a parameter in force for the
household's region on the run date. A hit carries its evidence (every name
the condition uses, plus any listed) as JSON, and a Chinese reason with the
actual amounts and dates.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor.policy.catalogue import HOUSEHOLD, PERSON, fact_names
from monitor.policy.expressions import Expression, ExpressionError
from monitor.policy.facts import Facts
from monitor.policy.params import Parameters

#: The contract's rule codes (section 5), in contract order.
RULE_CODES = (
    "DIBAO_GAP", "EDGE_GAP", "GRADUAL_EXIT", "EXIT_REVIEW", "SINGLE_PERSON", "TEKUN_MINOR",
    "MEDICAL_BURDEN", "SUDDEN_HARDSHIP", "LEFT_BEHIND_ELDER", "LEFT_BEHIND_CHILD",
    "DISABILITY_LIVING", "DISABILITY_CARE", "TEKUN_BELOW_STANDARD", "CARE_NEED",
    "SCHOOL_DROPOUT", "JOBLESS", "UNSAFE_HOUSING", "DECEASED_RECIPIENT", "ASSET_CHECK",
    "MODEL_RISK",
)
#: Warning levels, most urgent first.
LEVELS = ("红色", "橙色", "黄色")
SCOPES = ("household", "person")
OTHER_RULE_HITS = "other_rule_hits"
#: The fact of the model's 风险评分: a rule naming it lists households on the score.
SCORE_FACT = "risk_score"
#: The score's reasons, which a score rule's 预警原因 quotes.
SCORE_REASONS = "risk_factors"
UNKNOWN_TEXT = "无"
HIT_COLUMNS = ["household_id", "rule", "level", "person_id_number", "reason", "evidence"]


class RuleError(ValueError):
    """A rule definition that cannot be used."""


@dataclass(frozen=True)
class Rule:
    """One warning rule."""

    code: str
    name: str
    level: str
    measure: str
    office: str
    scope: str
    condition: Expression
    reason: str
    evidence: tuple[str, ...]
    after_other_rules: bool = False
    #: A visit roster (定期探访): answered by visits, due again after ``visit_cadence_days``.
    roster: bool = False

    @property
    def reason_fields(self) -> tuple[str, ...]:
        """Names the reason template uses."""
        return tuple(field for _, field, _, _ in string.Formatter().parse(self.reason) if field)

    @property
    def evidence_names(self) -> tuple[str, ...]:
        """Everything kept as evidence: the condition's names, then the listed ones."""
        return tuple(dict.fromkeys([*sorted(self.condition.names), *self.evidence]))


def _names_allowed(scope: str, parameters: Collection[str]) -> frozenset[str]:
    """What a rule of ``scope`` may name: its facts, the parameters, other rules' hits.

    A person rule may name its household's facts too.
    """
    facts = fact_names(HOUSEHOLD) | (fact_names(PERSON) if scope == PERSON else frozenset())
    return facts | frozenset(parameters) | {OTHER_RULE_HITS}


def parse_rules(definitions: list[dict], origin: str = "rules/rules.yaml",
                parameters: Collection[str] | None = None) -> list[Rule]:
    """Validate rule definitions; all 20 contract codes must be defined once.

    With ``parameters`` (the parameter names in force), every name a rule's
    condition, reason or evidence uses must be a fact of its scope in
    :data:`monitor.policy.catalogue.CATALOGUE` or one of them: a misspelt
    name is refused when the rules are loaded, not midway through a run.
    """
    rules = []
    for number, entry in enumerate(definitions, start=1):
        code = entry.get("code", f"#{number}") if isinstance(entry, dict) else f"#{number}"
        def fail(problem: str, code: str = code) -> RuleError:
            return RuleError(f"{origin}: rule {code}: {problem}")

        if not isinstance(entry, dict):
            raise fail("expected a mapping")
        missing = {"code", "name", "level", "measure", "office", "scope", "condition",
                   "reason"} - set(entry)
        if missing:
            raise fail(f"missing {sorted(missing)}")
        if entry["level"] not in LEVELS:
            raise fail(f"level must be one of {LEVELS}")
        if entry["scope"] not in SCOPES:
            raise fail(f"scope must be one of {SCOPES}")
        try:
            condition = Expression(str(entry["condition"]))
            list(string.Formatter().parse(entry["reason"]))
        except (ExpressionError, ValueError) as error:
            raise fail(str(error)) from None
        rule = Rule(code, entry["name"], entry["level"], entry["measure"], entry["office"],
                    entry["scope"], condition, entry["reason"], tuple(entry.get("evidence", ())),
                    bool(entry.get("after_other_rules", False)), bool(entry.get("roster", False)))
        if parameters is not None:
            used = {*rule.condition.names, *rule.reason_fields, *rule.evidence}
            unknown = sorted(used - _names_allowed(rule.scope, parameters))
            if unknown:
                raise fail(f"unknown names {unknown} (neither a {rule.scope} fact of the "
                           "catalogue nor a parameter; `monitor rules --facts` lists the facts)")
        rules.append(rule)
    codes = [rule.code for rule in rules]
    if sorted(codes) != sorted(RULE_CODES):
        missing = sorted(set(RULE_CODES) - set(codes))
        extra = sorted(set(codes) - set(RULE_CODES))
        raise RuleError(f"{origin}: rule codes differ from the contract's: missing {missing}, "
                        f"unknown or repeated {extra or [c for c in codes if codes.count(c) > 1]}")
    return rules


class _Scope:
    """Columns of one scope (persons or households) as arrays, resolved by name once."""

    def __init__(self, frame: pd.DataFrame, households: pd.DataFrame,
                 parameters: pd.DataFrame, household_position: np.ndarray | None,
                 extra: dict[str, np.ndarray]) -> None:
        self.frame = frame
        self.households = households
        self.parameters = parameters
        self.position = household_position
        self.extra = extra
        self._cache: dict[str, np.ndarray] = {}

    def raw(self, name: str, rows: np.ndarray | None = None) -> pd.Series:
        """The column as stored (for reasons and evidence), at ``rows`` of this scope."""
        if name in self.extra:
            values = self.extra[name]
            return pd.Series(values if rows is None else values[rows])
        for source in (self.frame, self.households, self.parameters):
            if name in source.columns:
                at = rows
                if source is not self.frame and self.position is not None:
                    at = self.position if rows is None else self.position[rows]
                column = source[name].reset_index(drop=True)
                return column if at is None else column.take(at).reset_index(drop=True)
        raise KeyError(name)

    def value(self, name: str) -> np.ndarray:
        """The column as an array for conditions: booleans as bool, the rest as float."""
        if name not in self._cache:
            column = self.raw(name)
            if pd.api.types.is_bool_dtype(column.dtype):
                array = column.fillna(False).to_numpy(dtype=bool)
            else:
                array = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64",
                                                                        na_value=np.nan)
            self._cache[name] = array
        return self._cache[name]

    def has(self, name: str) -> bool:
        return name in self.extra or any(name in source.columns for source in (
            self.frame, self.households, self.parameters))


def _as_text(values: pd.Series) -> pd.Series:
    """Values as reason text: amounts without needless decimals, dates YYYY-MM-DD, 无 if unknown.

    Examples
    --------
    >>> _as_text(pd.Series([583.0, 1.5, 600.125, np.nan])).tolist()
    ['583', '1.5', '600.12', '无']
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_bool_dtype(values.dtype):
        text = values.map({True: "是", False: "否"})
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = np.round(values.to_numpy(dtype="float64", na_value=np.nan), 2)
        # Arrow formats numbers in C++; pandas would go through Python per value.
        text = pc.replace_substring_regex(
            pc.cast(pa.array(numbers, from_pandas=True), pa.string()), r"\.0$", "")
        text = pd.Series(pd.arrays.ArrowStringArray(text), index=values.index)
    else:
        text = values.astype("string")
    return text.astype("string").fillna(UNKNOWN_TEXT)


def _as_json_value(values: pd.Series) -> pd.Series:
    """Values as JSON literals (numbers bare, text and dates quoted, null if unknown)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"}).astype("string").fillna("null")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_datetime64_any_dtype(
            values.dtype):
        numbers = pa.array(values.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True)
        text = pc.cast(numbers, pa.string()).fill_null("null")
        return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index)
    text = _as_text(values).where(values.notna())
    escaped = (text.str.replace("\\", "\\\\", regex=False)
               .str.replace('"', '\\"', regex=False).str.replace("\n", "\\n", regex=False))
    return ('"' + escaped + '"').astype("string").fillna("null")


def _render(template: str, column: Callable[[str], pd.Series]) -> pd.Series:
    """Fill a reason template column-wise: one string concatenation per field, not per row."""
    result = None
    for literal, field, _, _ in string.Formatter().parse(template):
        pieces = [literal] if literal else []
        if field:
            pieces.append(_as_text(column(field)))
        for piece in pieces:
            result = piece if result is None else result + piece
    return result if isinstance(result, pd.Series) else pd.Series(dtype="string")


def _evidence(names: tuple[str, ...], column: Callable[[str], pd.Series]) -> pd.Series:
    result = None
    for number, name in enumerate(names):
        prefix = ("{" if number == 0 else ", ") + json.dumps(name) + ": "
        part = prefix + _as_json_value(column(name))
        result = part if result is None else result + part
    return result + "}"


def score_rule(rules: list[Rule]) -> Rule:
    """The rule that lists households on the model's score (MODEL_RISK): the one naming it."""
    return next(rule for rule in rules if SCORE_FACT in rule.condition.names)


def open_to_score(rule: Rule, facts: Facts, params: Parameters,
                  other_rule_hits: np.ndarray | None = None) -> np.ndarray:
    """Households the score rule would list given a high enough score, as its condition says.

    The condition of :func:`score_rule`, with every household's
    ``risk_score`` at its highest: what is left is who may be listed at all
    (MODEL_RISK: a living member, and no other rule's hit). ``other_rule_hits``
    counts each household's other hits (none by default: the score alone).
    The capacity metrics, the model card and the tune's threshold curve use
    it, so that an edit of the rule reaches them all.
    """
    households = facts.households
    count = len(households)
    extra = {SCORE_FACT: np.full(count, np.inf),
             OTHER_RULE_HITS: np.zeros(count) if other_rule_hits is None
             else np.asarray(other_rule_hits, dtype="float64")}
    scope = _Scope(households, households, params.frame(households["region_code"], facts.as_of),
                   None, extra)
    return np.broadcast_to(rule.condition.evaluate(scope.value), (count,)).astype(bool)


def _score_columns(scores: pd.DataFrame | None, households: pd.Index) -> dict[str, np.ndarray]:
    """The model's facts for the rules' scope, in household order (missing without a model)."""
    if scores is None:
        return {SCORE_FACT: np.full(len(households), np.nan),
                SCORE_REASONS: np.full(len(households), None, dtype=object)}
    scores = scores.reindex(households)
    return {SCORE_FACT: scores[SCORE_FACT].to_numpy(dtype="float64"),
            SCORE_REASONS: scores[SCORE_REASONS].astype(object).to_numpy()}


def evaluate(rules: list[Rule], facts: Facts, params: Parameters,
             scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every rule hit: one row per (household, rule), with level, reason and evidence.

    Person rules report, per household, the first member who triggers them;
    the reason says how many members do when more than one. ``scores``: the
    model's ``risk_score`` and ``risk_factors`` by household
    (:func:`monitor.triage.evaluation.score_households`), given to the rules
    beside the facts; without them a score rule (MODEL_RISK) lists nobody.
    """
    households = facts.households
    persons = facts.persons
    parameters = params.frame(households["region_code"], facts.as_of)
    position = facts.person_household
    given = _score_columns(scores, households.index)
    household_scope = _Scope(households, households, parameters, None, given)
    person_scope = _Scope(persons, households, parameters, position,
                          {name: values[position] for name, values in given.items()})
    scopes = {"household": household_scope, "person": person_scope}
    for rule in rules:
        unknown = [name for name in (*rule.condition.names, *rule.reason_fields, *rule.evidence)
                   if not scopes[rule.scope].has(name) and name != OTHER_RULE_HITS]
        if unknown:
            raise RuleError(f"rule {rule.code}: unknown names {sorted(set(unknown))} "
                            "(neither a fact nor a parameter)")

    pieces = [_hits(rule, scopes[rule.scope], households, persons, position)
              for rule in rules if not rule.after_other_rules]
    earlier = [piece["_household"].to_numpy() for piece in pieces]
    household_scope.extra[OTHER_RULE_HITS] = np.bincount(
        np.concatenate(earlier) if earlier else np.zeros(0, dtype=np.int64),
        minlength=len(households)).astype("float64")
    pieces += [_hits(rule, scopes[rule.scope], households, persons, position)
               for rule in rules if rule.after_other_rules]
    hits = pd.concat(pieces, ignore_index=True)
    order = {code: number for number, code in enumerate(RULE_CODES)}
    sequence = np.lexsort((hits["rule"].map(order).to_numpy(), hits["_household"].to_numpy()))
    return hits.iloc[sequence].drop(columns="_household").reset_index(drop=True)


def _hits(rule: Rule, scope: _Scope, households: pd.DataFrame, persons: pd.DataFrame,
          position: np.ndarray) -> pd.DataFrame:
    """The hits of one rule, one row per household."""
    mask = rule.condition.evaluate(scope.value)
    hit_rows = np.flatnonzero(np.broadcast_to(mask, (len(scope.frame),)))
    if not len(hit_rows):
        return pd.DataFrame({name: pd.array([], dtype="string") for name in HIT_COLUMNS}).assign(
            _household=np.zeros(0, dtype=np.int64))
    repeats = None
    if rule.scope == "person":
        hit_households = position[hit_rows]
        # The first member in registry order speaks for the household.
        first, first_index, counts = np.unique(hit_households, return_index=True,
                                               return_counts=True)
        hit_rows = hit_rows[first_index]
        repeats = counts
        hit_households = first
        household_ids = households.index.take(first)
        person_ids = persons["id_number"].take(hit_rows).array
    else:
        hit_households = hit_rows
        household_ids = households.index.take(hit_rows)
        person_ids = pd.array([None] * len(hit_rows), dtype="string")

    def column(name: str) -> pd.Series:
        return scope.raw(name, hit_rows)

    reason = _render(rule.reason, column)
    if repeats is not None and len(reason):
        many = repeats > 1
        more = pd.Series(np.where(many, "（户内共" + repeats.astype(str) + "人）", ""),
                         dtype="string")
        reason = reason + more
    return pd.DataFrame({
        "household_id": pd.array(household_ids.array, dtype="string"),
        "rule": rule.code,
        "level": rule.level,
        "person_id_number": pd.array(person_ids, dtype="string"),
        "reason": reason.astype("string") if len(hit_rows) else pd.array([], dtype="string"),
        "evidence": _evidence(rule.evidence_names, column).astype("string") if len(hit_rows)
        else pd.array([], dtype="string"),
        "_household": hit_households.astype(np.int64),
    })
