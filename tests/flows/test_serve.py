"""`monitor serve` on a real Prefect server: the deployments exist, on the bureau's schedule,
and a run triggered through the API completes.

The test starts its own `prefect server` on a free loopback port (skipped, with
the reason, if it cannot start) and stops only the processes it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deliveries import DELIVERY, good_frame, write_delivery

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> int:
    """Stop a process this test started (politely, then not)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception:
            pass
        time.sleep(0.5)
    raise TimeoutError(what)


def test_serve_runs_the_nightly_deployment_triggered_through_the_api(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path / "home"
    write_delivery(home, "registry", good_frame("registry"), DELIVERY)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("PREFECT_")}
    environment.update(PREFECT_HOME=str(tmp_path / "prefect"), DO_NOT_TRACK="1",
                       PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=environment, stdout=log,
                              stderr=subprocess.STDOUT)
    served = None
    try:
        try:
            wait_for(lambda: urllib.request.urlopen(f"{api}/health", timeout=2).status == 200,
                     90, "server")
        except TimeoutError:
            tail = (tmp_path / "server.log").read_text(errors="replace")[-500:]
            pytest.skip(f"prefect server did not start on port {port} within 90 s: {tail}")
        served = subprocess.Popen([str(BIN / "monitor"), "serve", "--home", str(home)],
                                  env={**environment, "PREFECT_API_URL": api},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with temporary_settings({PREFECT_API_URL: api}):
            def deployment():
                with get_client(sync_client=True) as client:
                    return client.read_deployment_by_name("nightly/nightly")

            nightly = wait_for(deployment, 90, "the nightly deployment")
            (schedule,) = nightly.schedules
            assert schedule.schedule.cron == "0 2 * * *"
            assert schedule.schedule.timezone == "Asia/Shanghai"
            run = run_deployment("nightly/nightly",
                                 parameters={"run_date": DELIVERY.isoformat()},
                                 timeout=120, poll_interval=1)
        assert run.state.is_completed(), run.state
        assert (home / "out" / DELIVERY.isoformat() / "run_manifest.json").exists()
    finally:
        if served is not None:
            stop(served)
        stop(server)
        log.close()
    assert served.poll() is not None and server.poll() is not None
