"""The `monitor` command line: sample and ingest, as an operator runs them."""

from __future__ import annotations

from deliveries import DELIVERY, good_frame, write_delivery
from typer.testing import CliRunner

from monitor.cli import app

runner = CliRunner()


def test_sample_then_ingest_prints_counts_per_source_and_the_lake(home):
    result = runner.invoke(app, ["sample", "--home", str(home), "--households", "60",
                                 "--seed", "3", "--date", "2026-06-30",
                                 "--places", "500101001"])
    assert result.exit_code == 0, result.output
    assert (home / "landing" / "registry").is_dir()
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2026-06-30"])
    assert result.exit_code == 0, result.output
    for source in ("registry", "assistance", "medical", "feedback"):
        assert source in result.output
    assert "quarantined" in result.output and str(home / "lake") in result.output.replace("\n", "")
    again = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2026-06-30"])
    assert again.exit_code == 0 and "Nothing new to ingest" in again.output


def test_a_rejected_file_is_named_and_the_run_still_completes(home):
    write_delivery(home, "income", good_frame("income").drop(columns="assess_date"))
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", DELIVERY.isoformat()])
    assert result.exit_code == 0
    assert "landing/income/2024-06-30/data.csv" in result.output
    assert "assess_date" in result.output


def test_a_bad_date_option_is_a_clear_error(home):
    result = runner.invoke(app, ["ingest", "--home", str(home), "--date", "2024-13-01"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_rules_as_csv_parse_back_with_every_rule_code_and_condition_intact():
    import csv
    import io

    from monitor.io.config import load_rule_definitions
    from monitor.policy.rules import RULE_CODES, parse_rules

    result = CliRunner().invoke(app, ["rules", "--date", "2026-06-30", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["code"] for row in rows] == list(RULE_CODES)
    conditions = {rule.code: rule.condition.text for rule in parse_rules(load_rule_definitions())}
    assert {row["code"]: row["condition"] for row in rows} == conditions
    assert {row["roster"] for row in rows} == {"True", "False"}
    result = CliRunner().invoke(app, ["rules", "--date", "2026-06-30", "--format", "csv",
                                      "--parameters"])
    parameters = list(csv.DictReader(io.StringIO(result.output)))
    edge = next(row for row in parameters if row["parameter"] == "edge_ratio")
    assert float(edge["value"]) == 1.5 and edge["region"] == "(all)" and edge["source"]


def test_rules_as_json_and_markdown_hold_both_tables():
    import json

    result = CliRunner().invoke(app, ["rules", "--date", "2026-06-30", "--format", "json"])
    listing = json.loads(result.output)
    assert len(listing["rules"]) == 20 and listing["rules"][0]["code"] == "DIBAO_GAP"
    assert listing["rules"][0]["name"] == "收入低于低保标准未纳入低保"
    assert {entry["parameter"] for entry in listing["parameters"]} >= {"dibao_standard",
                                                                      "edge_ratio"}
    markdown = CliRunner().invoke(app, ["rules", "--date", "2026-06-30", "--format",
                                        "markdown"]).output
    assert markdown.startswith("## Rules (20)\n\n| code | 名称 | 等级 |")
    assert "\n## Parameters in force on 2026-06-30 for region 50\n" in markdown
    rule_lines = [line for line in markdown.splitlines() if line.startswith("| DIBAO_GAP |")]
    assert len(rule_lines) == 1 and rule_lines[0].count(" | ") == 7


def test_rules_table_piped_keeps_every_row_and_name_on_one_line():
    from monitor.io.config import load_rule_definitions
    from monitor.policy.rules import parse_rules

    result = CliRunner().invoke(app, ["rules", "--date", "2026-06-30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for rule in parse_rules(load_rule_definitions()):
        (row,) = [line for line in lines if line.startswith(f"│ {rule.code} ")]
        # Not cut at 80 columns, nothing folded: the whole condition is on the rule's line.
        assert rule.condition.text in row and rule.name in row
    assert max(map(len, lines)) > 120
    wrong = CliRunner().invoke(app, ["rules", "--format", "yaml"])
    assert wrong.exit_code == 2 and "is not one of table, csv, json, markdown" in wrong.output
