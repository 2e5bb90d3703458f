"""The local device end to end with the repo's solution: real module processes, real SDK, real edge hub.

sensor → inference → monitor → $upstream, every message accounted for; a killed module comes back; the monitor
stopped for 10 s gets everything it missed, in order; the edge hub restarted mid-stream loses no acknowledged
message.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from edgegen.local.agent import BackoffPolicy
from edgegen.local.device import DeviceConfig
from tests.local.device.harness import DeviceThread, fast_solution, wait_for, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _config(tmp_path: Path, repo: Path, venvs: Path, manifest: dict[str, Any]) -> DeviceConfig:
    return DeviceConfig(state_dir=tmp_path / "state", manifest=write_manifest(tmp_path / "deployment.json", manifest),
                        solution_dir=repo, share_site_packages=True, venv_dir=venvs,
                        backoff=BackoffPolicy(unit_secs=0.5, max_secs=2, stop_timeout=15), control_api=False)


def _from(events: list[dict[str, Any]], module: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"]["properties"]["application"].get("originModuleId") == module]


def _counters(dev: DeviceThread) -> tuple[int, dict[str, int], dict[str, Any]]:
    sensor = dev.reported("sensor").get("sensor", {})
    inference = dev.reported("inference").get("inference", {}).get("counters", {})
    monitor = dev.reported("monitor").get("monitor", {})
    return int(sensor.get("sent", -1)), inference, monitor


def _log(dev: DeviceThread, module: str) -> str:
    assert dev.device is not None
    path = dev.device.agent.log_path(module)
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def test_solution_pipeline_accounts_for_every_message_and_restarts_a_killed_module(
        tmp_path: Path, repo_root: Path, venv_cache: Path) -> None:
    n = 40
    manifest = fast_solution(repo_root, count=n, interval=0.05)
    with DeviceThread(_config(tmp_path, repo_root, venv_cache, manifest)) as dev:
        try:
            wait_for(lambda: len(_from(dev.upstream(), "inference")) >= n, 90, f"{n} scored messages upstream")

            def settled() -> bool:
                sent, inf, mon = _counters(dev)
                # counters arrive through twin reported properties, a snapshot each: wait until the
                # inference module's scored/failed counters have caught up with its received counter too
                return (sent == n and inf.get("received") == n
                        and inf.get("scored", 0) + inf.get("failed", 0) == n
                        and mon.get("forwarded") == len(dev.upstream()) and mon.get("pending") == 0)

            wait_for(settled, 30, "module counters to settle")
        except AssertionError:
            print({m: _log(dev, m) for m in ("sensor", "inference", "monitor")})
            raise
        sent, inf, mon = _counters(dev)
        events = dev.upstream()
        scored = _from(events, "inference")
        assert sent == n and inf["received"] == n
        assert inf["scored"] + inf["failed"] == n  # sent = scored + errors
        assert len(scored) == n and mon["forwarded"] == len(events)  # upstream count = monitor's forwarded count
        first = scored[0]["event"]
        assert first["origin"] == "edgegen-device" and first["module"] == "monitor"
        # the model the deployment pins, laid out by the agent, verified and reported by the module itself
        pinned = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["inference"]["env"][
            "EDGEGEN_MODELS"]["value"]
        name, version, digest = pinned.replace("@sha256:", ":").split(":")
        models = dev.reported("inference")["inference"]["models"]
        assert models == [{"name": name, "version": int(version), "sha256": digest, "verified": True,
                           "path": "sensor-anomaly"}]
        assert f"{name}:{version}" in json.dumps(first["payload"])  # modelVersion: the registry's name:version
        assert first["properties"]["application"]["originDeviceId"] == "edgegen-device"
        assert first["properties"]["system"]["connectionModuleId"] == "monitor"
        assert "score" in first["payload"] and "anomaly" in first["payload"]
        assert {e["event"]["properties"]["application"]["batchId"] for e in scored} == {
            dev.reported("sensor")["sensor"]["batchId"]}

        # kill a module: restartPolicy always brings it back with a higher restartCount
        assert dev.device is not None
        agent = dev.device.agent
        env = dict(kv.split("=", 1) for kv in Path(f"/proc/{dev.call(lambda: agent.pid('sensor'))}/environ")
                   .read_text().split("\0") if "=" in kv)
        assert env["IOTEDGE_MODULEID"] == "sensor" and env["IOTEDGE_WORKLOADURI"].startswith(
            f"http://{dev.device.address}:")
        assert env["IOTEDGE_GATEWAYHOSTNAME"] == dev.device.address and env["SEND_INTERVAL"] == "0.05"
        assert env["EDGEGEN_LISTEN_ADDRESS"] == "127.0.0.1"  # processes share the host's network: loopback only
        assert not [k for k, v in env.items() if "SharedAccessKey" in v or k == "EdgeHubConnectionString"]
        pid = dev.call(lambda: agent.pid("monitor"))
        assert pid
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: dev.call(lambda: agent.pid("monitor")) not in (None, pid), 20, "monitor restarted")
        st = dev.call(agent.status)["monitor"]
        assert st["restartCount"] == 1 and st["exitCode"] == -signal.SIGKILL and st["runtimeStatus"] == "running"
        reported = dev.reported("$edgeAgent")["modules"]["monitor"]
        assert reported["restartCount"] == 1 and reported["lastExitTimeUtc"]
        wait_for(lambda: "monitor" in dev.call(lambda: set(dev.device.hub.connected)), 30, "monitor reconnected")


def test_store_and_forward_in_order_and_edge_hub_restart_loses_nothing(
        tmp_path: Path, repo_root: Path, venv_cache: Path) -> None:
    n = 400
    manifest = fast_solution(repo_root, count=n, interval=0.05)
    with DeviceThread(_config(tmp_path, repo_root, venv_cache, manifest)) as dev:
        assert dev.device is not None
        device = dev.device
        wait_for(lambda: len(_from(dev.upstream(), "inference")) >= 5, 90, "first messages upstream")

        dev.run(lambda: device.agent.stop_module("monitor"), timeout=30)
        stopped_at = time.monotonic()
        wait_for(lambda: dev.call(device.router.backlog).get("monitor/scored", {}).get("pending", 0) > 20, 20,
                 "messages queued for the stopped monitor")
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped_at)))
        queued = dev.call(device.router.backlog)["monitor/scored"]["pending"]
        dev.run(lambda: device.agent.start_module("monitor"), timeout=30)

        time.sleep(1.0)
        received_before = _counters(dev)[1].get("received", 0)
        assert received_before < n - 20, "the sensor finished before the edge hub restart; raise n"
        restart_iso = _iso(time.time() - 1.0)
        dev.run(lambda: device.restart_edge_hub(down_secs=1.0), timeout=30)  # mid-stream

        def unique_ids() -> set[str]:
            return {e["event"]["properties"]["system"].get("correlationId")
                    for e in _from(dev.upstream(), "inference")}

        # The monitor exits on SIGTERM; a message it had taken from the hub but not forwarded yet is its loss (it
        # logs the count in its final "stopped: {...}" line), not the edge hub's.
        lost_by_monitor = _stopped_pending(device.agent.log_path("monitor").read_text(errors="replace"))

        def done() -> bool:
            sent, inf, mon = _counters(dev)  # twin snapshots (0.5 s): wait for inference's to catch up too
            return (sent == n and len(unique_ids()) + lost_by_monitor >= n and mon.get("pending") == 0
                    and inf.get("received", 0) >= n)

        try:
            wait_for(done, 120, "every acknowledged message upstream")
        except AssertionError:
            full = {m: device.agent.log_path(m).read_text(errors="replace") for m in ("monitor", "inference")}
            print(_counters(dev), len(unique_ids()), lost_by_monitor, dev.call(device.router.backlog),
                  dev.call(lambda: device.router.counters.to_dict()),
                  [ln for ln in full["monitor"].splitlines() if "stopped" in ln or "ERROR" in ln or "Error" in ln],
                  {m: t.count("No input message inbox") for m, t in full.items()})
            raise
        sent, inf, _ = _counters(dev)
        scored = _from(dev.upstream(), "inference")
        assert queued > 20
        # No QoS 1 message lost: every message the edge hub acknowledged to the sensor reached $upstream.
        assert sent == n and n - lost_by_monitor <= len(unique_ids()) <= n and inf["received"] >= n
        assert lost_by_monitor <= 2
        # Order through the store: everything created before the edge hub restart (after it, the inference module's
        # own concurrent send retries may reorder what it sends; that is not the hub's doing).
        stamps = [e["event"]["payload"]["timeCreated"] for e in scored if isinstance(e["event"]["payload"], dict)]
        firsts = [t for t in dict.fromkeys(stamps) if t < restart_iso]  # a QoS 1 redelivery may repeat one
        assert len(firsts) > queued and firsts == sorted(firsts), "store-and-forward delivered out of order"
        assert dev.call(device.router.backlog)["monitor/scored"]["expired"] == 0


def _stopped_pending(log: str) -> int:
    import ast

    for line in log.splitlines():
        if "monitor: stopped: {" in line:
            return int(ast.literal_eval(line.split("stopped: ", 1)[1]).get("pending", 0))
    return 0


def test_route_ttl_expires_what_a_stopped_module_missed(tmp_path: Path, repo_root: Path, venv_cache: Path) -> None:
    n = 40
    manifest = fast_solution(repo_root, count=n, interval=0.05, route_ttl=2)  # inference → monitor lives 2 s
    with DeviceThread(_config(tmp_path, repo_root, venv_cache, manifest)) as dev:
        assert dev.device is not None
        device = dev.device
        wait_for(lambda: "monitor" in dev.call(lambda: set(device.hub.connected)), 60, "monitor connected")
        dev.run(lambda: device.agent.stop_module("monitor"), timeout=30)
        before = len(_from(dev.upstream(), "inference"))
        wait_for(lambda: _counters(dev)[1].get("received", 0) >= n, 60, "inference got every reading")
        wait_for(lambda: _counters(dev)[1].get("scored", 0) + _counters(dev)[1].get("failed", 0) >= n, 30,
                 "inference sent every result")
        queued = dev.call(device.router.backlog)["monitor/scored"]
        # the router's 1 s sweeper may already have expired the oldest (TTL 2 s) while the counters settled
        assert queued["pending"] + queued["expired"] + before >= n - 2  # all but what the monitor took first
        time.sleep(2.5)  # past the route's timeToLiveSecs
        dev.run(lambda: device.agent.start_module("monitor"), timeout=30)
        wait_for(lambda: dev.call(device.router.backlog)["monitor/scored"]["pending"] == 0, 30, "queue emptied")
        stats = dev.call(device.router.backlog)["monitor/scored"]
        assert stats["expired"] == queued["pending"] + queued["expired"] and stats["expired"] > 0
        assert stats["delivered"] == queued["delivered"]  # nothing queued was delivered after the restart
        time.sleep(1.0)
        assert len(_from(dev.upstream(), "inference")) <= before + 1  # nothing expired was delivered


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
