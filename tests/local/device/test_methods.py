"""Direct methods on a local device, with the real SDK: module → module through edgeHub's HTTPS endpoint on port
443 of the gateway address (the Python SDK's ``invoke_method`` from a workload-API environment), the endpoint's
refusals and timeouts as edgeHub answers them, and ``$edgeAgent`` ping / RestartModule through the control API."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from edgegen.common.sas import generate_sas_token
from edgegen.local.agent import BackoffPolicy
from edgegen.local.control import ControlClient
from edgegen.local.device import DeviceConfig, module_credentials
from tests.local.device.harness import DeviceThread, module_environment, solution_manifest, wait_for, write_manifest

pytestmark = pytest.mark.integration

DEVICE = "edgegen-device"


def _manifest(repo: Path) -> dict[str, Any]:
    """The repo's sensor (a real module with a ``reset`` method) running and idle, plus stopped modules a, b, b2
    whose identities the test's own SDK clients use."""
    m = copy.deepcopy(solution_manifest(repo))
    mc = m["modulesContent"]
    mods = mc["$edgeAgent"]["properties.desired"]["modules"]
    sensor = mods["sensor"]
    sensor["env"].update({"SEND_INTERVAL": {"value": "3600"}, "MESSAGE_COUNT": {"value": "1"}})
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never",
               "settings": {"image": sensor["settings"]["image"], "createOptions": "{}"}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"sensor": sensor, "a": stopped, "b": copy.deepcopy(stopped),
                                                         "b2": copy.deepcopy(stopped)}
    mc["$edgeHub"]["properties.desired"]["routes"] = {"up": "FROM /messages/* INTO $upstream"}
    for key in ("monitor", "inference"):
        mc.pop(key, None)
    return m


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, repo_root: Path, venv_cache: Path) -> Iterator[DeviceThread]:
    if os.geteuid() != 0:
        pytest.skip("edgeHub's HTTPS endpoint is on port 443 of the gateway address: these tests need root")
    tmp = tmp_path_factory.mktemp("methods")
    manifest = write_manifest(tmp / "deployment.json", _manifest(repo_root))
    config = DeviceConfig(state_dir=tmp / "state", manifest=manifest, solution_dir=repo_root,
                          share_site_packages=True, venv_dir=venv_cache, backoff=BackoffPolicy(unit_secs=0.5),
                          watch_interval=0.3)
    with DeviceThread(config) as dev:
        assert dev.device is not None and dev.device.https is not None
        wait_for(lambda: "sensor" in dev.call(lambda: set(dev.device.hub.connected)), 60, "sensor connected")
        yield dev


def _sdk_client(cs: str, ca: str) -> Any:
    from azure.iot.device import IoTHubModuleClient

    return IoTHubModuleClient.create_from_connection_string(cs, server_verification_cert=ca, connection_retry=False)


class Echo:
    """A module (the test's own SDK client) whose methods echo their payload; ``silent`` never answers."""

    def __init__(self, dev: DeviceThread, module: str, silent: bool = False) -> None:
        cred = module_credentials(dev.config.state_dir, module)
        ca = Path(cred["EdgeModuleCACertificateFile"]).read_text()
        self.client = _sdk_client(cred["EdgeHubConnectionString"], ca)
        self.silent = silent
        self.calls: list[tuple[str, Any]] = []

    def __enter__(self) -> Echo:
        self.client.connect()
        self.client.on_method_request_received = self.on_method
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.shutdown()

    def on_method(self, request: Any) -> None:
        from azure.iot.device import MethodResponse

        self.calls.append((request.name, request.payload))
        if not self.silent:
            self.client.send_method_response(
                MethodResponse.create_from_method_request(request, 201, {"echo": request.payload}))


@pytest.fixture
def caller(device: DeviceThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Module a as a real module runs: IoTHubModuleClient.create_from_edge_environment() with the workload API."""
    from azure.iot.device import IoTHubModuleClient

    dev = device.device
    assert dev is not None
    for name, value in module_environment(dev, "a").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost," + dev.address)
    client = IoTHubModuleClient.create_from_edge_environment()
    yield client
    client.shutdown()


def test_module_to_module_with_the_python_sdk(device: DeviceThread, caller: Any) -> None:
    with Echo(device, "b") as b:
        result = caller.invoke_method({"methodName": "hello", "payload": {"n": [1, "two"]},
                                       "responseTimeoutInSeconds": 10}, DEVICE, "b")
        assert result == {"status": 201, "payload": {"echo": {"n": [1, "two"]}}}
        assert b.calls == [("hello", {"n": [1, "two"]})]
    # a user module started by the agent: the repo's sensor, method 'reset'
    result = caller.invoke_method({"methodName": "reset", "payload": {}, "responseTimeoutInSeconds": 10}, DEVICE,
                                  "sensor")
    assert result["status"] == 200 and result["payload"]["reset"] is True


class Endpoint:
    """Raw HTTPS calls to the endpoint, signed like the SDK signs them (to see statuses and bodies exactly)."""

    def __init__(self, dev: DeviceThread) -> None:
        assert dev.device is not None
        self.dev = dev.device
        self.base = f"https://{self.dev.address}"
        self.ca = str(self.dev.ca_file)

    def token(self, module: str, key: str | None = None) -> str:
        known = self.dev.identities.get(module)
        assert known is not None
        return generate_sas_token(f"{self.dev.config.hub_hostname}/devices/{DEVICE}/modules/{module}",
                                  key or known.key)

    def call(self, target: str, body: Any, *, actor: str | None = f"{DEVICE}/a", token: str | None = None,
             timeout: float = 30) -> requests.Response:
        headers = {"Content-Type": "application/json", "Authorization": token or self.token("a")}
        if actor is not None:
            headers["x-ms-edge-moduleId"] = actor
        return requests.post(f"{self.base}/twins/{DEVICE}/modules/{target}/methods?api-version=2020-09-30",
                             json=body, headers=headers, verify=self.ca, timeout=timeout,
                             proxies={"https": "", "http": ""})


def test_endpoint_answers_like_edgehub(device: DeviceThread) -> None:
    ep = Endpoint(device)
    with Echo(device, "b"):
        ok = ep.call("b", {"methodName": "x", "payload": "text"})
        assert (ok.status_code, ok.json()) == (200, {"status": 201, "payload": {"echo": "text"}})
        for body in ({"payload": 1}, {"methodName": ""}, {"methodName": "x" * 101},
                     {"methodName": "x", "responseTimeoutInSeconds": 4},
                     {"methodName": "x", "responseTimeoutInSeconds": 301},
                     {"methodName": "x", "connectTimeoutInSeconds": -1}, [1, 2]):
            refused = ep.call("b", body)
            assert refused.status_code == 400, body
        assert ep.call("b", {"methodName": "x"}, actor=None).json() == {
            "message": "Invalid header value for x-ms-edge-moduleId"}
        other = ep.call("b", {"methodName": "x"}, actor="otherdevice/a")
        assert (other.status_code, other.json()["message"]) == (
            401, "Only modules on the same device can invoke DirectMethods")
        forged = ep.call("b", {"methodName": "x"}, token=ep.token("b"))  # b's token, claiming to be a
        assert forged.status_code == 401
    gone = ep.call("b", {"methodName": "x"})
    assert (gone.status_code, gone.json()) == (404, {"message": f"Client {DEVICE}/b not found"})
    assert ep.call("nosuchmodule", {"methodName": "x"}).status_code == 404


@pytest.mark.slow
def test_timeouts_wait_for_the_target_then_for_its_answer(device: DeviceThread) -> None:
    ep = Endpoint(device)
    gateway = device.device.gateway  # type: ignore[union-attr]
    results: list[requests.Response] = []
    call = threading.Thread(target=lambda: results.append(
        ep.call("b2", {"methodName": "late", "connectTimeoutInSeconds": 30, "responseTimeoutInSeconds": 10})))
    call.start()
    wait_for(lambda: device.call(lambda: f"{DEVICE}/b2" in gateway._method_waiters), 10, "the call to wait")
    with Echo(device, "b2") as b2:  # connects and subscribes while the call waits
        call.join(30)
        assert results and (results[0].status_code, results[0].json()["status"]) == (200, 201)
        assert b2.calls == [("late", None)]
    with Echo(device, "b", silent=True):
        slow = ep.call("b", {"methodName": "never", "responseTimeoutInSeconds": 5})
        assert slow.status_code == 504
        assert slow.json()["message"].startswith("Timed out waiting for device to respond to method request ")


def test_edge_agent_ping_and_restart_module(device: DeviceThread) -> None:
    control = ControlClient(device.config.state_dir)
    assert control.invoke("$edgeAgent", "ping", None) == {"status": 200, "payload": None}
    assert control.invoke("$edgeAgent", "PING", None)["status"] == 200  # edgeAgent ignores case
    unknown = control.invoke("$edgeAgent", "GetModuleLogs", {})
    assert unknown == {"status": 400, "payload": {
        "message": "Command 'GetModuleLogs' not found. The supported commands are - ping,RestartModule"}}
    assert control.invoke("$edgeAgent", "RestartModule", {"schemaVersion": "1.0", "id": "ghost"}) == {
        "status": 500, "payload": {"message": "Module ghost not found in the current environment"}}
    assert control.invoke("$edgeAgent", "RestartModule", {"schemaVersion": "1.0"})["status"] == 400
    before = device.call(lambda: device.device.agent.pid("sensor"))  # type: ignore[union-attr]
    assert before is not None
    restarted = control.invoke("$edgeAgent", "RestartModule", {"schemaVersion": "1.0", "id": "sensor"})
    assert restarted == {"status": 200, "payload": None}
    after = device.call(lambda: device.device.agent.pid("sensor"))  # type: ignore[union-attr]
    assert after is not None and after != before
