"""Markdown tables for the reports (the run summary, the model card), without a dependency."""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = "–"


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table: decimals to ``digits`` places, missing as ``–``.

    Built column by column, so its cost does not grow with a loop over rows.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"rule": ["A", "B"], "share": [0.5, np.nan]}), 2))
    | rule | share |
    |---|---|
    | A | 0.50 |
    | B | – |
    """
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    if frame.empty:
        return "\n".join([header, rule])
    lines = pd.Series("|", index=range(len(frame)), dtype=object)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column.dtype):
            values = column.to_numpy(dtype="float64")
            text = np.where(np.isnan(values), MISSING,
                            np.char.mod(f"%.{digits}f", np.nan_to_num(values)))
        else:
            text = column.astype(str).to_numpy()
        lines = lines + " " + text + " |"
    return "\n".join([header, rule, *lines])
