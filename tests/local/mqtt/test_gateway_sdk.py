"""The gateway with the REAL azure-iot-device SDK as its client (TLS on a fresh 127.x:8883)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.iot.device import IoTHubDeviceClient, IoTHubModuleClient, Message, MethodResponse
from azure.iot.device.exceptions import CredentialError

from edgegen.common.sas import generate_key
from edgegen.local.mqtt import GatewayError, Identity, MethodTimeoutError, SqliteSessionStore
from tests.local.mqtt.harness import GatewayHarness, gateway_harness

pytestmark = pytest.mark.integration


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    with gateway_harness(tmp_path_factory.mktemp("gw")) as h:
        yield h


class Clients:
    def __init__(self, harness: GatewayHarness) -> None:
        self.harness = harness
        self.made: list[IoTHubModuleClient] = []

    def module(self, connection_string: str, **kwargs: Any) -> IoTHubModuleClient:
        client = IoTHubModuleClient.create_from_connection_string(
            connection_string, server_verification_cert=self.harness.ca_file.read_text(), **kwargs
        )
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            with contextlib.suppress(Exception):
                client.shutdown()


@pytest.fixture
def clients(harness: GatewayHarness) -> Iterator[Clients]:
    made = Clients(harness)
    try:
        yield made
    finally:
        made.close()


def connected_module(harness: GatewayHarness, clients: Clients, device: str, module: str, **kw: Any):
    identity, cs = harness.add_module(device, module)
    client = clients.module(cs, **kw)
    client.connect()
    return identity, client


# ------------------------------------------------------------------------------------------ authentication


def test_right_key_connects_and_wrong_credentials_are_refused(harness: GatewayHarness, clients: Clients) -> None:
    identity, _client = connected_module(harness, clients, "authdev", "good")
    assert harness.call(harness.gateway.is_connected, identity)
    assert identity in harness.call(harness.gateway.connected_identities)

    wrong_key = clients.module(harness.connection_string(identity, generate_key()))
    with pytest.raises(CredentialError):
        wrong_key.connect()

    other, _ = harness.add_module("authdev", "other")  # a real module, but signing with good's key
    impostor = clients.module(harness.connection_string(other, harness.keys[identity]))
    with pytest.raises(CredentialError):
        impostor.connect()
    assert not harness.call(harness.gateway.is_connected, other)

    unknown = clients.module(harness.connection_string(Identity("authdev", "ghost"), generate_key()))
    with pytest.raises(CredentialError):
        unknown.connect()
    assert harness.call(harness.gateway.is_connected, identity)  # the good one is untouched


def test_token_renewal_reconnects_and_keeps_working(harness: GatewayHarness, clients: Clients) -> None:
    # sastoken_ttl=123: the SDK renews 120 s before expiry, i.e. after ~3 s, by reconnecting with a new token
    identity, client = connected_module(harness, clients, "renewdev", "m", sastoken_ttl=123)
    events = harness.handler.events
    seen: list[str] = []

    def reconnected() -> bool:
        while not events.empty():
            kind, who, _ = events.get()
            if who == identity:
                seen.append(kind)
        return "disconnect" in seen and seen[-1] == "connect"

    wait_until(reconnected, 15, "a token-renewal reconnect")
    client.send_message_to_output(Message(b"after renewal"), "out")
    got = _telemetry_for(harness, identity, 1)
    assert got[0].payload == b"after renewal"


# ------------------------------------------------------------------------------------------ telemetry and inputs


def _telemetry_for(harness: GatewayHarness, identity: Identity, count: int, timeout: float = 10.0) -> list[Any]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"only {len(out)} of {count} telemetry messages arrived")
        try:
            who, message = harness.handler.telemetry.get(timeout=remaining)
        except queue.Empty:
            continue
        if who == identity:
            out.append(message)
    return out


def test_telemetry_reaches_the_handler_with_its_properties(harness: GatewayHarness, clients: Clients) -> None:
    identity, client = connected_module(harness, clients, "teldev", "sensor")
    message = Message(b'{"t": 21.5}', message_id="m-1", content_encoding="utf-8", content_type="application/json")
    message.correlation_id = "c 1&2"
    message.custom_properties["alert"] = "high + low"
    message.custom_properties["a=b"] = "x/y"
    client.send_message_to_output(message, "temperatureOutput")
    client.send_message(Message(b"plain"))

    first, second = _telemetry_for(harness, identity, 2)
    assert first.output_name == "temperatureOutput"
    assert first.payload == b'{"t": 21.5}'
    assert first.system_properties == {
        "$.on": "temperatureOutput", "$.mid": "m-1", "$.cid": "c 1&2", "$.ct": "application/json", "$.ce": "utf-8",
    }
    assert first.properties == {"alert": "high + low", "a=b": "x/y"}
    assert second.output_name is None
    assert second.payload == b"plain"
    assert second.system_properties == {}


def test_inputs_arrive_with_name_content_type_and_custom_properties(
    harness: GatewayHarness, clients: Clients
) -> None:
    identity, client = connected_module(harness, clients, "indev", "monitor")
    received: queue.Queue[Any] = queue.Queue()
    client.on_message_received = received.put
    wait_until(lambda: harness.call(harness.gateway.pending_count, identity) == 0 and any(
        e[0] == "subscribe" and e[1] == identity for e in list(harness.handler.events.queue)
    ), what="the inputs subscription")
    props = {"temp": "30", "$.ct": "application/json", "$.mid": "id-7", "$.cdid": "indev", "$.cmid": "sensor",
             "odd key": "50% & more"}
    assert harness.call(harness.gateway.deliver_input, identity, "input1", props, b'{"v": 1}')
    got = received.get(timeout=10)
    assert got.input_name == "input1"
    assert got.data == b'{"v": 1}'
    assert got.content_type == "application/json"
    assert got.message_id == "id-7"
    assert got.custom_properties == {"temp": "30", "$.cdid": "indev", "$.cmid": "sensor", "odd key": "50% & more"}

    # a module that never subscribed has nothing to deliver to
    stranger, _ = harness.add_module("indev", "never")
    assert harness.call(harness.gateway.deliver_input, stranger, "input1", {}, b"x") is False


# ------------------------------------------------------------------------------------------ twins


def test_twin_get_and_reported_patch(harness: GatewayHarness, clients: Clients) -> None:
    identity, _ = harness.add_module("twindev", "m")
    harness.handler.desired[identity] = {"threshold": 3}
    client = clients.module(harness.connection_string(identity))
    client.connect()
    twin = client.get_twin()
    assert twin["desired"]["threshold"] == 3
    assert twin["desired"]["$version"] == 1
    client.patch_twin_reported_properties({"status": "ok", "n": 2})
    assert harness.handler.reported[identity] == {"status": "ok", "n": 2}
    assert client.get_twin()["reported"]["$version"] == 2


def test_desired_patch_reaches_only_its_module(harness: GatewayHarness, clients: Clients) -> None:
    patches: dict[str, queue.Queue[Any]] = {"a": queue.Queue(), "b": queue.Queue()}
    identities = {}
    for name in ("a", "b"):
        identity, client = connected_module(harness, clients, "patchdev", name)
        client.on_twin_desired_properties_patch_received = patches[name].put
        identities[name] = identity
    for name in ("a", "b"):
        wait_until(lambda n=name: any(
            e[0] == "subscribe" and e[1] == identities[n] and any("desired" in f for f in e[2])
            for e in list(harness.handler.events.queue)
        ), what=f"module {name} to subscribe to desired patches")
    assert harness.call(harness.gateway.push_desired_patch, identities["a"], {"threshold": 9}, 5)
    assert patches["a"].get(timeout=10) == {"threshold": 9, "$version": 5}
    time.sleep(0.5)
    assert patches["b"].empty()


# ------------------------------------------------------------------------------------------ methods


def test_method_goes_to_one_module_and_times_out_when_unanswered(harness: GatewayHarness, clients: Clients) -> None:
    calls: dict[str, list[Any]] = {"a": [], "b": [], "mute": []}

    def answering(name: str, client: IoTHubModuleClient) -> Callable[[Any], None]:
        def handle(request: Any) -> None:
            calls[name].append((request.name, request.payload))
            client.send_method_response(MethodResponse.create_from_method_request(request, 201, {"by": name}))
        return handle

    identities = {}
    for name in ("a", "b", "mute"):
        identity, client = connected_module(harness, clients, "methdev", name)
        if name == "mute":
            client.on_method_request_received = lambda req, n=name: calls[n].append((req.name, req.payload))
        else:
            client.on_method_request_received = answering(name, client)
        identities[name] = identity

    def subscribed(identity: Identity) -> bool:
        return any(e[0] == "subscribe" and e[1] == identity and any("methods" in f for f in e[2])
                   for e in list(harness.handler.events.queue))

    for identity in identities.values():
        wait_until(lambda i=identity: subscribed(i), what="method subscription")

    status, body = harness.run(harness.gateway.invoke_method(identities["a"], "reset", {"hard": True}, 10))
    assert (status, body) == (201, {"by": "a"})
    assert calls["a"] == [("reset", {"hard": True})]
    assert calls["b"] == []

    with pytest.raises(MethodTimeoutError):
        harness.run(harness.gateway.invoke_method(identities["mute"], "slow", None, 1.0))
    assert calls["mute"] == [("slow", None)]

    with pytest.raises(GatewayError) as info:
        harness.run(harness.gateway.invoke_method(Identity("methdev", "absent"), "x", None, 1.0))
    assert info.value.status == 404


# ------------------------------------------------------------------------------------------ persistent sessions


def first_seen(items: list[bytes]) -> list[bytes]:
    """QoS 1 is at least once: a reconnect may redeliver what was in flight. Order of first arrival."""
    return list(dict.fromkeys(items))


def _collect_inputs(client: IoTHubModuleClient) -> list[bytes]:
    got: list[bytes] = []
    lock = threading.Lock()

    def on_message(message: Any) -> None:
        with lock:
            got.append(message.data)

    client.on_message_received = on_message
    return got


def test_queued_inputs_survive_an_sdk_disconnect_in_order(harness: GatewayHarness, clients: Clients) -> None:
    identity, client = connected_module(harness, clients, "persdev", "m")
    got = _collect_inputs(client)
    wait_until(lambda: any(e[0] == "subscribe" and e[1] == identity for e in list(harness.handler.events.queue)),
               what="inputs subscription")
    assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"0")
    wait_until(lambda: got == [b"0"], what="the first message")
    client.disconnect()
    wait_until(lambda: not harness.call(harness.gateway.is_connected, identity), what="the disconnect")
    for i in range(1, 51):
        assert harness.call(harness.gateway.deliver_input, identity, "in", {"i": str(i)}, str(i).encode())
    assert harness.call(harness.gateway.pending_count, identity) == 50
    client.connect()  # the SDK does not subscribe again: the session must still hold its subscription
    wait_until(lambda: len(set(got)) == 51, what="all queued messages")
    assert first_seen(got) == [str(i).encode() for i in range(51)]
    wait_until(lambda: harness.call(harness.gateway.pending_count, identity) == 0, what="all PUBACKs")


def test_queued_inputs_survive_a_gateway_restart_with_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    with gateway_harness(tmp_path, SqliteSessionStore(db)) as h:
        made = Clients(h)
        try:
            identity, cs = h.add_module("restartdev", "m")
            client = made.module(cs, connection_retry_interval=1)
            client.connect()
            got = _collect_inputs(client)
            wait_until(lambda: any(e[0] == "subscribe" for e in list(h.handler.events.queue)), what="subscription")
            assert h.call(h.gateway.deliver_input, identity, "in", {}, b"0")
            wait_until(lambda: got == [b"0"], what="the first message")

            h.stop_gateway()  # the client loses its connection and keeps retrying every second
            assert h.store is not None
            h.store.close()
            # a brand-new gateway and store over the same file; the client is still offline for it
            h.start_gateway(SqliteSessionStore(db))
            for i in range(1, 31):
                assert h.call(h.gateway.deliver_input, identity, "in", {}, str(i).encode()), i
            wait_until(lambda: h.call(h.gateway.is_connected, identity), timeout=20, what="the SDK to reconnect")
            try:
                wait_until(lambda: len(set(got)) == 31, timeout=10, what="the session to drain")
            except AssertionError as exc:
                pending = h.call(h.gateway.pending_count, identity)
                raise AssertionError(f"{exc}: {len(got)} received, {pending} pending in the gateway") from None
            assert first_seen(got) == [str(i).encode() for i in range(31)]

            # offline client, messages queued, then the gateway restarts: they come from the SQLite file
            client.disconnect()
            wait_until(lambda: not h.call(h.gateway.is_connected, identity), what="the disconnect")
            for i in range(31, 61):
                assert h.call(h.gateway.deliver_input, identity, "in", {}, str(i).encode()), i
            h.stop_gateway()
            h.store.close()
            h.start_gateway(SqliteSessionStore(db))
            assert h.call(h.gateway.pending_count, identity) == 30
            client.connect()
            wait_until(lambda: len(set(got)) == 61, timeout=30, what="the messages queued before the restart")
            assert first_seen(got) == [str(i).encode() for i in range(61)]
        finally:
            made.close()


def test_edge_environment_fallback_connects(harness: GatewayHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """``create_from_edge_environment()`` with ``EdgeHubConnectionString`` + ``EdgeModuleCACertificateFile``."""
    identity, cs = harness.add_module("envdev", "m")
    for name in ("IOTEDGE_IOTHUBHOSTNAME", "IOTEDGE_DEVICEID", "IOTEDGE_MODULEID", "IOTEDGE_GATEWAYHOSTNAME",
                 "IOTEDGE_MODULEGENERATIONID", "IOTEDGE_WORKLOADURI", "IOTEDGE_APIVERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EdgeHubConnectionString", cs)
    monkeypatch.setenv("EdgeModuleCACertificateFile", str(harness.ca_file))
    client = IoTHubModuleClient.create_from_edge_environment()
    try:
        client.connect()
        assert harness.call(harness.gateway.is_connected, identity)
        client.send_message_to_output(Message(b"from env"), "out")
        assert _telemetry_for(harness, identity, 1)[0].payload == b"from env"
    finally:
        client.shutdown()


def test_device_client_in_hub_mode(harness: GatewayHarness) -> None:
    """A device identity (hub mode): telemetry on the device topic, twin, cloud-to-device messages."""
    identity = Identity("leaf1")
    harness.keys[identity] = generate_key()
    client = IoTHubDeviceClient.create_from_connection_string(
        harness.connection_string(identity), server_verification_cert=harness.ca_file.read_text()
    )
    try:
        client.connect()
        received: queue.Queue[Any] = queue.Queue()
        client.on_message_received = received.put
        message = Message(b"d2c", content_type="text/plain")
        message.custom_properties["k"] = "v"
        client.send_message(message)
        (got,) = _telemetry_for(harness, identity, 1)
        assert (got.payload, got.properties, got.system_properties, got.output_name) == (
            b"d2c", {"k": "v"}, {"$.ct": "text/plain"}, None)
        assert client.get_twin()["desired"]["$version"] == 1
        wait_until(lambda: any(e[0] == "subscribe" and e[1] == identity and any("devicebound" in f for f in e[2])
                               for e in list(harness.handler.events.queue)), what="the C2D subscription")
        assert harness.call(harness.gateway.deliver_c2d, identity, {"$.mid": "c2d-1", "prio": "high"}, b"hello")
        c2d = received.get(timeout=10)
        assert (c2d.data, c2d.message_id, c2d.custom_properties) == (b"hello", "c2d-1", {"prio": "high"})
        with pytest.raises(GatewayError):
            harness.call(harness.gateway.deliver_c2d, Identity("leaf1", "m"), {}, b"x")
    finally:
        client.shutdown()
