"""The local device on a real container engine (podman's Docker API with runc), as edgeAgent runs modules.

Few and lean on purpose (each starts containers): the repo's solution end to end from images pulled with the
deployment's registry credentials, with a redeploy that recreates only the changed container; limits, binds,
restart back-off, desired status and an image that cannot be pulled; nothing left behind after a stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgegen.images import Engine
from edgegen.images.publish import build_and_push
from edgegen.local.agent import BackoffPolicy
from edgegen.local.containerengine import ContainerEngine
from edgegen.local.containers import device_label
from edgegen.local.containerspec import DEVICE_LABEL, OWNER_LABEL, WORKLOAD_DIR, WORKLOAD_SOCKET
from edgegen.local.control import ControlClient
from edgegen.local.device import Device, DeviceConfig
from edgegen.local.upstream import upstream_event
from edgegen.models.registry import SolutionModels
from edgegen.pipeline import genconfig
from tests.local.engine.conftest import engine_solution
from tests.support.listeners import beyond_loopback, listeners_of, process_tree
from tests.support.net import free_port
from tests.support.registry import RegistryInfo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = "docker.io/library/python:3.11-slim-bookworm"


async def _until(what: str, pred: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def _results(dev: Device) -> list[dict[str, Any]]:
    assert dev.local_upstream is not None
    events = [upstream_event(seq, m)["event"] for seq, m in dev.local_upstream.read(0, 10_000)]
    return [e for e in events if e["properties"]["application"].get("messageType") != "heartbeat"]


def _score(port: int) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=json.dumps([[21.5, 1.1, 20.9, 25]]).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_repo_solution_runs_from_pulled_images_and_a_redeploy_recreates_only_the_changed_container(
        engine_host: str, registry: RegistryInfo, tmp_path: Path) -> None:
    port = free_port()
    sol = engine_solution(tmp_path, registry, message_count=20, interval=0.2, scoring_port=port)
    env = {"DOCKER_HOST": engine_host}
    lines: list[str] = []
    published = build_and_push(sol, "amd64", env, lines.append)
    assert sorted(p.tag.split("/")[-1] for p in published) == [
        "inference:0.1.0-amd64", "monitor:0.1.0-amd64", "sensor:0.1.0-amd64"] and all(p.pushed for p in published)
    assert any(line.startswith("sensor-anomaly:2 (") and "verified in the image" in line for line in lines), lines
    with Engine.connect(env) as engine:  # so the device has to pull them, with the manifest's credentials
        for p in published:
            engine.remove_image(p.tag)
            assert engine.image(p.tag) is None
    result = genconfig(cwd=sol, platform="amd64", models=SolutionModels(sol),
                       registry_credentials=True)  # from .env: opt-in
    manifest = sol / result.output_path
    creds = json.loads(manifest.read_text())["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"][
        "settings"]["registryCredentials"]
    assert [c["address"] for c in creds.values()] == [registry.host]
    state = tmp_path / "state"

    async def main() -> None:
        config = DeviceConfig(state_dir=state, manifest=manifest, engine="docker", engine_env=env,
                              backoff=BackoffPolicy(unit_secs=0.5), watch_interval=0.3, control_api=False)
        async with Device(config) as dev:
            assert dev.engine_choice.kind == "docker"
            results = await _until("20 results at $upstream", lambda: len(r := _results(dev)) >= 20 and r)
            status = dev.agent.status()
            assert {m: s["runtimeStatus"] for m, s in status.items()} == {
                "inference": "running", "monitor": "running", "sensor": "running"}
            assert not any("cannot pull" in n for s in status.values() for n in s.get("notes", []))
            # every sensor message went through inference and monitor once: counts equal, sequence 1..20
            assert {r["module"] for r in results} == {"monitor"} and len(results) == 20
            seqs = sorted(int(r["properties"]["application"]["sequenceNumber"]) for r in results)
            assert seqs == list(range(1, 21))
            assert all("score" in r["payload"] and "anomaly" in r["payload"] for r in results)
            assert dev.workload.sign_count >= 3  # SAS tokens signed through the per-module sockets
            # the container edgeAgent would have created
            engine = dev.runtime.engine
            info = await asyncio.to_thread(engine.inspect, status["inference"]["containerId"])
            assert info is not None
            cfg, host = info["Config"], info["HostConfig"]
            assert cfg["Labels"][OWNER_LABEL] == "Microsoft.Azure.Devices.Edge.Agent"
            assert cfg["Labels"][DEVICE_LABEL] == device_label(state)
            envs = dict(e.split("=", 1) for e in cfg["Env"])
            assert envs["IOTEDGE_WORKLOADURI"] == f"unix://{WORKLOAD_SOCKET}"
            assert envs["IOTEDGE_MODULEID"] == "inference"
            assert envs["SCORING_PORT"] == str(port) and "SharedAccessKey" not in json.dumps(envs)
            assert host["Memory"] == 268435456
            assert any(f":{WORKLOAD_DIR}" in b for b in host["Binds"])  # podman adds :rw,rprivate,rbind
            # createOptions' port reaches the module's /score from the host (host network: see the notes)
            scored = await asyncio.to_thread(_score, port)
            assert "anomaly" in json.dumps(scored)
            assert any("PortBindings" in n for n in status["inference"]["notes"])
            # nothing of ours listens beyond loopback: on the host network the inference container gets
            # EDGEGEN_LISTEN_ADDRESS=127.0.0.1 over its image's SCORING_HOST=0.0.0.0
            assert envs["EDGEGEN_LISTEN_ADDRESS"] == "127.0.0.1"
            pids = [(await asyncio.to_thread(engine.inspect, s["containerId"]))["State"]["Pid"]
                    for s in status.values()]
            ours = listeners_of(process_tree([os.getpid(), *pids]))
            assert ("127.0.0.1", port) in {(a, p) for a, p, _ in ours}, ours  # the container's /score is seen
            assert beyond_loopback(ours) == [], ours
            assert b"ready" in await asyncio.to_thread(dev.agent.read_logs, "inference", 0, 1 << 20)
            # a redeploy that changes only the sensor recreates only the sensor's container
            before = {m: s["containerId"] for m, s in status.items()}
            data = json.loads(manifest.read_text())
            sensor = data["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]
            sensor["env"]["MESSAGE_COUNT"] = {"value": "3"}
            manifest.write_text(json.dumps(data))
            after = await _until("a new sensor container", lambda: (
                s := {m: v.get("containerId") for m, v in dev.agent.status().items()})["sensor"] not in (
                    None, before["sensor"]) and dev.agent.status()["sensor"]["runtimeStatus"] == "running" and s)
            assert after["inference"] == before["inference"] and after["monitor"] == before["monitor"]
            assert await asyncio.to_thread(engine.inspect, before["sensor"]) is None  # removed, not left behind
            await _until("3 more results", lambda: len(_results(dev)) >= 23)

    asyncio.run(main())
    with ContainerEngine.connect(env) as engine:
        assert engine.containers(f"{DEVICE_LABEL}={device_label(state)}") == []


def _manifest(path: Path, modules: dict[str, Any]) -> Path:
    content = {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}}, "modules": modules}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {}}},
    }}
    path.write_text(json.dumps(content))
    return path


def _base_module(cmd: list[str], policy: str, create: dict[str, Any] | None = None,
                 status: str = "running") -> dict[str, Any]:
    return {"type": "docker", "status": status, "restartPolicy": policy, "imagePullPolicy": "never",
            "settings": {"image": BASE, "createOptions": json.dumps({"Cmd": cmd, **(create or {})})}}


def test_limits_binds_restart_backoff_desired_status_and_an_image_that_cannot_be_pulled(
        engine_host: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host\n")
    hog = "import sys; print('allocating', flush=True); x = bytearray(256 * 1024 * 1024); print('survived')"
    manifest = _manifest(tmp_path / "m.json", {
        "hog": _base_module(["python", "-c", hog], "on-failure", {"HostConfig": {"Memory": 64 * 1024 * 1024}}),
        "reader": _base_module(["sh", "-c", "cat /data/hello.txt; touch /data/x 2>&1 || true; sleep 600"],
                               "never", {"HostConfig": {"Binds": [f"{data}:/data:ro"]}}),
        "idle": _base_module(["sleep", "600"], "always", status="stopped"),
        # like the scaffold's Microsoft sample image when no registry is reachable (a closed loopback port here)
        "sample": {"type": "docker", "status": "running", "restartPolicy": "always", "settings": {
            "image": f"127.0.0.1:{free_port()}/azureiotedge-simulated-temperature-sensor:1.0"}},
    })
    state = tmp_path / "state"

    async def main() -> None:
        config = DeviceConfig(state_dir=state, manifest=manifest, engine="docker",
                              engine_env={"DOCKER_HOST": engine_host},
                              backoff=BackoffPolicy(unit_secs=0.3, max_secs=1.0))
        async with Device(config) as dev:
            st = await _until("the hog killed and restarted twice",
                              lambda: (s := dev.agent.status()["hog"])["restartCount"] >= 2 and s)
            assert st["exitCode"] == 137  # SIGKILL by the engine's memory limit
            assert st["lastRestartTimeUtc"] is not None and st["lastExitTimeUtc"] is not None
            logs = await asyncio.to_thread(dev.agent.read_logs, "hog", 0, 1 << 20)
            assert logs.count(b"allocating") >= 2 and b"survived" not in logs
            reader_logs = await _until("the reader's output", lambda: (
                b := dev.agent.read_logs("reader", 0, 1 << 20)) and b"Read-only" in b and b)
            assert b"hello from the host" in reader_logs
            # what `edgegen device logs reader` and `edgegen device status` show, through the control API
            client = ControlClient(state)
            data, offset = await asyncio.to_thread(client.logs, "reader", 0)
            assert b"hello from the host" in data and offset == len(data)
            shown = await asyncio.to_thread(client.status)
            assert shown["engine"] == "docker" and shown["modules"]["hog"]["exitCode"] == 137
            status = dev.agent.status()
            assert status["reader"]["runtimeStatus"] == "running" and status["reader"]["lastStartTimeUtc"]
            assert status["idle"]["runtimeStatus"] == "stopped" and "containerId" not in status["idle"]
            assert status["sample"]["runtimeStatus"] == "failed"
            assert status["sample"]["statusDescription"].startswith("cannot pull 127.0.0.1:")
            names = {c["Names"][0].lstrip("/") for c in await asyncio.to_thread(
                dev.runtime.engine.containers, f"{DEVICE_LABEL}={device_label(state)}")}
            assert names == {"hog", "reader"}

    asyncio.run(main())
    with ContainerEngine.connect({"DOCKER_HOST": engine_host}) as engine:
        assert engine.containers(f"{DEVICE_LABEL}={device_label(state)}") == []
    assert b"allocating" in (state / "logs" / "hog.log").read_bytes()  # the removed container's log was kept


@pytest.mark.e2e
def test_up_with_the_docker_engine_builds_pushes_deploys_and_streams(engine_host: str, registry: RegistryInfo,
                                                                      tmp_path: Path) -> None:
    sol = engine_solution(tmp_path, registry, message_count=0, interval=0.3, scoring_port=free_port())
    env = {**os.environ, "DOCKER_HOST": engine_host, "PYTHONUNBUFFERED": "1"}
    env.pop("IOTHUB_CONNECTION_STRING", None)
    proc = subprocess.run([sys.executable, "-m", "edgegen", "up", "--engine", "docker", "--plain", "--duration", "20",
                           "--state-dir", str(sol / ".state")], cwd=sol, env=env, capture_output=True, text=True,
                          timeout=400, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"modules run as containers on {engine_host} (--engine docker)" in out
    for name in ("sensor", "inference", "monitor"):
        assert f"built and pushed {registry.host}/{name}:0.1.0-amd64" in out
    results = [line for line in out.splitlines() if "edgegen-demo/monitor:" in line and '"anomaly"' in line]
    assert len(results) >= 5, out
    assert "modules: inference=running, monitor=running, sensor=running" in out
    with ContainerEngine.connect({"DOCKER_HOST": engine_host}) as engine:
        assert engine.containers(OWNER_LABEL) == []  # every container the device started is gone
