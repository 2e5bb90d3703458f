"""A first-time user's path, typed as the README says: `edgegen new X && cd X && edgegen up` streams results, and
`edgegen device run` in a new solution runs it without being told where the manifest is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_up import leftovers
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def _edgegen(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IOTHUB_CONNECTION_STRING", None)
    return subprocess.run([sys.executable, "-m", "edgegen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def test_new_solution_then_up_streams_results(tmp_path: Path) -> None:
    made = _edgegen(tmp_path, "new", "X")
    assert made.returncode == 0, made.stderr
    sol = tmp_path / "X"
    up = _edgegen(sol, "up", "--duration", "25", "--plain", "--hub-port", str(free_port()), timeout=300)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    # the simulated sensor's public image ran from edgegen's sensor template, and said so
    assert "tempSensor: image mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0 has no code" in up.stderr
    lines = up.stdout.splitlines()
    results = [ln for ln in lines if "edgegen-demo/filtermodule: {" in ln]
    assert results and '"machine":{"temperature"' in results[0]
    done = next(ln for ln in lines if ln.startswith("[done] "))
    assert int(done.split()[1]) >= len(results) > 0 and "filtermodule=running" in done and "tempSensor=running" in done
    assert any(ln.startswith("results per module: filtermodule ") for ln in lines)
    assert not leftovers(str(sol))


def test_device_run_in_a_new_solution_renders_and_runs_it(tmp_path: Path) -> None:
    assert _edgegen(tmp_path, "new", "Y").returncode == 0
    sol, state = tmp_path / "Y", tmp_path / "state"
    log = open(tmp_path / "device.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "device", "run", "--reuse-site-packages",
                             "--state-dir", str(state)], cwd=sol, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        status: dict[str, object] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            if (state / "device.json").exists():
                out = _edgegen(sol, "device", "status", "--state-dir", str(state), "--output", "json")
                if out.returncode == 0:
                    status = json.loads(out.stdout)
                    if len(status.get("connected", [])) == 2:  # type: ignore[arg-type]
                        break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "device.log").read_text()[-3000:]
        assert sorted(status["connected"]) == ["filtermodule", "tempSensor"]  # type: ignore[call-overload]
        assert (sol / "config" / "deployment.amd64.json").is_file()  # rendered first, where genconfig writes
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            log.close()
    assert proc.returncode == 0, (tmp_path / "device.log").read_text()[-3000:]
    assert "rendered config/deployment.amd64.json (edgegen genconfig)" in (tmp_path / "device.log").read_text()
