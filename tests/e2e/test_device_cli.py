"""``edgegen device`` driven as a user would: run in one process, status/logs/invoke/messages/modulecred from
others, SIGTERM stops everything and leaves no module process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.local.device.harness import fast_solution, wait_for, write_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

EDGEGEN = [sys.executable, "-m", "edgegen"]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*EDGEGEN, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgegen {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_device_cli_run_inspect_and_stop(tmp_path: Path, repo_root: Path, venv_cache: Path) -> None:
    manifest = write_manifest(tmp_path / "deployment.json", fast_solution(repo_root, count=15, interval=0.1))
    state = tmp_path / "state"
    s = ["--state-dir", str(state)]
    log = open(tmp_path / "device.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*EDGEGEN, "device", "run", "--manifest", str(manifest), *s, "--solution",
                             str(repo_root), "--reuse-site-packages", "--venv-dir", str(venv_cache),
                             "--backoff-unit", "0.5"], stdout=log, stderr=subprocess.STDOUT)
    pids: list[int] = []
    try:
        wait_for(lambda: (state / "device.json").exists() or proc.poll() is not None, 120, "device.json")
        assert proc.poll() is None, (tmp_path / "device.log").read_text()

        def status() -> dict[str, Any]:
            return json.loads(_cli("device", "status", *s, "--output", "json").stdout)

        wait_for(lambda: len(status()["connected"]) == 3, 60, "three modules connected")
        st = status()
        assert {m: v["runtimeStatus"] for m, v in st["modules"].items()} == {
            "sensor": "running", "inference": "running", "monitor": "running"}
        pids = [v["pid"] for v in st["modules"].values()]
        table = _cli("device", "status", *s).stdout
        assert "sensor" in table and "running" in table and "queued" in table and "delivered" in table

        def upstream() -> list[dict[str, Any]]:
            return [json.loads(line) for line in _cli("device", "messages", *s).stdout.splitlines()]

        wait_for(lambda: len([e for e in upstream()
                              if e["event"]["properties"]["application"].get("originModuleId") == "inference"]) >= 15,
                 60, "15 scored messages")
        first = upstream()[0]["event"]
        assert first["module"] == "monitor" and first["properties"]["application"]["originDeviceId"]

        assert "sent message" in _cli("device", "logs", "sensor", *s).stdout
        lines = [json.loads(ln) for ln in _cli("device", "logs", "sensor", *s, "--output", "json").stdout.splitlines()]
        assert lines and {ln["module"] for ln in lines} == {"sensor"} and any("sent message" in ln["line"]
                                                                            for ln in lines)
        readable = _cli("device", "messages", *s, "--output", "text").stdout.splitlines()
        assert readable and readable[0].split(" ", 1)[0].isdigit() and "/monitor: " in readable[0]
        answer = json.loads(_cli("device", "invoke", "sensor", "reset", "--payload", "{}", *s).stdout)
        assert answer["status"] == 200 and answer["payload"]["reset"] is True
        bad = _cli("device", "invoke", "sensor", "nope", *s, check=False)
        assert bad.returncode == 1 and '"status": 404' in bad.stdout

        # a new manifest: only the module whose settings changed restarts; a twin-only change restarts nothing
        changed = fast_solution(repo_root, count=15, interval=0.1)
        sensor = changed["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]
        sensor["env"]["ANOMALY_RATE"] = {"value": "0.5"}
        changed["modulesContent"]["monitor"]["properties.desired"]["messageLogLevel"] = "DEBUG"
        before = {m: v["pid"] for m, v in status()["modules"].items()}
        write_manifest(manifest, changed)
        wait_for(lambda: status()["modules"]["sensor"]["pid"] not in (None, before["sensor"]), 30, "sensor restart")
        after = {m: v["pid"] for m, v in status()["modules"].items()}
        assert after["inference"] == before["inference"] and after["monitor"] == before["monitor"]
        pids = list(after.values())

        cred = _cli("device", "modulecred", "monitor", *s).stdout
        assert "EdgeHubConnectionString=HostName=" in cred and "ModuleId=monitor;" in cred
        assert "EdgeModuleCACertificateFile=" in cred and "GatewayHostName=127." in cred
        missing = _cli("device", "logs", "nosuch", *s, check=False)
        assert missing.returncode == 1 and "nosuch" in missing.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "device.log").read_text()[-3000:]
    assert pids and not [p for p in pids if p and _alive(p)]
    assert not (state / "device.json").exists()
    gone = _cli("device", "status", *s, check=False)
    assert gone.returncode == 1 and "no device is running" in gone.stderr
