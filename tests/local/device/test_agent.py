"""The process agent with real processes: start order, env, restart policies, selective restarts, no orphans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from edgegen.local.agent import Agent, BackoffPolicy, should_restart
from edgegen.local.deployment import DesiredModule
from edgegen.local.modulecode import ModuleResolver, VenvCache
from edgegen.local.processes import ProcessRuntime

pytestmark = pytest.mark.integration

MAIN = r'''
import json, os, subprocess, sys, time
out = os.environ["OUT_DIR"]
name = os.environ["IOTEDGE_MODULEID"]
def publish(filename, text):  # whole or not at all: the test polls these files
    tmp = os.path.join(out, f".{filename}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, os.path.join(out, filename))
publish(f"{name}.{os.getpid()}.json", json.dumps({"env": dict(os.environ), "t": time.time()}))
if os.environ.get("GRANDCHILD"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    publish(f"{name}.grandchild", str(child.pid))
code = int(os.environ.get("EXIT_CODE", "-1"))
if code >= 0:
    sys.exit(code)
time.sleep(600)
'''


def _solution(root: Path, names: list[str]) -> Path:
    for name in names:
        folder = root / "modules" / name
        folder.mkdir(parents=True)
        (folder / "module.json").write_text(json.dumps({
            "image": {"repository": f"localhost:5000/{name}", "tag": {"version": "0.1.0", "platforms": {"amd64": "x"}}}
        }))
        (folder / "main.py").write_text(MAIN)
    return root


def _module(name: str, out: Path, order: int = 0, policy: str = "always", **env: str) -> DesiredModule:
    return DesiredModule(name, f"localhost:5000/{name}:0.1.0-amd64", "running", policy, order,
                         {"OUT_DIR": str(out), **env})


def _agent(tmp_path: Path, names: list[str]) -> Agent:
    sol = _solution(tmp_path / "sol", names)
    runtime = ProcessRuntime(ModuleResolver(sol), VenvCache(tmp_path / "venvs", system_site_packages=True),
                             tmp_path / "logs")
    return Agent(runtime, lambda m: {"IOTEDGE_MODULEID": m.name, "IOTEDGE_DEVICEID": "dev"},
                 policy=BackoffPolicy(unit_secs=0.2, max_secs=1, stop_timeout=3))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def _until(pred, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _starts(out: Path, name: str) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in out.glob(f"{name}.*.json")), key=lambda d: d["t"])


def test_start_order_env_kill_restart_and_clean_stop(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.environ["EDGEGEN_TEST_SECRET"] = "must-not-leak"

    async def main() -> None:
        agent = _agent(tmp_path, ["a", "b"])
        mods = {"b": _module("b", out, order=2, GRANDCHILD="1"), "a": _module("a", out, order=1, GREETING="hi")}
        try:
            assert await agent.apply(mods) == ["a", "b"]
            await _until(lambda: _starts(out, "a") and _starts(out, "b") and (out / "b.grandchild").exists())
            a_env = _starts(out, "a")[0]["env"]
            assert a_env["GREETING"] == "hi" and a_env["IOTEDGE_MODULEID"] == "a"
            assert "EDGEGEN_TEST_SECRET" not in a_env
            st0 = agent.status()
            assert st0["a"]["lastStartTimeUtc"] <= st0["b"]["lastStartTimeUtc"]  # spawned in startupOrder

            pid = agent.pid("a")
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await _until(lambda: agent.pid("a") not in (None, pid))
            st = agent.status()["a"]
            assert st["runtimeStatus"] == "running" and st["restartCount"] == 1 and st["exitCode"] == -9
            assert st["lastExitTimeUtc"] and st["lastStartTimeUtc"]

            b_pid = agent.pid("b")
            changed = {**mods, "a": _module("a", out, order=1, GREETING="hello")}
            assert await agent.apply(changed) == ["a"]
            assert agent.pid("b") == b_pid
        finally:
            grandchild = int((out / "b.grandchild").read_text()) if (out / "b.grandchild").exists() else None
            pids = [agent.pid("a"), agent.pid("b"), grandchild]
            await agent.stop_all()
        assert not [p for p in pids if p and _alive(p)]
        assert all(s["runtimeStatus"] == "stopped" for s in agent.status().values())

    asyncio.run(main())


def test_restart_policies(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    async def main() -> None:
        agent = _agent(tmp_path, ["never", "onfail", "onfail0", "always0"])
        mods = {
            "never": _module("never", out, policy="never", EXIT_CODE="3"),
            "onfail": _module("onfail", out, policy="on-failure", EXIT_CODE="3"),
            "onfail0": _module("onfail0", out, policy="on-failure", EXIT_CODE="0"),
            "always0": _module("always0", out, policy="always", EXIT_CODE="0"),
        }
        try:
            await agent.apply(mods)
            await _until(lambda: len(_starts(out, "onfail")) >= 3 and len(_starts(out, "always0")) >= 3)
            st = agent.status()
            assert len(_starts(out, "never")) == 1 and st["never"]["runtimeStatus"] == "failed"
            assert st["never"]["exitCode"] == 3
            assert len(_starts(out, "onfail0")) == 1 and st["onfail0"]["runtimeStatus"] == "stopped"
            assert st["onfail"]["restartCount"] >= 2
            starts = [d["t"] for d in _starts(out, "onfail")]
            # each restart waits at least its cool-off, which doubles (0.2 s, then 0.4 s): lower bounds only, as a
            # loaded machine only adds to the intervals (comparing the two intervals raced process start-up)
            assert starts[1] - starts[0] >= agent.policy.delay(0)
            assert starts[2] - starts[1] >= agent.policy.delay(1) == 2 * agent.policy.delay(0)
        finally:
            await agent.stop_all()

    asyncio.run(main())


def test_policy_rule_and_a_module_without_code_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert should_restart("always", 0) and should_restart("on-failure", 1) and not should_restart("on-failure", 0)
    assert not should_restart("never", 1) and should_restart("on-unhealthy", 2)
    assert BackoffPolicy(unit_secs=10, max_secs=300).delay(0) == 10
    assert BackoffPolicy(unit_secs=10, max_secs=300).delay(9) == 300
    out = tmp_path / "out"
    out.mkdir()
    agent = _agent(tmp_path, ["a"])
    # (Microsoft's simulated temperature sensor is not an example: process mode runs edgegen's sensor in its place)
    mods = {"x": DesiredModule("x", "mcr.microsoft.com/azureiotedge-api-proxy:1.1"),
            "a": _module("a", out)}

    async def main() -> dict:
        try:
            assert await agent.apply(mods) == ["a"]  # the deployment runs without the module it has no code for
            return agent.status()
        finally:
            await agent.stop_all()

    with caplog.at_level("WARNING"):
        status = asyncio.run(main())
    assert status["a"]["runtimeStatus"] == "running"
    assert status["x"]["runtimeStatus"] == "unknown" and status["x"]["pid"] is None
    assert status["x"]["statusDescription"].startswith("skipped: no module folder builds image")
    warning = next(r.getMessage() for r in caplog.records if "module x is not started" in r.getMessage())
    assert "modules.x.settings.image" in warning and "localhost:5000/a" in warning and "--engine docker" in warning
