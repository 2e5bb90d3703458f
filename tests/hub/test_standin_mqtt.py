"""The stand-in's device side with the real azure-iot-device SDK, paho, and the monitor on the live feed."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from azure.iot.device import IoTHubModuleClient, Message, MethodResponse
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.hub.client import HubClient
from edgegen.hub.connection import resolve_hub
from edgegen.hub.monitor import LocalFeed, MonitorFilter, format_event
from tests.support.cli import CliRunner

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"


def manifest() -> dict:
    return json.loads((DATA / "deployment.json").read_text())["modulesContent"]


@pytest.fixture
def edge(hub_factory, tmp_path, monkeypatch):
    running, thread = hub_factory(state_dir=tmp_path / "state", mqtt=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    target = resolve_hub(None, state_dir=tmp_path / "state", environ={})
    client = HubClient(target)
    identity = client.create_device("edge1", edge=True)
    client.deploy_to_device("edge1", manifest())
    return running, thread, target, client, identity


def module_key(running, device: str, module: str) -> str:
    """The module's own key; its identity is made first when missing, as edgeAgent does before starting it."""
    return running.ensure_module(device, module)["authentication"]["symmetricKey"]["primaryKey"]


def module_client(running, identity, module: str) -> IoTHubModuleClient:
    """A module signing with its own key (IoT Hub, and the stand-in, refuse the device's key for a module)."""
    cs = (f"HostName={running.info.address};DeviceId={identity.device_id};ModuleId={module};"
          f"SharedAccessKey={module_key(running, identity.device_id, module)}")
    mc = IoTHubModuleClient.create_from_connection_string(
        cs, server_verification_cert=Path(running.info.ca_file).read_text())
    mc.connect()
    return mc


def send(mc: IoTHubModuleClient, n: int, prefix: str = "m") -> None:
    for i in range(n):
        msg = Message(json.dumps({"i": i}), content_type="application/json", content_encoding="utf-8")
        msg.message_id = f"{prefix}{i}"
        msg.custom_properties["kind"] = "test"
        mc.send_message(msg)


def test_twins_telemetry_and_monitor(edge) -> None:
    running, _, target, client, identity = edge
    with LocalFeed(target) as feed:
        feed.wait_ready()
        mc = module_client(running, identity, "sensor")
        try:
            twin = mc.get_twin()
            assert twin["desired"]["interval"] == 1 and twin["desired"]["$version"] >= 2
            patches: list[dict] = []
            mc.on_twin_desired_properties_patch_received = patches.append
            mc.patch_twin_reported_properties({"state": "ok"})
            assert client.module_twin("edge1", "sensor")["reported"]["state"] == "ok"
            changed = manifest()
            changed["sensor"]["properties.desired"]["interval"] = 5
            client.deploy_to_device("edge1", changed)
            deadline = time.monotonic() + 10
            while not patches and time.monotonic() < deadline:
                time.sleep(0.05)
            assert patches and patches[0]["interval"] == 5 and patches[0]["$version"] == twin["desired"]["$version"] + 1
            send(mc, 5)
            got = list(feed.messages(timeout=3))
        finally:
            mc.shutdown()
    assert [m.message_id for m in got] == [f"m{i}" for i in range(5)]
    first = got[0]
    assert first.system_properties["iothub-connection-device-id"] == "edge1"
    assert first.system_properties["iothub-connection-module-id"] == "sensor"
    assert first.system_properties["iothub-enqueuedtime"].endswith("Z")
    event = format_event(first, MonitorFilter(properties={"all"}))["event"]
    assert event["origin"] == "edge1" and event["module"] == "sensor" and event["payload"] == {"i": 0}
    assert event["properties"]["application"] == {"kind": "test"}
    assert event["properties"]["system"]["content_type"] == "application/json"
    assert MonitorFilter(device="edge*", module="sens?r").matches(first)
    assert not MonitorFilter(device="other*").matches(first)


def test_module_method_through_the_hub(edge) -> None:
    running, _, _, _, identity = edge
    mc = module_client(running, identity, "sensor")

    def handler(request) -> None:
        mc.send_method_response(MethodResponse.create_from_method_request(request, 200, {"echo": request.payload}))

    mc.on_method_request_received = handler
    try:
        time.sleep(0.5)
        rm = IoTHubRegistryManager.from_connection_string(running.info.connection_string)
        result = rm.invoke_device_module_method(
            "edge1", "sensor", CloudToDeviceMethod(method_name="ping", payload={"x": 1}, response_timeout_in_seconds=5))
        assert result.status == 200 and result.payload == {"echo": {"x": 1}}
    finally:
        mc.shutdown()


def _paho_connect(address: str, ca_file: str, client_id: str, password: str) -> int:
    result: list[int] = []
    done = threading.Event()
    c = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    c.username_pw_set(f"{address}/{client_id}/?api-version=2019-10-01", password)
    c.tls_set_context(ssl.create_default_context(cafile=ca_file))

    def on_connect(client, userdata, flags, rc) -> None:
        result.append(rc)
        done.set()

    c.on_connect = on_connect
    c.connect(address, 8883)
    c.loop_start()
    done.wait(10)
    c.disconnect()
    c.loop_stop()
    return result[0]


def test_bad_sas_is_refused(edge) -> None:
    running, _, _, _, identity = edge
    address, ca = running.info.address, running.info.ca_file
    key, device_key = module_key(running, "edge1", "sensor"), identity.primary_key
    resource = f"{address}/devices/edge1/modules/sensor"
    assert _paho_connect(address, ca, "edge1/sensor", generate_sas_token(resource, key)) == 0
    assert _paho_connect(address, ca, "edge1/sensor", generate_sas_token(resource, generate_key())) == 5
    assert _paho_connect(address, ca, "edge1/sensor", generate_sas_token(resource, key, ttl=-5)) == 5
    # like IoT Hub: the edge device's own key does not sign for its modules (neither resource)
    assert _paho_connect(address, ca, "edge1/sensor", generate_sas_token(resource, device_key)) == 5
    assert _paho_connect(address, ca, "edge1/sensor",
                         generate_sas_token(f"{address}/devices/edge1", device_key)) == 5
    assert _paho_connect(address, ca, "edge1", generate_sas_token(f"{address}/devices/edge1", device_key)) == 0
    assert _paho_connect(address, ca, "nobody", generate_sas_token(f"{address}/devices/nobody", key)) == 5


def test_monitor_survives_a_hub_restart_exactly_once(edge, hub_factory, tmp_path) -> None:
    running, thread, target, _, identity = edge
    with LocalFeed(target) as feed:
        feed.wait_ready()
        mc = module_client(running, identity, "sensor")
        try:
            send(mc, 3, "a")
            before = list(feed.messages(timeout=2))
            thread.stop()
            hub_factory(state_dir=tmp_path / "state", address=running.info.address, port=running.info.port,
                        mqtt=True)
            deadline = time.monotonic() + 30
            while not mc.connected and time.monotonic() < deadline:
                time.sleep(0.2)
            send(mc, 3, "b")
            after = list(feed.messages(timeout=5))
        finally:
            mc.shutdown()
    ids = [m.message_id for m in before + after]
    assert ids == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_monitor_cli(edge, cli: CliRunner, monkeypatch, tmp_path) -> None:
    running, _, _, _, identity = edge
    monkeypatch.chdir(tmp_path)
    mc = module_client(running, identity, "sensor")
    try:
        send(mc, 2)
    finally:
        mc.shutdown()
    state = str(tmp_path / "state")
    r = cli(["monitor", "-d", "edge*", "-m", "sensor", "--from-start", "--count", "2", "--timeout", "5",
             "--properties", "app", "--state-dir", state])
    assert r.code == 0
    out = r.out
    events = [json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00")]
    assert [e["event"]["payload"] for e in events] == [{"i": 0}, {"i": 1}]
    assert events[0]["event"]["properties"] == {"application": {"kind": "test"}}
    r = cli(["monitor", "-d", "other", "--timeout", "1", "--state-dir", state])
    assert r.code == 1
    assert "no messages arrived within 1 s" in r.err


def test_leaf_device_and_service_twin_patch(edge) -> None:
    from azure.iot.device import IoTHubDeviceClient
    from azure.iot.hub.models import Twin, TwinProperties

    running, _, target, client, identity = edge
    leaf = client.create_device("leaf1")
    dc = IoTHubDeviceClient.create_from_connection_string(
        leaf.connection_string, server_verification_cert=Path(running.info.ca_file).read_text())
    mc = module_client(running, identity, "sensor")
    patches: list[dict] = []
    mc.on_twin_desired_properties_patch_received = patches.append
    try:
        with LocalFeed(target) as feed:
            feed.wait_ready()
            dc.connect()
            msg = Message("hello")
            msg.message_id = "leaf-1"
            dc.send_message(msg)
            got = list(feed.messages(timeout=2))
            rm = IoTHubRegistryManager.from_connection_string(running.info.connection_string)
            rm.update_module_twin("edge1", "sensor", Twin(properties=TwinProperties(desired={"threshold": 7})), "*")
            deadline = time.monotonic() + 10
            while not patches and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        dc.shutdown()
        mc.shutdown()
    assert [(m.device_id, m.module_id, m.body) for m in got] == [("leaf1", None, b"hello")]
    assert patches and patches[0]["threshold"] == 7
    assert client.module_twin("edge1", "sensor")["desired"]["interval"] == 1  # a patch merges
