"""The run summary: counts for the manifest, the Prefect artifact and the operator's terminal.

Pure: counts of warnings and households by level, rule, county and state,
and the Markdown table shown as the run's Prefect artifact.
"""

from __future__ import annotations

import pandas as pd

from monitor import regions
from monitor.lifecycle import CONTINUING, NEW, SETTLED, Lifecycle
from monitor.markdown import markdown_table
from monitor.rules import LEVELS, RULE_CODES


def _counts(values: pd.Series, order: list[str] | tuple[str, ...] | None = None) -> dict[str, int]:
    counts = values.value_counts()
    keys = list(order) if order is not None else sorted(counts.index)
    return {str(key): int(counts.get(key, 0)) for key in keys}


def run_summary(lifecycle: Lifecycle, referrals: pd.DataFrame) -> dict:
    """Counts of this run's warnings and referral rows (listed means 新增 or 持续)."""
    hits = lifecycle.hits
    listed = hits[hits["status"].isin([NEW, CONTINUING]).to_numpy(dtype=bool)]
    events = lifecycle.events
    return {
        "warnings": {
            "listed": len(listed),
            "new": int((listed["status"] == NEW).sum()),
            "continuing": int((listed["status"] == CONTINUING).sum()),
            "settled_unchanged": int((hits["status"] == SETTLED).sum()),
            "closed_by_run": int((events["event"] == "closed").sum()),
            "closed_by_feedback": int((events["event"] == "closed_by_feedback").sum()),
            "by_level": _counts(listed["level"], LEVELS),
            "by_rule": _counts(listed["rule"], RULE_CODES),
        },
        "households": {
            "listed": len(referrals),
            "new": int((referrals["状态"] == NEW).sum()),
            "continuing": int((referrals["状态"] == CONTINUING).sum()),
            "by_level": _counts(referrals["预警等级"], LEVELS),
            "by_county": _counts(referrals["county_code"]),
            "townships": int(referrals["township_code"].nunique()),
        },
        "feedback": {"unmatched_rows": len(lifecycle.unmatched_feedback)},
    }


def _table(header: list[str], rows: list[list[object]]) -> str:
    return markdown_table(pd.DataFrame(rows, columns=header))


def summary_markdown(run_date: str, summary: dict, quarantined: dict[str, int],
                     model: dict | None = None) -> str:
    """The run summary as Markdown: levels, rules, counties, new versus continuing, quarantine.

    ``model`` is the run manifest's model entry: which model gave 风险评分, or none.
    """
    warnings, households = summary["warnings"], summary["households"]
    county_names = (regions.townships().drop_duplicates("county_code")
                    .set_index("county_code")["county_name"])
    parts = [
        f"# 监测预警 {run_date}",
        f"{households['listed']:,} households listed in {households['townships']:,} townships "
        f"({households['new']:,} 新增, {households['continuing']:,} 持续); "
        f"{warnings['listed']:,} warnings ({warnings['new']:,} 新增, "
        f"{warnings['continuing']:,} 持续); {warnings['closed_by_run']:,} closed because the "
        f"household no longer triggers the rule, {warnings['closed_by_feedback']:,} closed by "
        f"feedback, {warnings['settled_unchanged']:,} settled by feedback and unchanged.",
        ("风险评分 from the rules alone: no model trained yet." if not model
         or model.get("version") is None else
         f"风险评分 from model {model['version']} ({model['kind']}, trained "
         f"{model['trained_on']})."),
        "## By level",
        _table(["预警等级", "households", "warnings"],
               [[level, households["by_level"][level], warnings["by_level"][level]]
                for level in LEVELS]),
        "## By rule",
        _table(["rule", "warnings"], [[rule, count] for rule, count in
                                      warnings["by_rule"].items()]),
        "## By county",
        _table(["county", "name", "households"],
               [[county, county_names.get(county, ""), count]
                for county, count in households["by_county"].items()]),
        "## Quarantined rows ingested this run",
        _table(["source", "rows"], [[source, count] for source, count in quarantined.items()])
        if quarantined else "No rows quarantined in this run's deliveries.",
    ]
    if summary["feedback"]["unmatched_rows"]:
        parts.append(f"{summary['feedback']['unmatched_rows']:,} feedback rows name an unknown "
                     "warning id or another household; they were not applied.")
    return "\n\n".join(parts) + "\n"
