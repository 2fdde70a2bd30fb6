"""The nightly run end to end: golden referral files, reruns, the next day, feedback, failure.

One synthetic population in three townships goes through a sequence of runs
(started once per module, on a temporary Prefect server); each test checks
one promise of DATA_CONTRACT.md sections 1 and 4 on what the runs left.
Regenerate the golden files with ``pytest tests/flows/test_nightly.py --regenerate-golden``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.io.outputs import warning_history
from monitor.io.sample_writer import write_sample
from monitor.triage.referrals import REFERRAL_HEADERS

GOLDEN = Path(__file__).parents[1] / "golden" / "nightly"
PLACES = ("500101001", "500101002", "500102001")
DAY = dt.date(2026, 6, 30)
NEXT, FEEDBACK_DAY, AFTER, FAILED = (DAY + dt.timedelta(days=n) for n in (1, 2, 3, 4))
runner = CliRunner()


def run(home: Path, day: dt.date) -> str:
    result = runner.invoke(app, ["run", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def referral_files(home: Path, day: dt.date) -> dict[str, bytes]:
    folder = home / "out" / day.isoformat() / "referrals"
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.glob("*/*.csv"))}


def listed(files: dict[str, bytes]) -> pd.DataFrame:
    frames = [pd.read_csv(pd.io.common.BytesIO(content), encoding="utf-8-sig", dtype=str)
              for content in files.values()]
    return pd.concat(frames, ignore_index=True)


def summary_artifacts() -> dict[str, str]:
    """The run summaries published to the Prefect server so far, by artifact id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["nightly-summary"])))
    return {str(artifact.id): artifact.data for artifact in found}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, prefect_server):
    """Run the sequence once: day 1 twice, day 2, feedback on day 3, day 4, a failing day 5."""
    home = tmp_path_factory.mktemp("nightly") / "home"
    write_sample(home, 150, 11, DAY, places=PLACES, monthly=False)
    # Other tests may have published summaries to this server already: keep only this run's.
    earlier = summary_artifacts()
    seen = {"cli_output": run(home, DAY), "first": referral_files(home, DAY)}
    manifest_first = (home / "out" / DAY.isoformat() / "run_manifest.json").read_text("utf-8")
    seen["manifest"] = json.loads(manifest_first)
    seen["artifacts"] = [text for key, text in summary_artifacts().items() if key not in earlier]
    run(home, DAY)
    seen["again"] = referral_files(home, DAY)
    run(home, NEXT)
    seen["next"] = referral_files(home, NEXT)

    # A township answers for its first household: verified, taken into 低保.
    answered = listed(seen["next"]).iloc[0]
    folder = home / "landing" / "feedback" / FEEDBACK_DAY.isoformat()
    folder.mkdir(parents=True)
    pd.DataFrame({"预警编号": [answered["预警编号"]], "户编号": [answered["户编号"]],
                  "核实结果": ["属实"], "处置措施": ["纳入低保"],
                  "办结日期": [FEEDBACK_DAY.isoformat()], "经办人": ["李娜"]}).to_csv(
        folder / "乡镇反馈 第1批.csv", index=False, encoding="utf-8-sig")
    seen["answered"] = answered
    run(home, FEEDBACK_DAY)
    seen["feedback"] = referral_files(home, FEEDBACK_DAY)
    run(home, AFTER)
    seen["after"] = referral_files(home, AFTER)
    seen["history"] = warning_history(home)

    # A run that fails while writing its outputs leaves no out/<date> at all.
    with pytest.MonkeyPatch.context() as patch:
        def broken(rows):
            raise OSError("disk full (simulated)")
            yield
        patch.setattr("monitor.io.outputs.referral_files", broken)
        # An OSError is retried (three times, with backoff): here without the wait.
        import flows.nightly
        patch.setattr(flows.nightly, "write_run",
                      flows.nightly.write_run.with_options(retry_delay_seconds=0))
        seen["failed"] = runner.invoke(app, ["run", "--home", str(home), "--date",
                                             FAILED.isoformat()])
    seen["home"] = home
    return seen


def test_referral_files_match_the_golden_files(scenario, request):
    files = scenario["first"]
    assert files, "the sample should produce referrals"
    if request.config.getoption("--regenerate-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, content in files.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(content)
    golden = {path.relative_to(GOLDEN).as_posix(): path.read_bytes()
              for path in sorted(GOLDEN.glob("*/*.csv"))}
    assert sorted(files) == sorted(golden)
    for name, content in files.items():
        assert content == golden[name], f"{name} differs from the golden file"


def test_files_follow_the_contract(scenario):
    files = scenario["first"]
    assert {name.split("/")[0] for name in files} <= {"500101", "500102"}
    for name, content in files.items():
        assert content.startswith(b"\xef\xbb\xbf")
        rows = pd.read_csv(pd.io.common.BytesIO(content), encoding="utf-8-sig", dtype=str)
        assert list(rows.columns) == REFERRAL_HEADERS
        # Each township's file holds its own households only.
        township = Path(name).stem
        assert rows["村(社区)"].str.startswith(township).all()
        assert rows["户主身份证号"].dropna().str.fullmatch(r"\d{6}\*{8}[\dX]{4}").all()
        assert rows["预警等级"].isin(["红色", "橙色", "黄色"]).all()
        codes = rows["触发规则"].str.split(";")
        assert (codes.map(sorted) == codes).all()
        score = rows["风险评分"].astype(int)
        assert score.between(0, 100).all()
        level = rows["预警等级"].map({"红色": 0, "橙色": 1, "黄色": 2})
        assert (level.diff().dropna() >= 0).all(), "rows must be ordered by level"
        same_level = level.diff() == 0
        assert (score.diff()[same_level] <= 0).all(), "then by score, highest first"
        assert rows["状态"].eq("新增").all()


def test_running_the_same_date_again_gives_identical_files(scenario):
    assert scenario["again"] == scenario["first"]


def test_the_next_day_marks_carried_over_warnings_continuing_with_the_same_ids(scenario):
    first, after = listed(scenario["first"]), listed(scenario["next"])
    merged = first.merge(after, on="户编号", suffixes=("_first", "_next"))
    assert len(merged) == len(first)
    assert (merged["预警编号_first"] == merged["预警编号_next"]).all()
    assert (merged["状态_next"] == "持续").all()
    assert (merged["首次预警日期_next"] == DAY.isoformat()).all()


ROSTER_RULES = {"LEFT_BEHIND_ELDER", "LEFT_BEHIND_CHILD"}


def test_feedback_closes_the_warning_and_it_is_not_relisted(scenario):
    # A verification answer closes the household's verification warnings; its visits (定期探访,
    # rosters) are another matter: still due, never visited, it stays listed for them alone.
    answered = scenario["answered"]
    rules = set(answered["触发规则"].split(";"))
    verification, roster = rules - ROSTER_RULES, rules & ROSTER_RULES
    assert verification, "the first household should have a warning to verify"
    for day in ("feedback", "after"):
        rows = listed(scenario[day]).set_index("户编号")
        if roster:
            assert set(rows.loc[answered["户编号"], "触发规则"].split(";")) == roster, day
        else:
            assert answered["户编号"] not in rows.index, day
    history = scenario["history"]
    closing = history[(history["event"] == "closed_by_feedback")
                      & (history["household_id"] == answered["户编号"])]
    assert sorted(closing["rule"]) == sorted(verification)
    assert set(closing["verified"]) == {"属实"} and set(closing["action"]) == {"纳入低保"}
    assert set(closing["by"]) == {f"feedback {answered['预警编号']}"}
    others = listed(scenario["next"]).query("户编号 != @answered['户编号']")
    assert len(listed(scenario["feedback"])) == len(others) + bool(roster)


def test_manifest_accounts_for_inputs_and_says_the_score_is_rules_only(scenario):
    manifest = scenario["manifest"]
    assert manifest["run_date"] == DAY.isoformat()
    assert manifest["model"]["version"] is None
    assert manifest["model"]["risk_score"].startswith("rules-only")
    inputs = pd.DataFrame(manifest["inputs"])
    assert inputs["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    accepted = inputs[inputs["status"] == "accepted"]
    assert (accepted["rows_read"] == accepted["rows_accepted"]
            + accepted["rows_quarantined"]).all()
    assert sum(manifest["warnings"]["by_level"].values()) == manifest["warnings"]["listed"]
    assert sum(manifest["warnings"]["by_rule"].values()) == manifest["warnings"]["listed"]
    assert manifest["households"]["listed"] == len(listed(scenario["first"]))
    for stage in ("ingest", "lifecycle", "triage", "facts (sum over counties)"):
        assert manifest["stage_seconds"][stage] >= 0
    warnings = pd.read_parquet(scenario["home"] / "out" / DAY.isoformat() / "warnings.parquet")
    assert {"household_id", "rule", "level", "warning_id", "evidence"} <= set(warnings.columns)
    assert "person_id_number" not in warnings.columns
    # Each rule's evidence fields are columns too, e.g. the income behind DIBAO_GAP.
    gap = warnings[warnings["rule"] == "DIBAO_GAP"]
    assert len(gap) and (gap["per_capita_income"] < gap["dibao_standard"]).all()
    assert warnings.loc[warnings["rule"] != "DIBAO_GAP", "per_capita_income"].isna().any()


def test_the_run_publishes_its_summary_as_a_prefect_artifact(scenario):
    summaries = [text for text in scenario["artifacts"] if DAY.isoformat() in text]
    assert len(summaries) == 1, "the run should publish one nightly-summary artifact"
    (text,) = summaries
    households = scenario["manifest"]["households"]
    assert f"{households['listed']:,} households listed" in text
    for heading in ("## By level", "## By rule", "## By county", "## Quarantined rows"):
        assert heading in text
    assert "万州区" in text and "DIBAO_GAP" in text


def test_each_run_writes_a_report_whose_tables_match_its_referral_files(scenario):
    home = scenario["home"]
    out = home / "out" / AFTER.isoformat()
    tables = {name: pd.read_parquet(out / "tables" / f"{name}.parquet")
              for name in ("by_level", "by_rule", "by_county", "trend", "quarantine")}
    rows = listed(scenario["after"])
    assert tables["by_level"].set_index("level")["households"].to_dict() == \
        rows["预警等级"].value_counts().reindex(["红色", "橙色", "黄色"], fill_value=0).to_dict()
    by_county = tables["by_county"].set_index("county_name")["households"]
    assert by_county.to_dict() == rows["区县"].value_counts().to_dict()
    # The trend: every earlier run, then this one, each with the households its files list.
    trend = tables["trend"]
    assert trend["run_date"].dt.date.tolist() == [DAY, NEXT, FEEDBACK_DAY, AFTER]
    for day, key in ((DAY, "again"), (NEXT, "next"), (FEEDBACK_DAY, "feedback"),
                     (AFTER, "after")):
        assert trend.set_index("run_date").loc[pd.Timestamp(day), "households"] == \
            len(listed(scenario[key]))
    # Quarantined rows of the deliveries the day's first run ingested, by source, as its
    # manifest counts them; the day's second run (which ingested nothing) reports them too.
    manifest = scenario["manifest"]
    first_day = pd.read_parquet(home / "out" / DAY.isoformat() / "tables" / "quarantine.parquet")
    counted = pd.DataFrame(manifest["ingested_this_run"]).set_index("source")["rows_quarantined"]
    assert first_day.groupby("source")["rows"].sum().to_dict() == \
        counted[counted > 0].to_dict()
    assert first_day["department"].notna().all() and first_day["explanation"].notna().all()
    assert (first_day.loc[first_day["source"] == "registry", "department"]
            == "户籍人口（公安）").all()
    assert first_day.loc[first_day["reason"] == "id_check_digit", "explanation"].eq(
        "身份证号校验位错误").all()
    assert tables["quarantine"].empty, "the last run ingested nothing quarantined"
    for table in tables:
        assert (out / "tables" / f"{table}.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    page = (out / "report.html").read_text(encoding="utf-8")
    for title in ("概要", "按规则", "按区县", "近期趋势", "隔离的数据行"):
        assert f">{title}<" in page
    assert f"本次列入核查名单 {len(rows):,} 户" in page
    assert page.count('src="data:image/png;base64,') >= 4  # level, rule, county, trend
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_a_report_that_cannot_be_drawn_does_not_cost_the_referral_lists(scenario):
    home = scenario["home"]
    day = FAILED + dt.timedelta(days=1)
    with pytest.MonkeyPatch.context() as patch:
        def broken(*arguments, **keywords):
            raise RuntimeError("no font (simulated)")
        patch.setattr("flows.nightly.nightly_report", broken)
        result = runner.invoke(app, ["run", "--home", str(home), "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    assert "report.html not written: RuntimeError: no font (simulated)" in " ".join(
        result.output.split())
    out = home / "out" / day.isoformat()
    assert referral_files(home, day) and not (out / "report.html").exists()
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    assert any("report.html not written" in notice for notice in manifest["notices"])


def test_the_command_says_where_the_files_are(scenario):
    output = scenario["cli_output"]
    assert "Referral files:" in output and "referrals" in output
    assert "report.html" in output
    assert "新增" in output


def test_a_failed_run_exits_non_zero_with_one_line_and_leaves_no_outputs(scenario):
    failed, home = scenario["failed"], scenario["home"]
    assert failed.exit_code == 1
    assert failed.stderr.strip().splitlines() == ["run failed: OSError: disk full (simulated)"]
    # The progress shows where it was: writing its outputs, never written.
    progress = failed.stdout.strip().splitlines()
    assert progress[-1].endswith("report drawn; writing the referral files and workbooks")
    assert not any("outputs written" in line for line in progress)
    assert not (home / "out" / FAILED.isoformat()).exists()
    assert not list((home / "out").glob(".*"))
    assert not (home / "lake" / "warning_state" / f"{FAILED.isoformat()}.parquet").exists()


def test_a_bad_parameter_file_stops_the_run_before_it_starts(home):
    (home / "landing").mkdir(parents=True)
    (home / "parameters.yaml").write_text("edge_ratio:\n  - {from: 2030-01-01, value: 1.5}\n",
                                          encoding="utf-8")
    result = runner.invoke(app, ["run", "--home", str(home), "--date", "2026-06-30"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run not started:")
    assert "edge_ratio" in lines[0] and "parameters.yaml" in lines[0]
    assert not (home / "out").exists()


def test_a_plain_command_line_run_uses_a_temporary_server_and_prints_no_errors(scenario, tmp_path):
    # A fresh process with no Prefect server configured, as cron would start it.
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("PREFECT_")}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect")
    day = FAILED + dt.timedelta(days=1)
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("monitor")), "run", "--home", str(scenario["home"]),
         "--date", day.isoformat()],
        capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert "Referral files:" in completed.stdout
    assert referral_files(scenario["home"], day)


def test_a_run_not_on_a_terminal_prints_a_line_per_stage_and_county_as_it_goes(night_home,
                                                                               tmp_path):
    import re

    home = tmp_path / "home"
    shutil.copytree(night_home, home)
    output = run(home, DAY)
    # Each line with the time first, in the order the run goes (cron's log shows where a run
    # was when it died); the counties one by one.
    stages = ["configuration checked; ingesting", "ingested: nothing new",
              "deliveries checked: ", "counties: 2 to evaluate",
              "county 500101 (1/2): ", "county 500102 (2/2): ",
              "counties evaluated: ", "warnings tracked: ", "lists made: ",
              "report drawn; writing", "outputs written: "]
    lines = output.splitlines()
    at = [next(number for number, line in enumerate(lines) if stage in line)
          for stage in stages]
    assert at == sorted(at)
    assert all(re.match(r"\d\d:\d\d:\d\d ", lines[number]) for number in at)
    assert f"outputs written: {home / 'out' / DAY.isoformat()}" in output
    # The summary follows the progress.
    assert output.index("outputs written: ") < output.index("Referral files:")
    # The run is named by its date in Prefect (its UI, a notification), not at random.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"nightly-{DAY.isoformat()}"])))
        messages = [log.message for log in client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[run.id for run in runs])), limit=200)]
    assert runs
    # Each county's tasks say what they did, not only "Finished in state Completed()".
    assert any(message.startswith("county 500101: ") and "rows read from" in message
               for message in messages)
    assert any(message.startswith("county 500101: ") and message.endswith(" hits")
               for message in messages)


def test_a_home_with_nothing_delivered_runs_and_lists_no_one(home, prefect_server):
    (home / "landing").mkdir(parents=True)
    output = run(home, DAY)
    assert "0 households" in output
    out = home / "out" / DAY.isoformat()
    assert json.loads((out / "run_manifest.json").read_text("utf-8"))["households"]["listed"] == 0
    assert not list(out.glob("referrals/*/*.csv"))


def _a_record_made_here() -> tuple[bool, str]:
    """On a worker: whether it ran the flows' code, and a log record's message made there."""
    import logging
    import sys

    record = logging.getLogger("flows.nightly").makeRecord(
        "flows.nightly", logging.ERROR, __file__, 1, "cell %s, phone %s",
        ("110105194912310021", "13812345678"), None)
    return "flows.nightly" in sys.modules, record.getMessage()


def test_a_dask_cluster_with_two_worker_processes_gives_the_same_outputs(scenario, tmp_path):
    """The counties of day 1 run on a real LocalCluster: the same files, byte for byte."""
    from distributed import Client, LocalCluster

    home = tmp_path / "home"
    shutil.copytree(scenario["home"], home)
    shutil.rmtree(home / "out" / DAY.isoformat())
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = runner.invoke(app, ["run", "--home", str(home), "--date", DAY.isoformat(),
                                     "--dask-address", cluster.scheduler_address])
        assert result.exit_code == 0, result.output
        workers = len(cluster.workers)
        # The county tasks went through the cluster's scheduler.
        transitions = cluster.scheduler.transition_counter
        # A record a worker's task makes there (a failure quoting a cell) is masked there.
        with Client(cluster.scheduler_address) as client:
            said = client.run(_a_record_made_here)
    assert workers == 2 and transitions > 0
    assert len(said) == 2
    assert set(said.values()) == {(True, "cell 110105********0021, phone 138****5678")}
    assert referral_files(home, DAY) == scenario["first"]
    local = scenario["home"] / "out" / DAY.isoformat() / "warnings.parquet"
    clustered = home / "out" / DAY.isoformat() / "warnings.parquet"
    assert clustered.read_bytes() == local.read_bytes()


def test_a_dask_address_that_is_not_one_is_refused(home):
    result = runner.invoke(app, ["run", "--home", str(home), "--date", DAY.isoformat(),
                                 "--dask-address", "localhost:8786"])
    assert result.exit_code == 1
    assert "run not started: --dask-address 'localhost:8786' is not a Dask" in result.output


def test_flow_runs_are_named_by_their_date_and_a_tune_by_its_candidate_too(monkeypatch):
    import prefect.runtime.flow_run

    from flows.nightly import nightly
    from flows.train import train
    from flows.tune import tune

    parameters = {"run_date": DAY, "train_date": "2026-06-30",
                  "candidate": Path("/bureau/候选/边缘 1.7.yaml")}
    monkeypatch.setitem(prefect.runtime.flow_run.FIELDS, "parameters", lambda: parameters)
    assert nightly.flow_run_name() == "nightly-2026-06-30"
    assert train.flow_run_name() == "train-2026-06-30"
    parameters["tune_date"] = dt.date(2026, 5, 31)
    assert tune.flow_run_name() == "tune-2026-05-31-边缘 1.7"
