"""Rights and revocation on the IoT Hub stand-in, driven from outside: raw HTTPS with each built-in policy's token
on every REST route, raw MQTT (our codec over a TLS socket) and paho for connections, the real Python SDKs
(azure-iot-hub's registry manager, azure-iot-device's device client) and ``edgegen monitor``'s feed client.

- every built-in policy gets exactly the rights IoT Hub gives it (``rights.REST_RIGHTS``), and a refusal is 401
  with IoT Hub's JSON error body;
- a device may connect with a policy's token only when the policy has DeviceConnect; the live feed needs
  ServiceConnect;
- disabling or deleting a device or module, or regenerating its keys, closes its live connection within a second,
  refuses the reconnect, and a message sent after that is neither acknowledged nor stored.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.hub.connection import resolve_hub
from edgegen.hub.errors import HubClientError
from edgegen.hub.monitor import LocalFeed
from edgegen.local.hubstandin.rights import DEFAULT_POLICY_RIGHTS, REST_RIGHTS
from edgegen.local.mqtt.codec import Puback, Publish
from tests.hub.conftest import HubThread, RunningHub
from tests.local.mqtt.rawclient import RawClient
from tests.support.net import free_loopback_address, free_port

pytestmark = pytest.mark.integration

ERROR = re.compile(r"^ErrorCode:IotHubUnauthorizedAccess;.+", re.S)
# ids nobody created: a call that passes the rights check is a 404 or 400
SAMPLE = {"{id}": "ghost", "{mid}": "gm", "{name}": "ghost-group"}


@dataclass
class Hub:
    running: RunningHub
    thread: HubThread

    @property
    def info(self):
        return self.running.info

    def policy_key(self, name: str) -> str:
        return self.running.standin.backend.policies[name]["primaryKey"]

    def token(self, policy: str) -> str:
        return generate_sas_token(self.info.host_name, self.policy_key(policy), key_name=policy)

    def rest(self, method: str, path: str, body: object = None, policy: str = "iothubowner") -> requests.Response:
        return requests.request(method, f"https://{self.info.host_name}{path}", params={"api-version": "2021-04-12"},
                                json=body, headers={"Authorization": self.token(policy)}, verify=self.info.ca_file,
                                timeout=10)

    def stored(self, device: str) -> list[bytes]:
        backend = self.running.standin.backend
        return self.running.call(lambda: [m.body for m in backend.messages(0, 100_000) if m.device_id == device])


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    address = free_loopback_address(8883)
    thread = HubThread(tmp_path / "hub", address, free_port(address), mqtt=True)
    running = thread.start()
    try:
        yield Hub(running, thread)
    finally:
        thread.stop()


def _body(method: str, route: str) -> object:
    if route.endswith("/methods"):
        return {"methodName": "ping"}
    if route == "/devices/query":
        return {"query": "SELECT * FROM devices"}
    if route == "/devices" and method == "POST":
        return [{"id": "ghost-bulk", "importMode": "create"}]
    return {} if method in ("PUT", "PATCH", "POST") else None


def test_every_policy_has_exactly_its_rights_on_every_route(hub: Hub) -> None:
    refused: dict[str, list[str]] = {}
    for policy, rights in DEFAULT_POLICY_RIGHTS.items():
        for (method, route), right in REST_RIGHTS.items():
            path = route
            for name, value in SAMPLE.items():
                path = path.replace(name, value)
            resp = hub.rest(method, path, _body(method, route), policy=policy)
            what = f"{policy}: {method} {route}"
            if right in rights:
                assert resp.status_code != 401, f"{what} refused: {resp.text}"
                continue
            refused.setdefault(policy, []).append(f"{method} {route}")
            assert resp.status_code == 401, f"{what} answered {resp.status_code}: {resp.text}"
            assert resp.headers["iothub-errorcode"] == "IotHubUnauthorizedAccess"
            body = resp.json()
            assert set(body) == {"Message", "ExceptionMessage"} and ERROR.match(body["Message"]), body
            assert right in body["Message"] and policy in body["Message"], body
    # the two examples: 'service' may not create devices, 'registryReadWrite' may not patch desired
    assert "PUT /devices/{id}" in refused["service"]
    assert "PATCH /twins/{id}" in refused["registryReadWrite"]
    assert "iothubowner" not in refused and set(refused["device"]) == {f"{m} {r}" for m, r in REST_RIGHTS}


def test_sdk_registry_manager_with_a_read_only_policy(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.iot.hub import IoTHubRegistryManager
    from msrest.exceptions import HttpOperationError

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", hub.info.ca_file)
    owner = IoTHubRegistryManager.from_connection_string(hub.running.standin.backend.connection_string())
    owner.create_device_with_sas("d1", generate_key(), generate_key(), "enabled")
    reader = IoTHubRegistryManager.from_connection_string(
        hub.running.standin.backend.connection_string("registryRead"))
    assert reader.get_device("d1").device_id == "d1"
    with pytest.raises(HttpOperationError) as caught:
        reader.create_device_with_sas("d2", generate_key(), generate_key(), "enabled")
    assert caught.value.response.status_code == 401
    assert "RegistryWrite" in caught.value.response.json()["Message"]
    with pytest.raises(HttpOperationError) as caught:
        reader.update_twin("d1", {"properties": {"desired": {"x": 1}}}, "*")  # twins need ServiceConnect
    assert caught.value.response.status_code == 401


def _device(hub: Hub, device: str) -> str:
    resp = hub.rest("PUT", f"/devices/{device}", {"deviceId": device})
    assert resp.status_code == 200, resp.text
    return resp.json()["authentication"]["symmetricKey"]["primaryKey"]


def _raw(hub: Hub, client_id: str, token: str) -> tuple[RawClient, int]:
    client = RawClient(hub.info.address, Path(hub.info.ca_file))
    ack = client.connect(client_id, f"{hub.info.address}/{client_id}/?api-version=2021-04-12", token)
    return client, ack.return_code


def test_device_connects_with_a_policy_only_when_it_has_device_connect(hub: Hub) -> None:
    _device(hub, "d1")
    resource = f"{hub.info.address}/devices/d1"
    for policy, rights in DEFAULT_POLICY_RIGHTS.items():
        token = generate_sas_token(resource, hub.policy_key(policy), key_name=policy)
        client, code = _raw(hub, "d1", token)
        client.close()
        assert code == (0 if "DeviceConnect" in rights else 5), policy
    forged = generate_sas_token(resource, generate_key(), key_name="device")
    client, code = _raw(hub, "d1", forged)
    client.close()
    assert code == 5
    _put(hub, "/devices/d1", {"deviceId": "d1", "status": "disabled"})
    client, code = _raw(hub, "d1", generate_sas_token(resource, hub.policy_key("device"), key_name="device"))
    client.close()
    assert code == 5  # a disabled device stays out, whichever credential it uses


def test_live_feed_needs_service_connect(hub: Hub, tmp_path: Path) -> None:
    target = resolve_hub(None, state_dir=tmp_path / "hub", environ={})
    backend = hub.running.standin.backend
    for policy, rights in DEFAULT_POLICY_RIGHTS.items():
        with LocalFeed(dataclasses.replace(target, connection_string=backend.connection_string(policy))) as feed:
            if "ServiceConnect" in rights:
                feed.wait_ready(10)
            else:
                with pytest.raises(HubClientError, match="ServiceConnect"):
                    feed.wait_ready(10)


# ---------------------------------------------------------------------------------------------------- revocation


def _put(hub: Hub, path: str, body: dict) -> None:
    resp = requests.put(f"https://{hub.info.host_name}{path}", params={"api-version": "2021-04-12"}, json=body,
                        verify=hub.info.ca_file, timeout=10,
                        headers={"Authorization": hub.token("iothubowner"), "If-Match": "*"})
    assert resp.status_code in (200, 201), resp.text


REVOCATIONS = {
    "device disabled": lambda hub: _put(hub, "/devices/d1", {"deviceId": "d1", "status": "disabled"}),
    "device deleted": lambda hub: hub.rest("DELETE", "/devices/d1"),
    "device keys regenerated": lambda hub: _put(hub, "/devices/d1", {"deviceId": "d1", "authentication": {
        "type": "sas", "symmetricKey": {"primaryKey": generate_key(), "secondaryKey": generate_key()}}}),
}
MODULE_REVOCATIONS = {
    "module deleted": lambda hub: hub.rest("DELETE", "/devices/d1/modules/m1"),
    "module keys regenerated": lambda hub: _put(hub, "/devices/d1/modules/m1", {"moduleId": "m1", "authentication": {
        "type": "sas", "symmetricKey": {"primaryKey": generate_key(), "secondaryKey": generate_key()}}}),
    "its device disabled": lambda hub: _put(hub, "/devices/d1", {"deviceId": "d1", "status": "disabled"}),
}


def _revocation_case(hub: Hub, client_id: str, key: str, revoke) -> None:
    resource = f"{hub.info.address}/devices/{client_id.replace('/', '/modules/')}"
    token = generate_sas_token(resource, key)
    topic = f"devices/{client_id.replace('/', '/modules/')}/messages/events/"
    client, code = _raw(hub, client_id, token)
    assert code == 0
    client.send(Publish(topic, b"before", 1, 1))
    assert client.recv() == Puback(1)
    assert hub.stored("d1") == [b"before"]
    started = time.monotonic()
    revoke(hub)
    assert client.closed_by_server(timeout=1.0), "the live connection stayed open"
    assert time.monotonic() - started < 1.5
    try:  # whatever still reaches the server is neither acknowledged nor stored
        client.send(Publish(topic, b"after", 1, 2))
        assert client.closed_by_server(timeout=0.5)
    except OSError:
        pass
    client.close()
    again, code = _raw(hub, client_id, token)
    again.close()
    assert code in (4, 5), code  # refused: bad credentials / not authorized
    assert hub.stored("d1") == [b"before"]  # what was stored stays (a deleted device's messages too)


@pytest.mark.parametrize("what", sorted(REVOCATIONS))
def test_device_revocation_closes_and_refuses(hub: Hub, what: str) -> None:
    key = _device(hub, "d1")
    _revocation_case(hub, "d1", key, REVOCATIONS[what])


@pytest.mark.parametrize("what", sorted(MODULE_REVOCATIONS))
def test_module_revocation_closes_and_refuses(hub: Hub, what: str) -> None:
    _device(hub, "d1")
    resp = hub.rest("PUT", "/devices/d1/modules/m1", {"moduleId": "m1"})
    assert resp.status_code in (200, 201), resp.text
    _revocation_case(hub, "d1/m1", resp.json()["authentication"]["symmetricKey"]["primaryKey"],
                     MODULE_REVOCATIONS[what])


def test_sdk_device_client_is_disconnected_when_disabled(hub: Hub) -> None:
    from azure.iot.device import IoTHubDeviceClient, Message

    key = _device(hub, "d1")
    client = IoTHubDeviceClient.create_from_connection_string(
        f"HostName={hub.info.address};DeviceId=d1;SharedAccessKey={key}",
        server_verification_cert=Path(hub.info.ca_file).read_text(), connection_retry=False)
    lost = threading.Event()

    def on_state() -> None:
        if not client.connected:
            lost.set()

    client.on_connection_state_change = on_state
    client.connect()
    try:
        client.send_message(Message("before"))
        _put(hub, "/devices/d1", {"deviceId": "d1", "status": "disabled"})
        assert lost.wait(2), "the SDK was not disconnected"
        with pytest.raises(Exception):  # noqa: B017 - the SDK's connection failure types vary by version
            client.connect()
    finally:
        client.shutdown()
    assert hub.stored("d1") == [b"before"]


def test_sdk_device_client_with_a_policy_token(hub: Hub) -> None:
    """azure-iot-device's create_from_sastoken with a policy's token (skn): the device policy (DeviceConnect)
    connects and sends; the service policy (no DeviceConnect) is refused."""
    from azure.iot.device import IoTHubDeviceClient, Message

    _device(hub, "d1")
    resource = f"{hub.info.address}/devices/d1"
    cert = Path(hub.info.ca_file).read_text()
    ok = IoTHubDeviceClient.create_from_sastoken(
        generate_sas_token(resource, hub.policy_key("device"), key_name="device"), server_verification_cert=cert,
        connection_retry=False)
    try:
        ok.connect()
        ok.send_message(Message("via the device policy"))
    finally:
        ok.shutdown()
    assert hub.stored("d1") == [b"via the device policy"]
    refused = IoTHubDeviceClient.create_from_sastoken(
        generate_sas_token(resource, hub.policy_key("service"), key_name="service"), server_verification_cert=cert,
        connection_retry=False)
    try:
        with pytest.raises(Exception, match="(?i)credentials invalid|unauthori"):
            refused.connect()
    finally:
        refused.shutdown()
