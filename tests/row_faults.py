"""One bad value of each kind a row check refuses, with the reason it is quarantined under.

Shared by the row checks' tests (tests/validation/test_ingest.py) and the
hostile-input catalogue's count (tests/validation/test_faults.py).
"""

from __future__ import annotations

from deliveries import PERSON_IDS, ids

FAULTS = [
    # (source, column, bad value, reason)
    ("registry", "id_number", PERSON_IDS[0][:17] + ("0" if PERSON_IDS[0][-1] != "0" else "1"),
     "id_check_digit"),
    ("registry", "id_number", "12345", "id_format"),
    ("registry", "id_number", ids("2024-07-01", sequence=91)[0], "id_birth_date"),  # born later
    ("registry", "id_number", "", "missing_value"),
    ("registry", "name", "  ", "missing_value"),
    ("registry", "relation", "表亲", "code_not_listed"),
    ("registry", "status", "失踪", "code_not_listed"),
    ("registry", "region_code", "50010100120", "bad_region_code"),
    ("registry", "region_code", "500199999201", "unknown_township"),
    ("registry", "status_date", "2024-02-30", "bad_date"),
    ("registry", "status_date", "2024-07-01", "future_date"),
    ("assistance", "start_date", "2024-13-01", "bad_date"),
    ("assistance", "monthly_amount", "-600", "negative_amount"),
    ("assistance", "monthly_amount", "六百", "bad_number"),
    ("assistance", "program", "五保", "code_not_listed"),
    ("assistance", "end_date", "2021-01-01", "end_before_start"),
    ("income", "annual_income", "-1", "negative_amount"),
    ("income", "assess_date", "2024-07-01", "future_date"),
    ("rural_revitalization", "risk_removed", "也许", "bad_flag"),
    ("medical", "out_of_pocket", "1001", "out_of_pocket_above_total"),
    ("medical", "settle_date", "2025-01-01", "future_date"),
    ("disability", "disability_level", "5", "code_not_listed"),
    ("disability", "disability_level", "重度", "bad_number"),
    ("employment", "event_type", "退休", "code_not_listed"),
    ("education", "status", "转学", "code_not_listed"),
    ("housing", "rating", "E", "code_not_listed"),
    ("disaster", "loss_amount", "-5", "negative_amount"),
    ("assets", "value", "abc", "bad_number"),
    ("feedback", "verified", "待查", "code_not_listed"),
]
