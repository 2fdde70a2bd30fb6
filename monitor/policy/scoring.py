"""风险评分 (risk score, 0–100) for households with rule hits.

Until a model is trained the score comes from the rules alone: the base of
the household's highest level plus a step for each further hit, capped.
The numbers live in ``rules/rules.yaml`` under ``rules_only_score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.policy.rules import LEVELS, RuleError

RULES_ONLY = "rules-only"
MAXIMUM_SCORE = 100


@dataclass(frozen=True)
class RulesOnlyScore:
    """How a score is made from rule hits when there is no model."""

    base: dict[str, int]
    per_further_hit: int
    cap: int

    @classmethod
    def from_definition(cls, definition: object, origin: str = "rules/rules.yaml"
                        ) -> RulesOnlyScore:
        """Validate the ``rules_only_score`` mapping."""
        problem = None
        if not isinstance(definition, dict) or not {"base", "per_further_hit", "cap"} <= set(
                definition):
            problem = "expected base, per_further_hit and cap"
        elif not isinstance(definition["base"], dict) or set(definition["base"]) != set(LEVELS):
            problem = f"base must give a score for each level {LEVELS}"
        else:
            numbers = [*definition["base"].values(), definition["per_further_hit"],
                       definition["cap"]]
            if not all(isinstance(number, int) and 0 <= number <= MAXIMUM_SCORE
                       for number in numbers):
                problem = f"scores must be whole numbers from 0 to {MAXIMUM_SCORE}"
        if problem:
            raise RuleError(f"{origin}: rules_only_score: {problem}")
        return cls(dict(definition["base"]), definition["per_further_hit"], definition["cap"])

    @property
    def description(self) -> str:
        """What the score is, for the run manifest."""
        return (f"{RULES_ONLY}: no model trained; 风险评分 = base of the highest level "
                f"{self.base} + {self.per_further_hit} per further rule hit, at most {self.cap}")

    def scores(self, hits: pd.DataFrame) -> pd.Series:
        """One integer score per household with hits, indexed by household_id.

        Examples
        --------
        >>> score = RulesOnlyScore({"红色": 80, "橙色": 60, "黄色": 40}, 5, 100)
        >>> hits = pd.DataFrame({"household_id": ["a", "a", "b"],
        ...                      "level": ["黄色", "橙色", "黄色"]})
        >>> score.scores(hits).to_dict()
        {'a': 65, 'b': 40}
        """
        base = hits["level"].map(self.base).to_numpy(dtype="int64")
        grouped = pd.DataFrame({"household_id": hits["household_id"].to_numpy(), "base": base}
                               ).groupby("household_id", sort=True)["base"]
        score = grouped.max() + self.per_further_hit * (grouped.size() - 1)
        return pd.Series(np.minimum(score.to_numpy(), self.cap), index=score.index,
                         name="risk_score").astype("int64")
