"""Soak: repeated ``kill -9`` of the device process under load loses no acknowledged message (process mode).

A publisher (paho, as module ``a``, QoS 1, persistent session) sends a numbered stream to the edge hub; a route
takes it to the real monitor module (process mode), which forwards every message to ``$upstream``. While the
stream runs, the device process is killed with SIGKILL several times and started again. The monitor outlives each
kill (modules run in their own session, as IoT Edge's containers outlive edgeHub), keeps what it had taken,
reconnects, and the restarted device adopts it. At the end every message the edge hub acknowledged (PUBACK) to
the publisher is in ``$upstream``: at least once; duplicates are counted and reported, losses fail the test.
(``tests/local/engine/test_soak_kill_engine.py`` does the same with the monitor in a container.)
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from edgegen.local import pidfiles
from tests.local.device.harness import solution_manifest
from tests.local.device.soak import MONITOR_ENV, ROUTES, DeviceProcess, soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
UP_SECS = 4.0  # how long the device runs, under load, before each kill


def _manifest(repo: Path, path: Path) -> Path:
    mc = solution_manifest(repo)["modulesContent"]
    modules = mc["$edgeAgent"]["properties.desired"]["modules"]
    monitor = modules["monitor"]
    monitor.setdefault("env", {}).update(MONITOR_ENV)
    publisher = {"type": "docker", "status": "stopped", "restartPolicy": "never",
                 "settings": {"image": monitor["settings"]["image"]}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"a": publisher, "monitor": monitor}
    mc["$edgeHub"]["properties.desired"]["routes"] = dict(ROUTES)
    for key in ("sensor", "inference"):
        mc.pop(key, None)
    mc.setdefault("monitor", {"properties.desired": {}})["properties.desired"]["heartbeatSeconds"] = 0
    path.write_text(json.dumps({"modulesContent": mc}))
    return path


def test_repeated_kill_9_under_load_loses_no_acknowledged_message(tmp_path: Path, repo_root: Path,
                                                                  venv_cache: Path) -> None:
    dev = DeviceProcess(tmp_path, _manifest(repo_root, tmp_path / "m.json"), [
        "--solution", str(repo_root), "--engine", "process", "--reuse-site-packages", "--venv-dir", str(venv_cache)])

    def monitor_pid() -> int | None:
        record = pidfiles.live_record(dev.state / "run", "monitor")
        return record.pid if record else None

    try:
        result = soak(dev, KILLS, UP_SECS, monitor_pid)
        print(f"soak: {KILLS} kills, {len(result.acked)} acknowledged, {len(result.upstream)} upstream, "
              f"{result.duplicates} duplicates, monitor pids {sorted(map(str, result.monitor_ids))}")
        assert len(result.acked) > 500 and len(result.monitor_ids) == 1
        assert set(result.upstream) - result.sent == set()  # nothing upstream that was never sent
    finally:
        dev.terminate()
        for module in pidfiles.recorded_modules(dev.state / "run"):  # a failed test leaves no module behind
            record = pidfiles.live_record(dev.state / "run", module)
            if record is not None:
                os.killpg(record.pid, signal.SIGKILL)
