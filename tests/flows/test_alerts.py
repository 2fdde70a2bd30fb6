"""The automations that notify on a failed, late or missing nightly run, on a Prefect server."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.alerts import FAILED_OR_LATE, MISSING
from monitor.cli import app


def test_the_alerts_load_on_a_prefect_server_and_installing_again_replaces_them(
        prefect_server, monkeypatch):
    from prefect.blocks.notifications import SlackWebhook
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    block_id = SlackWebhook(url="https://hooks.slack.com/services/T0/B0/TEST").save(
        "bureau-alerts", overwrite=True)
    for _ in range(2):
        result = CliRunner().invoke(app, ["alerts", "--block", "slack-webhook/bureau-alerts",
                                          "--hours", "30"])
        assert result.exit_code == 0, result.output
        assert f"installed: {FAILED_OR_LATE}" in result.output
    with get_client(sync_client=True) as client:
        automations = {automation.name: automation for automation in client.read_automations()
                       if automation.name in (FAILED_OR_LATE, MISSING)}
        names = [automation.name for automation in client.read_automations()]
    assert sorted(names).count(FAILED_OR_LATE) == 1 and names.count(MISSING) == 1
    failed, missing = automations[FAILED_OR_LATE], automations[MISSING]
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                                     "prefect.flow-run.Late"}
    assert failed.trigger.posture == "Reactive"
    assert missing.trigger.expect == {"prefect.flow-run.Completed"}
    assert missing.trigger.posture == "Proactive"
    assert missing.trigger.within.total_seconds() == 30 * 3600
    for automation in (failed, missing):
        related = automation.trigger.match_related
        assert related["prefect.resource.name"] == ["nightly"]
        (action,) = automation.actions
        assert action.type == "send-notification" and action.block_document_id == block_id


def test_alerts_name_what_is_missing_in_one_line(prefect_server, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["alerts", "--block", "slack-webhook/bureau-alerts"])
    assert result.exit_code == 1 and result.output.startswith("alerts not installed: no Prefect")
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    for block, problem in (("slack-webhook/nobody", "no such block on the server"),
                           ("bureau-alerts", "give it as <block type>/<name>")):
        result = CliRunner().invoke(app, ["alerts", "--block", block])
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1 and problem in result.output
