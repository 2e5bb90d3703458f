"""Direct methods from the service to an edgegen device: azure-iot-hub and the Azure CLI → the stand-in → the
device's hub link → the local edge hub → a module (the repo's sensor, started by the agent) and ``$edgeAgent``
(ping, RestartModule). Statuses and error bodies as IoT Hub answers them (404103 not online, 504101 no answer
in time)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod
from msrest.exceptions import HttpOperationError

from edgegen.hub.client import HubClient
from edgegen.hub.connection import HubTarget
from edgegen.hublink.edgedevice import HubDeviceOptions, run_device_on_hub
from edgegen.local.device import module_credentials
from tests.hub.conftest import HubThread
from tests.local.device.harness import solution_manifest, wait_for
from tests.support.loopthread import LoopThread
from tests.support.net import free_loopback_address
from tests.support.peers import Az, az_env, ca_bundle, skip_reason_az
from tests.support.waits import DEVICE_START, DEVICE_STOP

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = "edge1"


def _content(repo: Path) -> dict[str, Any]:
    m = copy.deepcopy(solution_manifest(repo))["modulesContent"]
    mods = m["$edgeAgent"]["properties.desired"]["modules"]
    sensor = mods["sensor"]
    sensor["env"].update({"SEND_INTERVAL": {"value": "3600"}, "MESSAGE_COUNT": {"value": "1"}})
    quiet = {"type": "docker", "status": "stopped", "restartPolicy": "never",
             "settings": {"image": sensor["settings"]["image"], "createOptions": "{}"}}
    m["$edgeAgent"]["properties.desired"]["modules"] = {"sensor": sensor, "quiet": quiet}
    m["$edgeHub"]["properties.desired"]["routes"] = {"up": "FROM /messages/* INTO $upstream"}
    for key in ("monitor", "inference"):
        m.pop(key, None)
    return m


class EdgeDeviceThread:
    """``run_device_on_hub`` on its own loop (tests.support.loopthread), as ``edgegen hub device run`` runs it."""

    def __init__(self, options: HubDeviceOptions) -> None:
        self.options = options
        self._loop_thread = LoopThread("edge-device")
        self.loop = self._loop_thread.loop
        self.device: Any = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._main: Future[None] | None = None

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            await run_device_on_hub(self.options, self._stop, on_ready=lambda d: setattr(self, "device", d))
        except BaseException as exc:  # surfaced to the test
            self.error = exc

    def __enter__(self) -> EdgeDeviceThread:
        self._loop_thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._run(), self.loop)
        wait_for(lambda: self.device is not None or self.error is not None, DEVICE_START, "the edge device to start")
        if self.error is not None:
            self._loop_thread.stop()
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._stop is not None:
                self.loop.call_soon_threadsafe(self._stop.set)
            if self._main is not None:
                wait_futures([self._main], DEVICE_STOP)
        finally:
            self._loop_thread.stop()

    def call(self, fn: Any) -> Any:
        return self._loop_thread.call(fn, timeout=10)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, repo_root: Path,
         venv_cache: Path) -> Iterator[tuple[IoTHubRegistryManager, EdgeDeviceThread, Any]]:
    """One hub and one edge device for the module's tests (starting them is most of their time); every test
    waits for what it needs (a module's methods on the hub), whatever the ones before it restarted."""
    tmp = tmp_path_factory.mktemp("edge-methods")
    hub = HubThread(tmp / "hub", free_loopback_address(), None, mqtt=True)
    try:
        info = hub.start().info
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("REQUESTS_CA_BUNDLE", info.ca_file)
            client = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "stand-in", tmp / "hub"))
            identity = client.create_device(DEVICE, edge=True)
            client.deploy_to_device(DEVICE, _content(repo_root))
            options = HubDeviceOptions(identity.connection_string, tmp / "device", repo_root, ca_file=info.ca_file,
                                       rest_host=info.host_name, venv_dir=venv_cache)
            with EdgeDeviceThread(options) as dev:
                yield IoTHubRegistryManager.from_connection_string(info.connection_string), dev, info
    finally:
        hub.stop()


def _invoke(rm: IoTHubRegistryManager, module: str, name: str, payload: Any = None, timeout: int = 10) -> Any:
    return rm.invoke_device_module_method(DEVICE, module, CloudToDeviceMethod(
        method_name=name, payload=payload, response_timeout_in_seconds=timeout))


def _error(exc: HttpOperationError) -> tuple[int, dict[str, Any]]:
    body = exc.response.json()
    return exc.response.status_code, json.loads(body["Message"])


def test_service_to_module_and_edge_agent(edge) -> None:
    rm, dev, _ = edge

    def reset_answers() -> Any:
        try:
            return _invoke(rm, "sensor", "reset", {})
        except HttpOperationError as exc:
            assert _error(exc)[0] == 404  # the sensor has not enabled methods on the hub yet
            return None

    result = wait_for(reset_answers, 60, "the sensor's methods to reach the hub", interval=0.5)
    assert result.status == 200 and result.payload["reset"] is True

    ping = _invoke(rm, "$edgeAgent", "ping")
    assert (ping.status, ping.payload) == (200, None)
    unknown = _invoke(rm, "$edgeAgent", "UploadSupportBundle", {})
    assert unknown.status == 400 and "supported commands are - ping,RestartModule" in unknown.payload["message"]

    before = dev.call(lambda: dev.device.agent.pid("sensor"))
    restart = _invoke(rm, "$edgeAgent", "RestartModule", {"schemaVersion": "1.0", "id": "sensor"})
    assert (restart.status, restart.payload) == (200, None)
    after = dev.call(lambda: dev.device.agent.pid("sensor"))
    assert after is not None and after != before
    result = wait_for(reset_answers, 60, "the restarted sensor's methods", interval=0.5)
    assert result.status == 200 and result.payload["previousSent"] == 1  # a fresh process sent its one message

    # the local edge hub restarts: the sensor reconnects to its persistent session without subscribing again,
    # and its hub connection takes method calls again all the same
    restart = _invoke(rm, "$edgeAgent", "RestartModule", {"schemaVersion": "1.0", "id": "edgeHub"})
    assert restart.status == 200
    assert wait_for(reset_answers, 60, "the sensor's methods after an edge hub restart", interval=0.5).status == 200


def test_azure_cli_to_module_and_edge_agent(edge, tmp_path: Path) -> None:
    """The same through ``az iot hub invoke-module-method`` (which sends its timeouts as strings)."""
    if (reason := skip_reason_az()) is not None:
        pytest.skip(reason)
    rm, dev, info = edge
    config = tmp_path / "az-config"
    config.mkdir(mode=0o700)
    run = Az(info.connection_string, az_env(config, ca_bundle(info.ca_file, tmp_path)), tmp_path)

    def sensor_ready() -> bool:
        try:
            return _invoke(rm, "sensor", "reset", {}).status == 200
        except HttpOperationError:
            return False

    wait_for(sensor_ready, 60, "the sensor's methods to reach the hub", interval=0.5)
    result = run("iot", "hub", "invoke-module-method", "-d", DEVICE, "-m", "sensor", "--mn", "reset", "--mp", "{}")
    assert result["status"] == 200 and result["payload"]["reset"] is True
    assert run("iot", "hub", "invoke-module-method", "-d", DEVICE, "-m", "$edgeAgent", "--mn", "ping") == {
        "status": 200, "payload": None}
    before = dev.call(lambda: dev.device.agent.pid("sensor"))
    restart = run("iot", "hub", "invoke-module-method", "-d", DEVICE, "-m", "$edgeAgent", "--mn", "RestartModule",
                  "--mp", '{"schemaVersion": "1.0", "id": "sensor"}')
    assert restart == {"status": 200, "payload": None}
    after = dev.call(lambda: dev.device.agent.pid("sensor"))
    assert after is not None and after != before
    unknown = run("iot", "hub", "invoke-module-method", "-d", DEVICE, "-m", "$edgeAgent", "--mn", "RestartModule",
                  "--mp", '{"schemaVersion": "1.0", "id": "nobody"}')
    assert unknown == {"status": 500, "payload": {"message": "Module nobody not found in the current environment"}}
    err = run("iot", "hub", "invoke-module-method", "-d", DEVICE, "-m", "ghost", "--mn", "ping", ok=False)
    assert "ErrorCode:ModuleNotFound" in err


def test_not_online_and_timeout_bodies(edge) -> None:
    from azure.iot.device import IoTHubModuleClient

    rm, dev, _ = edge
    with pytest.raises(HttpOperationError) as exc:
        _invoke(rm, "quiet", "hello")
    status, inner = _error(exc.value)
    assert (status, inner["errorCode"], inner["message"]) == (404, 404103, "Timed out waiting for device to connect.")
    assert exc.value.response.headers["iothub-errorcode"] == "DeviceNotOnline"

    cred = module_credentials(dev.options.state_dir, "quiet")
    quiet = IoTHubModuleClient.create_from_connection_string(
        cred["EdgeHubConnectionString"], server_verification_cert=Path(cred["EdgeModuleCACertificateFile"]).read_text())
    calls: list[str] = []
    try:
        quiet.connect()
        quiet.on_method_request_received = lambda request: calls.append(request.name)  # never answers

        def times_out() -> Any:
            try:
                _invoke(rm, "quiet", "hello", timeout=5)
            except HttpOperationError as err:
                return _error(err) if _error(err)[0] == 504 else None
            raise AssertionError("a method nobody answers returned")

        status, inner = wait_for(times_out, 60, "a 504 from the hub", interval=0.2)
        assert (inner["errorCode"], inner["message"]) == (504101, "Timed out waiting for the response from device.")
        assert "hello" in calls
    finally:
        quiet.shutdown()

    def not_online() -> bool:  # the module left: the hub link drops its subscription again
        try:
            _invoke(rm, "quiet", "hello", timeout=5)
        except HttpOperationError as err:
            return _error(err)[0] == 404
        return False

    wait_for(not_online, 30, "the hub to say 'not online' again")
