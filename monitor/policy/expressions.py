"""A safe, vectorised expression language for rule conditions.

A condition is text such as ``per_capita_income < dibao_standard and not in_dibao``.
It is parsed with Python's own parser, then every node is checked against a
short list: names, numbers, comparisons, arithmetic and boolean operators.
Nothing else (calls, attributes, subscripts, strings, lambdas) is accepted, and
the text is never handed to ``eval``. Evaluation walks the tree once over whole
columns, so one condition costs a few array operations for all households.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable

import numpy as np

_COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}
_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Compare, ast.Name, ast.Load, ast.Constant, *_COMPARE, *_ARITHMETIC,
)


class ExpressionError(ValueError):
    """A condition that is not in the allowed language."""


class Expression:
    """A parsed condition over named columns.

    Parameters
    ----------
    text : str
        The condition.

    Examples
    --------
    >>> condition = Expression("income < 1.5 * standard and not enrolled")
    >>> sorted(condition.names)
    ['enrolled', 'income', 'standard']
    >>> columns = {"income": np.array([500.0, 900.0, np.nan]),
    ...            "standard": np.array([600.0, 600.0, 600.0]),
    ...            "enrolled": np.array([False, False, False])}
    >>> condition.evaluate(columns.__getitem__).tolist()
    [True, False, False]
    >>> Expression("__import__('os')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.policy.expressions.ExpressionError: not allowed in a condition: Call in ...
    """

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            raise ExpressionError(f"cannot parse condition {text!r}: {error.msg}") from None
        for node in ast.walk(self._tree):
            if not isinstance(node, _ALLOWED):
                raise ExpressionError(
                    f"not allowed in a condition: {type(node).__name__} in \"{text}\"")
            if isinstance(node, ast.Constant) and (
                    isinstance(node.value, str) or not isinstance(node.value, int | float)):
                raise ExpressionError(f"only numbers may appear as constants, got "
                                      f"{node.value!r} in \"{text}\"")
        self.names = frozenset(node.id for node in ast.walk(self._tree)
                               if isinstance(node, ast.Name))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, resolve: Callable[[str], np.ndarray]) -> np.ndarray:
        """Evaluate over whole columns; ``resolve`` gives the array for a name.

        Comparisons with a missing value (NaN) are false, so a fact that is not
        known never triggers a rule by itself.
        """
        return np.asarray(self._evaluate(self._tree.body, resolve))

    def _evaluate(self, node: ast.AST, resolve: Callable[[str], np.ndarray]) -> np.ndarray:
        if isinstance(node, ast.Constant):
            return np.asarray(node.value)
        if isinstance(node, ast.Name):
            return np.asarray(resolve(node.id))
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            result = _truth(self._evaluate(node.values[0], resolve))
            for value in node.values[1:]:
                result = combine(result, _truth(self._evaluate(value, resolve)))
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self._evaluate(node.operand, resolve)
            if isinstance(node.op, ast.Not):
                return np.logical_not(_truth(operand))
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left = self._evaluate(node.left, resolve).astype("float64")
            right = self._evaluate(node.right, resolve).astype("float64")
            with np.errstate(divide="ignore", invalid="ignore"):
                return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            left = self._evaluate(node.left, resolve)
            result = None
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self._evaluate(comparator, resolve)
                with np.errstate(invalid="ignore"):
                    step = _COMPARE[type(op)](left.astype("float64"), right.astype("float64"))
                result = step if result is None else np.logical_and(result, step)
                left = right
            return result
        raise ExpressionError(f"not allowed in a condition: {type(node).__name__}")


def _truth(values: np.ndarray) -> np.ndarray:
    """Truth of a column: missing (NaN) is false."""
    if values.dtype == bool:
        return values
    as_float = values.astype("float64")
    return np.nan_to_num(as_float, nan=0.0) != 0
