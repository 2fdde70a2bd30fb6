"""Prefect automations that tell someone when a nightly run failed, crashed, is late or is missing.

``monitor alerts --block <type>/<name>`` installs them on the Prefect server
that ``PREFECT_API_URL`` names, with a notification block the operator has
made there (e.g. ``slack-webhook/bureau-alerts``, ``ms-teams-webhook/...``,
``custom-webhook/...``: any of Prefect's notification blocks). Run again, it
replaces them (by name), so the command can be repeated safely.

- **failed or late**: a ``nightly`` flow run entered Failed, Crashed or Late
  (a scheduled run nobody picked up: ``monitor serve`` is down).
- **missing**: no ``nightly`` run completed within ``hours`` (default 26),
  which also catches a night that never started at all.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

#: The flow the automations watch, and the names they are installed under.
NIGHTLY_FLOW = "nightly"
FAILED_OR_LATE = "monitor: nightly run failed or late"
MISSING = "monitor: no nightly run completed"
#: A night plus the two hours a night may take: no completed run for this long is an alert.
DEFAULT_MISSING_HOURS = 26


def nightly_automations(block_document_id: object, hours: float = DEFAULT_MISSING_HOURS
                        ) -> list:
    """The two automations (not yet on a server), notifying through the given block."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    flow = {"prefect.resource.role": "flow", "prefect.resource.name": NIGHTLY_FLOW}
    failed = Automation(
        name=FAILED_OR_LATE,
        description="A nightly monitoring run failed, crashed or is late: look at its log.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                    "prefect.flow-run.Late"},
            match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=flow,
            posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[SendNotification(
            block_document_id=block_document_id,
            subject="监测预警：夜间运行 {{ flow_run.name }} {{ flow_run.state.name }}",
            body=("Flow run {{ flow_run.name }} is {{ flow_run.state.name }}: "
                  "{{ flow_run.state.message }}"))],
    )
    missing = Automation(
        name=MISSING,
        description=f"No nightly monitoring run completed in {hours:g} hours.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=flow,
            posture=Posture.Proactive, threshold=1, within=timedelta(hours=hours)),
        actions=[SendNotification(
            block_document_id=block_document_id,
            subject="监测预警：夜间运行未完成",
            body=f"No nightly run has completed in the last {hours:g} hours.")],
    )
    return [failed, missing]


def install_nightly_alerts(block_address: str, hours: float = DEFAULT_MISSING_HOURS
                           ) -> list[str]:
    """Install (or replace) the automations on the server; return their names.

    Raises
    ------
    ValueError
        When ``block_address`` is not ``<block type>/<name>`` or names no
        block on the server.
    """
    from prefect.automations import Automation
    from prefect.blocks.core import Block

    if block_address.count("/") != 1:
        raise ValueError(f"--block {block_address!r}: give it as <block type>/<name>, "
                         "e.g. slack-webhook/bureau-alerts")
    try:
        block = Block.load(block_address)
    except ValueError as error:
        raise ValueError(f"--block {block_address!r}: no such block on the server "
                         f"({' '.join(str(error).split())})") from None
    names = []
    for automation in nightly_automations(block._block_document_id, hours):
        with contextlib.suppress(ValueError):  # not installed yet
            Automation.read(name=automation.name).delete()
        names.append(automation.create().name)
    return names
