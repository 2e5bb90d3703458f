"""Soak in engine mode: ``kill -9`` of the device process under a QoS 1 stream loses no acknowledged message, and
the restarted device adopts the module containers an earlier run left running (same container, not a new one).

The monitor is the repo's real module (``modules/monitor/main.py`` on the real Python SDK) in a container of the
offline base image: its code and the SDK (this test environment's site-packages, the same Python 3.11) are bound
in read-only, so no image is built. A paho publisher (module ``a``) streams into the monitor through a route, the
monitor forwards to ``$upstream`` (``tests/local/device/soak.py``, shared with the process-mode soak). The device
process is killed twice with SIGKILL and started again; the container lives on in the engine, keeps what it had
taken, its SDK reconnects to the same gateway address, and the restarted device adopts it. Every acknowledged
message must reach ``$upstream`` (at least once: duplicates are counted). A clean stop (SIGTERM) at the end
removes the device's containers.
"""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

import pytest

from edgegen.local.containerengine import ContainerEngine
from edgegen.local.containers import device_label
from edgegen.local.containerspec import DEVICE_LABEL
from tests.local.device.soak import MONITOR_ENV, ROUTES, DeviceProcess, soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
BASE = "docker.io/library/python:3.11-slim-bookworm"
KILLS = 2
UP_SECS = 4.0


def _manifest(path: Path) -> Path:
    create = {"Cmd": ["python", "-u", "/app/main.py"], "WorkingDir": "/app", "Env": ["PYTHONPATH=/sdk"],
              "HostConfig": {"Binds": [f"{REPO / 'modules' / 'monitor'}:/app:ro",
                                       f"{sysconfig.get_paths()['purelib']}:/sdk:ro"]}}
    monitor = {"type": "docker", "status": "running", "restartPolicy": "always", "imagePullPolicy": "never",
               "env": dict(MONITOR_ENV), "settings": {"image": BASE, "createOptions": json.dumps(create)}}
    publisher = {"type": "docker", "status": "stopped", "restartPolicy": "never", "imagePullPolicy": "never",
                 "settings": {"image": BASE}}
    content = {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
            "modules": {"a": publisher, "monitor": monitor}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": dict(ROUTES),
                                            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
        "monitor": {"properties.desired": {"heartbeatSeconds": 0}},
    }}
    path.write_text(json.dumps(content))
    return path


def test_kill_9_under_load_adopts_the_containers_and_loses_no_acknowledged_message(
        engine_host: str, tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": engine_host}
    dev = DeviceProcess(tmp_path, _manifest(tmp_path / "m.json"), ["--engine", "docker"], env)
    engine = ContainerEngine.connect({"DOCKER_HOST": engine_host})
    label = f"{DEVICE_LABEL}={device_label(dev.state)}"

    def monitor_container() -> str | None:
        running = [c for c in engine.containers(label) if c.get("State") == "running"
                   and any(n.lstrip("/") == "monitor" for n in c.get("Names") or [])]
        return str(running[0]["Id"]) if running else None

    try:
        result = soak(dev, KILLS, UP_SECS, monitor_container)
        print(f"engine soak: {KILLS} kills, {len(result.acked)} acknowledged, {len(result.upstream)} upstream, "
              f"{result.duplicates} duplicates, monitor containers {sorted(str(i)[:12] for i in result.monitor_ids)}")
        assert len(result.acked) > 300 and len(result.monitor_ids) == 1  # one container all along: adopted
        assert set(result.upstream) - result.sent == set()  # nothing upstream that was never sent
        dev.terminate()
        assert engine.containers(label) == []  # a clean stop still removes every container
    finally:
        dev.terminate()
        for c in engine.containers(label):  # a failed test leaves no container behind
            engine.remove(str(c["Id"]))
        engine.close()
