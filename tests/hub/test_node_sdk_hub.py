"""The hub stand-in's device side driven by the Node.js SDKs (azure-iot-device 1.18.4 + azure-iot-device-mqtt
1.16.4, pinned in .peers/node): a device client from the connection string the stand-in prints (telemetry with
properties, twin get/patch/desired events, a direct method from azure-iot-hub) and an edge module connecting
straight to the hub (``sendOutputEvent``'s topic ends with ``/``, methods from the service)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, Twin, TwinProperties

from edgegen.common.sas import generate_key
from edgegen.hub.client import HubClient
from edgegen.hub.connection import HubTarget
from tests.local.device.harness import wait_for
from tests.support.nodeclient import NodeClient, require_node_sdk

pytestmark = pytest.mark.integration


@pytest.fixture
def standin(hub_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    require_node_sdk()
    running, _ = hub_factory(state_dir=tmp_path / "hub", mqtt=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    return running


def _stored(running: Any, device: str) -> list[Any]:
    return [m for m in running.call(running.standin.backend.messages) if m.device_id == device]


def test_node_device_client_on_the_stand_in(standin: Any, tmp_path: Path) -> None:
    info = standin.info
    client = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "stand-in", tmp_path / "hub"))
    identity = client.create_device("nodedev")
    rm = IoTHubRegistryManager.from_connection_string(info.connection_string)
    with NodeClient("device-cs", {"CONNECTION_STRING": identity.connection_string, "CA_FILE": info.ca_file}) as dev:
        dev.call("sendEvent", message={"data": {"t": 21.5}, "messageId": "n1", "contentType": "application/json",
                                       "contentEncoding": "utf-8", "properties": {"site": "a/b", "odd": "50% & =x"}})
        stored = wait_for(lambda: _stored(standin, "nodedev"), 10, "the device's message")[0]
        assert json.loads(stored.body) == {"t": 21.5}
        assert stored.properties == {"site": "a/b", "odd": "50% & =x"}
        assert (stored.system_properties["message_id"], stored.system_properties["content_type"],
                stored.system_properties["content_encoding"]) == ("n1", "application/json", "utf-8")

        dev.call("getTwin")
        dev.call("patchReported", patch={"fw": "1.2"})
        wait_for(lambda: rm.get_twin("nodedev").properties.reported.get("fw") == "1.2", 10, "reported fw")
        etag = rm.get_twin("nodedev").etag
        rm.update_twin("nodedev", Twin(properties=TwinProperties(desired={"rate": 3})), etag)
        assert dev.event("desired", where=lambda e: e["patch"].get("rate") == 3)["patch"]["$version"] >= 2

        dev.call("onMethod", name="reboot")
        result = wait_for(lambda: _try_device_method(rm, "nodedev", "reboot"), 15, "the device's method handler")
        assert (result.status, result.payload) == (200, {"echo": {"now": True}, "by": "device-cs"})


def _try_device_method(rm: IoTHubRegistryManager, device: str, name: str) -> Any:
    from msrest.exceptions import HttpOperationError

    try:
        return rm.invoke_device_method(device, CloudToDeviceMethod(method_name=name, payload={"now": True},
                                                                   response_timeout_in_seconds=5))
    except HttpOperationError as exc:
        assert exc.response.status_code == 404  # not subscribed yet
        return None


def test_node_module_client_straight_to_the_hub(standin: Any, tmp_path: Path) -> None:
    info = standin.info
    client = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "stand-in", tmp_path / "hub"))
    client.create_device("nodeedge", edge=True)
    rm = IoTHubRegistryManager.from_connection_string(info.connection_string)
    key = generate_key()
    rm.create_module_with_sas("nodeedge", "filter", "", key, generate_key())
    cs = f"HostName={info.address};DeviceId=nodeedge;ModuleId=filter;SharedAccessKey={key}"
    with NodeClient("module-cs", {"CONNECTION_STRING": cs, "CA_FILE": info.ca_file}) as mod:
        mod.call("sendOutputEvent", output="alerts", message={
            "data": {"level": 3}, "messageId": "o1", "contentType": "application/json", "contentEncoding": "utf-8",
            "properties": {"severity": "high"}})
        stored = wait_for(lambda: _stored(standin, "nodeedge"), 10, "the module's message")[0]
        assert stored.module_id == "filter" and json.loads(stored.body) == {"level": 3}
        assert stored.properties == {"severity": "high"}  # not 'high/': the bag's trailing '/' is the topic's
        assert stored.system_properties["content_encoding"] == "utf-8"
        assert stored.system_properties["iothub-connection-module-id"] == "filter"

        mod.call("onMethod", name="configure")

        def answered() -> Any:
            from msrest.exceptions import HttpOperationError

            try:
                return rm.invoke_device_module_method("nodeedge", "filter", CloudToDeviceMethod(
                    method_name="configure", payload=[1, 2], response_timeout_in_seconds=5))
            except HttpOperationError as exc:
                assert exc.response.status_code == 404
                return None

        result = wait_for(answered, 15, "the module's method handler")
        assert (result.status, result.payload) == (200, {"echo": [1, 2], "by": "module-cs"})
