"""Build source tables from compact OpenFisca-style YAML cases, and run the rules on them.

A case describes one household as of a date, in the words of the contract's
sources (members with birth dates, programs, claims, events...), plus the
parameters it depends on (override form), and the rules expected to fire.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from monitor.contract.sources import SOURCES
from monitor.io.config import RULES_DIR, load_rule_definitions
from monitor.policy.facts import build_facts
from monitor.policy.params import Parameters
from monitor.policy.rules import parse_rules
from monitor.validation.idcard import make_id_numbers

CASES_DIR = Path(__file__).parent / "cases"
DEFAULT_REGION = "500101001201"
SHIPPED = yaml.safe_load((RULES_DIR / "parameters.yaml").read_text(encoding="utf-8"))
RULES = parse_rules(load_rule_definitions())


def _date(value: object) -> pd.Timestamp:
    return pd.NaT if value is None else pd.Timestamp(value)


def load_cases() -> list[tuple[str, dict]]:
    """Every case of every file, named ``file::case name``."""
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append((f"{path.stem}::{case['name']}", case))
    return cases


def sources_for(case: dict) -> dict[str, pd.DataFrame]:
    """The case's household as the as-of reader would return each source."""
    as_of = pd.Timestamp(case["date"])
    household = case["household"]
    household_id = str(household.get("id", "H1"))
    region = str(household.get("region", DEFAULT_REGION))
    members = household["members"]
    born = pd.to_datetime([member["born"] for member in members])
    sequence = np.array([11 + 2 * n + (0 if member.get("sex", "男") == "男" else 1)
                         for n, member in enumerate(members)])
    ids = make_id_numbers(np.array([region[:6]] * len(members)), born, sequence).tolist()
    rows: dict[str, list[dict]] = {name: [] for name in (
        "registry", "assistance", "income", "rural_revitalization", "medical", "disability",
        "employment", "education", "housing", "disaster", "assets", "feedback")}
    for number, (member, id_number) in enumerate(zip(members, ids, strict=True)):
        rows["registry"].append({
            "id_number": id_number, "name": f"成员{number + 1}", "household_id": household_id,
            "relation": member.get("relation", "户主"), "region_code": region,
            "status": member.get("status", "正常"), "status_date": _date(member.get("died")),
            "birth_date": born[number], "sex": member.get("sex", "男")})
        for spell in member.get("programs", []):
            rows["assistance"].append({
                "id_number": id_number, "household_id": household_id,
                "program": spell["program"], "start_date": _date(spell.get("start", "2020-01-01")),
                "end_date": _date(spell.get("end")), "monthly_amount": spell.get("amount")})
        if "disability" in member:
            disability = member["disability"]
            rows["disability"].append({
                "id_number": id_number, "disability_type": disability.get("type", "肢体"),
                "disability_level": disability["level"],
                "self_care": disability.get("self_care", "完全自理")})
        for event in member.get("employment", []):
            rows["employment"].append({"id_number": id_number, "event_date": _date(event["date"]),
                                       "event_type": event["type"]})
        for event in member.get("education", []):
            rows["education"].append({"id_number": id_number, "event_date": _date(event["date"]),
                                      "status": event["status"]})
        for number_claim, claim in enumerate(member.get("medical", [])):
            rows["medical"].append({
                "claim_id": f"C{number}-{number_claim}", "id_number": id_number,
                "settle_date": _date(claim["date"]), "out_of_pocket": claim["out_of_pocket"],
                "total_cost": claim.get("total", claim["out_of_pocket"]),
                "category": claim.get("category", "普通")})
        for number_asset, asset in enumerate(member.get("assets", [])):
            rows["assets"].append({"id_number": id_number, "asset_type": asset["type"],
                                   "asset_ref": f"A{number}-{number_asset}",
                                   "value": asset.get("value", 0)})
    if "income" in household:
        income = household["income"]
        rows["income"].append({"household_id": household_id,
                               "assess_date": _date(income.get("date", as_of)),
                               "annual_income": income["annual"],
                               "employment_cost": income.get("employment_cost", 0)})
    if "housing" in household:
        rows["housing"].append({"household_id": household_id,
                                "assess_date": _date(household["housing"].get("date", as_of)),
                                "rating": household["housing"]["rating"]})
    if "revitalization" in household:
        status = household["revitalization"]
        rows["rural_revitalization"].append({
            "household_id": household_id, "status": status["status"],
            "since": _date(status.get("since", "2021-01-01")),
            "risk_removed": status.get("risk_removed")})
    for number, disaster in enumerate(household.get("disasters", [])):
        rows["disaster"].append({"event_id": f"D{number}", "household_id": household_id,
                                 "event_date": _date(disaster["date"]),
                                 "disaster_type": disaster.get("type", "洪涝"),
                                 "loss_amount": disaster["loss"]})
    return {name: _typed(name, source_rows) for name, source_rows in rows.items()}


_KIND_DTYPES = {"date": "datetime64[ns]", "money": "float64", "level": "float64",
                "bool": "boolean"}


def _typed(name: str, rows: list[dict]) -> pd.DataFrame:
    """Rows typed as the lake holds them, columns and types read off the source schema."""
    kinds = {spec.name: spec.parse for spec in SOURCES[name].columns}
    if name == "registry":
        kinds["birth_date"] = "date"  # derived from the id number at ingest
        kinds["sex"] = "text"
    frame = pd.DataFrame(rows, columns=list(kinds))
    return frame.astype({column: _KIND_DTYPES.get(kind, "string")
                         for column, kind in kinds.items()})


def parameters_for(case: dict) -> Parameters:
    """Shipped parameters with the case's own (override form) applied."""
    return Parameters.from_files(SHIPPED, "rules/parameters.yaml",
                                 case.get("parameters"), f"case {case['name']!r}")


def hits_for(case: dict) -> pd.DataFrame:
    """The rule hits of the case's household."""
    from monitor.policy.rules import evaluate

    as_of = dt.date.fromisoformat(str(case["date"]))
    params = parameters_for(case)
    facts = build_facts(sources_for(case), as_of, params)
    scores = None
    if "risk_score" in case["household"]:
        # The model's score, given to the rules beside the facts as a run gives it.
        scores = pd.DataFrame({"risk_score": float(case["household"]["risk_score"]),
                               "risk_factors": pd.NA}, index=facts.households.index)
    return evaluate(RULES, facts, params, scores)
