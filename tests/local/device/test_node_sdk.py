"""The local edge hub driven by the Node.js SDKs (azure-iot-device 1.18.4 + azure-iot-device-mqtt 1.16.4, pinned in
.peers/node), each client a ``ModuleClient.fromEnvironment`` over the device's workload API, as a Node module runs:
outputs with and without properties through routes on ``$body`` and properties, inputs, twins, methods both ways
(Node → Node, Node → the repo's Python sensor, Python SDK → Node, control API → Node)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgegen.local.agent import BackoffPolicy
from edgegen.local.control import ControlClient
from edgegen.local.device import DeviceConfig
from tests.local.device.harness import DeviceThread, module_environment, solution_manifest, wait_for, write_manifest
from tests.support.nodeclient import NodeClient, require_node_sdk

pytestmark = pytest.mark.integration

DEVICE = "edgegen-device"
ROUTES = {
    "hot": "FROM /messages/modules/a/outputs/out1 WHERE $body.temp > 20 AND kind = 'hot' "
           'INTO BrokeredEndpoint("/modules/b/inputs/hot")',
    "plain": 'FROM /messages/modules/a/outputs/out2 INTO BrokeredEndpoint("/modules/b/inputs/plain")',
    "up": "FROM /messages/* INTO $upstream",
}


def _manifest(repo: Path, threshold: int) -> dict[str, Any]:
    m = copy.deepcopy(solution_manifest(repo))
    mc = m["modulesContent"]
    sensor = mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"]
    sensor["env"].update({"SEND_INTERVAL": {"value": "3600"}, "MESSAGE_COUNT": {"value": "1"}})
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never",
               "settings": {"image": sensor["settings"]["image"], "createOptions": "{}"}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {
        "sensor": sensor, **{name: copy.deepcopy(stopped) for name in ("a", "b", "py")}}
    mc["$edgeHub"]["properties.desired"]["routes"] = ROUTES
    for key in ("monitor", "inference"):
        mc.pop(key, None)
    mc["a"] = {"properties.desired": {"threshold": threshold}}
    return m


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, repo_root: Path, venv_cache: Path) -> Iterator[DeviceThread]:
    require_node_sdk()
    if os.geteuid() != 0:
        pytest.skip("ModuleClient.invokeMethod calls port 443 of the gateway address: these tests need root")
    tmp = tmp_path_factory.mktemp("node")
    manifest = write_manifest(tmp / "deployment.json", _manifest(repo_root, 1))
    config = DeviceConfig(state_dir=tmp / "state", manifest=manifest, solution_dir=repo_root,
                          share_site_packages=True, venv_dir=venv_cache, backoff=BackoffPolicy(unit_secs=0.5),
                          watch_interval=0.3)
    with DeviceThread(config) as dev:
        wait_for(lambda: "sensor" in dev.call(lambda: set(dev.device.hub.connected)), 60,  # type: ignore[union-attr]
                 "sensor connected")
        yield dev


def node_module(dev: DeviceThread, module: str) -> NodeClient:
    assert dev.device is not None
    return NodeClient("module-env", module_environment(dev.device, module))


def test_outputs_routes_and_inputs(device: DeviceThread) -> None:
    with node_module(device, "a") as a, node_module(device, "b") as b:
        b.call("enableInputs")
        json_msg = {"contentType": "application/json", "contentEncoding": "utf-8"}
        a.call("sendOutputEvent", output="out1", message={"data": {"temp": 25}, "messageId": "hot-1",
                                                          "properties": {"kind": "hot"}, **json_msg})
        a.call("sendOutputEvent", output="out1", message={"data": {"temp": 10}, "messageId": "cool-1",
                                                          "properties": {"kind": "hot"}, **json_msg})
        a.call("sendOutputEvent", output="out1", message={"data": {"temp": 30}, "messageId": "cold-1",
                                                          "properties": {"kind": "cold"}, **json_msg})
        a.call("sendOutputEvent", output="out2", message={"data": "no properties at all"})
        a.call("sendEvent", message={"data": "no output", "properties": {"k": "v/w&x=y"}})
        a.call("sendOutputEvent", output="out2", message={"data": "last", "messageId": "marker"})

        hot = b.event("input", where=lambda e: e["input"] == "hot")["message"]
        assert hot["data"] == '{"temp":25}' and hot["messageId"] == "hot-1"
        assert (hot["contentType"], hot["contentEncoding"]) == ("application/json", "utf-8")
        assert hot["properties"] == {"kind": "hot", "$.cdid": DEVICE, "$.cmid": "a"}
        plain = b.event("input", where=lambda e: e["input"] == "plain")["message"]
        assert plain["data"] == "no properties at all" and plain["properties"] == {"$.cdid": DEVICE, "$.cmid": "a"}
        assert b.event("input", where=lambda e: e["input"] == "plain")["message"]["messageId"] == "marker"
        assert b.drained("input") == []  # the cool and the cold one matched no route to b

    def upstream_ids() -> dict[str, dict[str, Any]] | None:
        events = {e["event"]["properties"]["system"].get("messageId") or e["event"]["payload"]: e["event"]
                  for e in device.upstream() if e["event"]["module"] == "a"}
        return events if {"hot-1", "cool-1", "cold-1", "marker", "no output"} <= set(events) else None

    up = wait_for(upstream_ids, 15, "a's messages upstream")
    system = up["hot-1"]["properties"]["system"]
    assert (system["contentEncoding"], system["contentType"], system["outputName"]) == (
        "utf-8", "application/json", "out1")
    assert up["hot-1"]["payload"] == {"temp": 25}
    assert up["no output"]["properties"]["application"] == {"k": "v/w&x=y"}
    assert "outputName" not in up["no output"]["properties"]["system"]


def test_twin_get_patch_and_desired_events(device: DeviceThread, repo_root: Path) -> None:
    with node_module(device, "a") as a:
        twin = a.call("getTwin")
        assert twin["desired"]["threshold"] == 1 and "$version" in twin["desired"]
        a.call("patchReported", patch={"seen": {"threshold": 1}, "sdk": "node"})
        wait_for(lambda: device.reported("a").get("sdk") == "node", 10, "reported properties")
        assert device.reported("a")["seen"] == {"threshold": 1}
        write_manifest(Path(device.config.manifest), _manifest(repo_root, 2))  # type: ignore[arg-type]
        try:
            patch = a.event("desired", where=lambda e: e["patch"].get("threshold") == 2, timeout=20)["patch"]
            assert patch["$version"] > twin["desired"]["$version"]
        finally:
            write_manifest(Path(device.config.manifest), _manifest(repo_root, 1))  # type: ignore[arg-type]


def test_methods_both_ways(device: DeviceThread, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.iot.device import IoTHubModuleClient

    with node_module(device, "a") as a, node_module(device, "b") as b:
        b.call("onMethod", name="echo")
        params = {"methodName": "echo", "payload": {"x": [1, "2"]}, "responseTimeoutInSeconds": 10,
                  "connectTimeoutInSeconds": 0}
        assert a.call("invokeMethod", deviceId=DEVICE, moduleId="b", params=params) == {
            "status": 200, "payload": {"echo": {"x": [1, "2"]}, "by": "module-env"}}
        # Node -> the repo's Python sensor, started by the agent: connected (the fixture waits for that) does not
        # mean its method handler is subscribed yet, so the edge hub waits for that, as IoT Hub does
        reset = a.call("invokeMethod", deviceId=DEVICE, moduleId="sensor",
                       params={"methodName": "reset", "payload": {}, "responseTimeoutInSeconds": 10,
                               "connectTimeoutInSeconds": 60}, timeout=90)
        assert reset["status"] == 200 and reset["payload"]["reset"] is True
        # Node -> a module that is not there: edgeHub's 404
        missing = a.call("invokeMethod", deviceId=DEVICE, moduleId="py", params=params)
        assert missing["statusCode"] == 404 and json.loads(missing["body"]) == {
            "message": f"Client {DEVICE}/py not found"}
        # the control API (what 'edgegen device invoke' uses) -> Node
        assert ControlClient(device.config.state_dir).invoke("b", "echo", {"y": 2}) == {
            "status": 200, "payload": {"echo": {"y": 2}, "by": "module-env"}}
        # the Python SDK's invoke_method, from a workload-API environment -> Node
        for name, value in module_environment(device.device, "py").items():
            monkeypatch.setenv(name, value)
        py = IoTHubModuleClient.create_from_edge_environment()
        try:
            result = py.invoke_method({"methodName": "echo", "payload": "from python", "responseTimeoutInSeconds": 10},
                                      DEVICE, "b")
        finally:
            py.shutdown()
        assert result == {"status": 200, "payload": {"echo": "from python", "by": "module-env"}}
        assert [e["payload"] for e in b.drained("method")] == [{"x": [1, "2"]}, {"y": 2}, "from python"]
