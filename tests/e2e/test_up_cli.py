"""The hub workflow typed as a user would: genconfig → hub serve → hub device create → device run
--connection-string → deploy → monitor; then the fault cases: a redeploy restarts only the changed module, and a
hub stopped for 30 s mid-stream loses nothing and duplicates nothing at the monitor."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgegen.hub.connection import resolve_hub
from edgegen.hub.monitor import LocalFeed
from edgegen.local.hubstandin.server import read_hub_info
from tests.e2e.test_up import no_leftovers, solution_copy
from tests.support.net import free_loopback_address

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def edgegen(cwd: Path, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, "-m", "edgegen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env())
    assert proc.returncode == 0, f"edgegen {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IOTHUB_CONNECTION_STRING", None)
    return env


@dataclass
class Stack:
    sol: Path
    state: Path
    address: str
    hub: subprocess.Popen[str]
    device: subprocess.Popen[str] | None = None

    def start_hub(self) -> None:
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(self.state), "--address",
             self.address], cwd=self.sol, env=_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while read_hub_info(self.state) is None:
            assert self.hub.poll() is None and time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)

    def stop_hub(self) -> None:
        self.hub.send_signal(signal.SIGTERM)
        assert self.hub.wait(30) == 0

    def twin(self, module: str) -> dict:
        from edgegen.hub.client import HubClient

        return HubClient(resolve_hub(None, state_dir=self.state, environ={})).module_twin("edge1", module)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    sol = solution_copy(tmp_path)
    address = free_loopback_address()
    s = Stack(sol, sol / ".state" / "hub", address, None)  # type: ignore[arg-type]
    s.start_hub()
    try:
        yield s
    finally:
        for proc in (s.device, s.hub):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        no_leftovers(str(sol))


def start_device(s: Stack) -> None:
    out = edgegen(s.sol, "hub", "device", "create", "edge1", "--edge", "--state-dir", str(s.state),
                  "--output", "json")
    cs = json.loads(out)["connectionString"]
    # the key goes in the environment, never in argv (where any local user would see it)
    s.device = subprocess.Popen(
        [sys.executable, "-m", "edgegen", "device", "run", "--hub-ca-file",
         str(s.state / "ca.pem"), "--state-dir", str(s.sol / ".state" / "device"), "--solution", str(s.sol)],
        cwd=s.sol, env={**_env(), "IOTEDGE_DEVICE_CONNECTION_STRING": cs}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def pids(s: Stack) -> dict[str, int]:
    reported = s.twin("$edgeAgent")["reported"]
    return {name: m.get("pid") for name, m in (reported.get("modules") or {}).items() if m}


def _created(message) -> float:  # type: ignore[no-untyped-def]
    """When the inference result was made (0 for other messages, e.g. the monitor's heartbeats)."""
    import calendar

    text = json.loads(message.body).get("timeCreated")
    if not text:
        return 0.0
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + text[19:].rstrip("Z"))


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_cli_workflow_and_redeploy_restarts_only_the_changed_module(stack: Stack) -> None:
    s = stack
    edgegen(s.sol, "genconfig")
    manifest = s.sol / "manifests" / "deployment.amd64.json"
    start_device(s)
    edgegen(s.sol, "deploy", "-d", "edge1", "-f", str(manifest), "--state-dir", str(s.state))
    out = edgegen(s.sol, "monitor", "-d", "edge1", "-m", "monitor", "--count", "5", "--timeout", "90",
                  "--state-dir", str(s.state), timeout=150)
    events = [json.loads(chunk) for chunk in out.strip().replace("}\n{", "}\x00{").split("\x00")]
    assert len(events) == 5
    assert all(e["event"]["origin"] == "edge1" and "score" in e["event"]["payload"] for e in events)

    before = wait_for(lambda: (lambda p: p if len(p) == 3 and all(p.values()) else None)(pids(s)), 30, "pids")
    doc = json.loads(manifest.read_text())
    sensor = doc["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]
    sensor.setdefault("env", {})["EDGEGEN_TEST_CHANGE"] = {"value": "1"}
    changed = s.sol / "manifests" / "changed.json"
    changed.write_text(json.dumps(doc, indent=2))
    edgegen(s.sol, "deploy", "-d", "edge1", "-f", str(changed), "--state-dir", str(s.state))
    after = wait_for(lambda: (lambda p: p if p.get("sensor") not in (None, before["sensor"]) else None)(pids(s)),
                     60, "the sensor to restart")
    assert after["inference"] == before["inference"] and after["monitor"] == before["monitor"]


def test_hub_outage_of_30s_loses_nothing_and_duplicates_nothing(stack: Stack) -> None:
    s = stack
    edgegen(s.sol, "genconfig")
    start_device(s)
    edgegen(s.sol, "deploy", "-d", "edge1", "-f", str(s.sol / "manifests" / "deployment.amd64.json"),
            "--state-dir", str(s.state))
    target = resolve_hub(None, state_dir=s.state, environ={})
    received = []
    with LocalFeed(target) as feed:
        feed.wait_ready()
        for message in feed.messages(timeout=90):
            received.append(message)
            if len(received) >= 5:
                break
        stopped = time.time()
        s.stop_hub()
        time.sleep(30)
        s.start_hub()
        restarted = time.time()
        deadline = time.monotonic() + 150
        for message in feed.messages(timeout=60):
            received.append(message)
            if _created(message) > restarted + 10 or time.monotonic() > deadline:
                break
        end = time.monotonic() + 3  # a little longer, to catch late duplicates
        for message in feed.messages(timeout=1):
            received.append(message)
            if time.monotonic() > end:
                break
    ids = [m.message_id for m in received]
    assert len(ids) == len(set(ids)), "a message reached the monitor twice (the monitor hides only redeliveries)"
    stamps = [t for t in (_created(m) for m in received) if t]
    assert stamps == sorted(stamps), "order was not kept"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 40, f"only {len(stamps)} results"
    during = [t for t in stamps if stopped + 1 < t < restarted - 1]
    assert len(during) >= 20, f"only {len(during)} results made while the hub was down came through"
    assert max(gaps) <= 3, f"results missing: a {max(gaps)} s gap (the sensor sends every second)"
