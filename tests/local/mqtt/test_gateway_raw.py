"""Gateway behaviour the SDK never shows: refusals, scoping, keepalive, takeover, redelivery (raw TLS client)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.local.mqtt import Identity
from edgegen.local.mqtt.codec import (
    Connect,
    PacketReader,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    encode,
)
from edgegen.local.mqtt.errors import NotPermitted
from tests.local.mqtt.harness import HUB, GatewayHarness, gateway_harness
from tests.local.mqtt.rawclient import RawClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    with gateway_harness(tmp_path_factory.mktemp("gwraw")) as h:
        yield h


@pytest.fixture
def open_clients() -> Iterator[list[RawClient]]:
    made: list[RawClient] = []
    yield made
    for client in made:
        client.close()


def username(identity: Identity) -> str:
    return f"{HUB}/{identity.client_id}/?api-version=2021-04-12"


def token(harness: GatewayHarness, identity: Identity, ttl: int = 3600, key: str | None = None) -> str:
    return generate_sas_token(identity.resource(HUB), key or harness.keys[identity], ttl=ttl)


def raw(harness: GatewayHarness, made: list[RawClient]) -> RawClient:
    client = RawClient(harness.host, harness.ca_file)
    made.append(client)
    return client


def online(harness: GatewayHarness, made: list[RawClient], device: str, module: str | None, *,
           clean: bool = False, keepalive: int = 60, subscribe: list[tuple[str, int]] | None = None,
           ) -> tuple[Identity, RawClient]:
    identity = Identity(device, module)
    harness.keys.setdefault(identity, generate_key())
    client = raw(harness, made)
    ack = client.connect(identity.client_id, username(identity), token(harness, identity), clean=clean,
                         keepalive=keepalive)
    assert ack.return_code == 0
    if subscribe:
        client.send(Subscribe(1, subscribe))
        suback = client.recv()
        assert isinstance(suback, Suback)
    return identity, client


# ------------------------------------------------------------------------------------------ CONNECT


def test_connect_refusals_carry_the_right_return_code(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    identity = Identity("rawdev", "m")
    harness.keys[identity] = generate_key()
    cases = [
        (identity.client_id, username(identity), token(harness, identity, ttl=-10), 5),  # expired
        (identity.client_id, username(identity), token(harness, identity, key=generate_key()), 5),  # wrong key
        (identity.client_id, username(identity), generate_sas_token(f"{HUB}/devices/rawdev/modules/x",
                                                                    harness.keys[identity]), 5),  # other resource
        (identity.client_id, username(identity), None, 4),  # no password
        (identity.client_id, f"{HUB}/rawdev/other/?api-version=1", token(harness, identity), 4),  # user ≠ client id
        (identity.client_id, f"elsewhere.net/{identity.client_id}/?api-version=1", token(harness, identity), 4),
        ("rawdev/", username(identity), token(harness, identity), 2),  # empty module id
        (identity.client_id, username(identity), "not a token", 5),
    ]
    for client_id, user, password, code in cases:
        client = raw(harness, open_clients)
        ack = client.connect(client_id, user, password)
        assert ack.return_code == code, (client_id, user, password)
        assert client.closed_by_server()
    old = raw(harness, open_clients)
    old.send(Connect("x", protocol_name="MQIsdp", protocol_level=3))
    assert old.recv().return_code == 1  # type: ignore[union-attr]


def test_garbage_and_packets_before_connect_close_the_connection(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    client = raw(harness, open_clients)
    client.send_bytes(b"\x10\xff\xff\xff\xff\x7f")  # remaining length of 5 bytes
    assert client.closed_by_server()
    client = raw(harness, open_clients)
    client.send(Pingreq())
    assert client.closed_by_server()


def test_token_expiry_closes_the_connection(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    identity = Identity("rawdev", "shortlived")
    harness.keys[identity] = generate_key()
    client = raw(harness, open_clients)
    assert client.connect(identity.client_id, username(identity), token(harness, identity, ttl=2)).return_code == 0
    start = time.monotonic()
    assert client.closed_by_server(timeout=6)
    assert time.monotonic() - start < 5


def test_keepalive_silence_disconnects_but_pings_keep_alive(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    _, pinger = online(harness, open_clients, "kadev", "pinger", keepalive=1)
    _, silent = online(harness, open_clients, "kadev", "silent", keepalive=1)
    start = time.monotonic()
    for _ in range(5):
        pinger.send(Pingreq())
        assert isinstance(pinger.recv(), Pingresp)
        time.sleep(0.5)
    assert silent.closed_by_server(timeout=0.1)
    assert time.monotonic() - start > 1.4
    pinger.send(Pingreq())
    assert isinstance(pinger.recv(), Pingresp)


def test_same_client_id_takes_over(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    identity, first = online(harness, open_clients, "takedev", "m")
    _, second = online(harness, open_clients, "takedev", "m")
    assert first.closed_by_server()
    second.send(Pingreq())
    assert isinstance(second.recv(), Pingresp)
    assert harness.call(harness.gateway.is_connected, identity)


# ------------------------------------------------------------------------------------------ topic scoping


def test_subscriptions_are_limited_to_the_identity(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    _, client = online(harness, open_clients, "scopedev", "m")
    client.send(Subscribe(7, [
        ("devices/scopedev/modules/m/inputs/#", 1),
        ("devices/scopedev/modules/other/inputs/#", 1),
        ("#", 0),
        ("$iothub/methods/POST/#", 0),
        ("$iothub/twin/res/#", 2),
        ("devices/scopedev/modules/m/messages/events/#", 1),
    ]))
    suback = client.recv()
    assert suback == Suback(7, [1, 0x80, 0x80, 0, 1, 0x80])


def test_publishing_outside_the_identity_closes_the_connection(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    for topic in ("devices/scopedev/modules/other/messages/events/", "devices/scopedev/messages/events/",
                  "$iothub/twin/PATCH/properties/desired/?$version=3", "anything"):
        _, client = online(harness, open_clients, "scopedev", "pub")
        client.send(Publish(topic, b"x", 1, 1))
        assert client.closed_by_server(), topic


def test_device_identity_sends_device_telemetry(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    identity, client = online(harness, open_clients, "leafdev", None)
    client.send(Publish("devices/leafdev/messages/events/%24.ct=text%2Fplain&k=v", b"hello", 1, 3))
    assert client.recv() == Puback(3)
    who, message = harness.handler.telemetry.get(timeout=5)
    assert who == identity
    assert (message.payload, message.properties, message.system_properties) == (b"hello", {"k": "v"},
                                                                                {"$.ct": "text/plain"})


def test_node_style_topics_and_malformed_bags(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    """The Node.js SDK ends the bag with '/'; a bag the C# serializer refuses drops the connection, as in edgeHub."""
    identity, client = online(harness, open_clients, "nodedev", "m")
    client.send(Publish("devices/nodedev/modules/m/messages/events/%24.on=out1&%24.ce=utf-8&k=v%2F/", b"n", 1, 4))
    assert client.recv() == Puback(4)
    who, message = harness.handler.telemetry.get(timeout=5)
    assert (who, message.output_name, message.system_properties, message.properties) == (
        identity, "out1", {"$.on": "out1", "$.ce": "utf-8"}, {"k": "v/"})
    client.send(Publish("devices/nodedev/modules/m/messages/events/a=1&", b"x", 1, 5))
    assert client.closed_by_server()
    assert harness.handler.telemetry.empty()


# ------------------------------------------------------------------------------------------ acknowledgements


def test_puback_only_after_the_handler_returned(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    async def make_gate() -> asyncio.Event:
        return asyncio.Event()

    gate = harness.run(make_gate())
    harness.handler.telemetry_gate = gate
    try:
        _, client = online(harness, open_clients, "ackdev", "m")
        client.send(Publish("devices/ackdev/modules/m/messages/events/", b"x", 1, 42))
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.5)
        harness.call(gate.set)
        assert client.recv() == Puback(42)
    finally:
        harness.handler.telemetry_gate = None


def test_twin_replies_use_the_request_id(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    identity, client = online(harness, open_clients, "twinraw", "m", subscribe=[("$iothub/twin/res/#", 0)])
    harness.handler.desired[identity] = {"a": 1}
    client.send(Publish("$iothub/twin/GET/?$rid=abc", b" ", 0))
    reply = client.recv()
    assert isinstance(reply, Publish)
    assert reply.topic == "$iothub/twin/res/200/?$rid=abc"
    client.send(Publish("$iothub/twin/PATCH/properties/reported/?$rid=r2", b'{"x": 1}', 0))
    reply = client.recv()
    assert isinstance(reply, Publish)
    assert reply.topic == "$iothub/twin/res/204/?$rid=r2&$version=2"
    client.send(Publish("$iothub/twin/PATCH/properties/reported/?$rid=r3", b"{not json", 0))
    reply = client.recv()
    assert isinstance(reply, Publish) and reply.topic == "$iothub/twin/res/400/?$rid=r3"


def test_handler_failures_become_error_replies_or_a_closed_connection(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    _, client = online(harness, open_clients, "faildev", "m", subscribe=[("$iothub/twin/res/#", 0)])
    harness.handler.fail_with = NotPermitted("no twin for you")
    try:
        client.send(Publish("$iothub/twin/GET/?$rid=1", b" ", 0))
        reply = client.recv()
        assert isinstance(reply, Publish) and reply.topic == "$iothub/twin/res/403/?$rid=1"
        harness.handler.fail_with = RuntimeError("boom")
        client.send(Publish("$iothub/twin/GET/?$rid=2", b" ", 0))
        reply = client.recv()
        assert isinstance(reply, Publish) and reply.topic == "$iothub/twin/res/500/?$rid=2"
        client.send(Publish("devices/faildev/modules/m/messages/events/", b"x", 1, 5))
        with pytest.raises(ConnectionError):  # closed without a PUBACK: the client will send it again
            client.recv()
    finally:
        harness.handler.fail_with = None


def test_unacknowledged_messages_are_redelivered_with_dup_in_order(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    inputs = [("devices/redev/modules/m/inputs/#", 1)]
    identity, client = online(harness, open_clients, "redev", "m", subscribe=inputs)
    for i in range(3):
        assert harness.call(harness.gateway.deliver_input, identity, "in", {"i": str(i)}, str(i).encode())
    first = [client.recv() for _ in range(3)]
    assert [p.payload for p in first] == [b"0", b"1", b"2"]  # type: ignore[union-attr]
    assert all(isinstance(p, Publish) and p.qos == 1 and not p.dup for p in first)
    client.send(Puback(first[0].packet_id))  # type: ignore[union-attr, arg-type]
    client.close()
    wait = time.monotonic() + 5
    while harness.call(harness.gateway.is_connected, identity) and time.monotonic() < wait:
        time.sleep(0.02)
    assert harness.call(harness.gateway.deliver_input, identity, "in", {"i": "3"}, b"3")  # queued while offline
    _, again = online(harness, open_clients, "redev", "m")
    redelivered = [again.recv() for _ in range(3)]
    assert [(p.payload, p.dup, p.topic) for p in redelivered] == [  # type: ignore[union-attr]
        (b"1", True, "devices/redev/modules/m/inputs/in/i=1"),
        (b"2", True, "devices/redev/modules/m/inputs/in/i=2"),
        (b"3", False, "devices/redev/modules/m/inputs/in/i=3"),
    ]
    for p in redelivered:
        again.send(Puback(p.packet_id))  # type: ignore[union-attr, arg-type]
    again.send(Pingreq())
    assert isinstance(again.recv(), Pingresp)
    assert harness.call(harness.gateway.pending_count, identity) == 0


def test_inflight_window_limits_unacknowledged_messages(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    inputs = [("devices/windev/modules/m/inputs/#", 1)]
    identity, client = online(harness, open_clients, "windev", "m", subscribe=inputs)
    for i in range(105):
        assert harness.call(harness.gateway.deliver_input, identity, "in", {}, str(i).encode())
    received = [client.recv() for _ in range(100)]
    with pytest.raises(TimeoutError):
        client.recv(timeout=0.3)
    client.send(Puback(received[0].packet_id))  # type: ignore[union-attr, arg-type]
    assert client.recv().payload == b"100"  # type: ignore[union-attr]


def test_clean_session_forgets_and_qos0_subscription_downgrades(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    inputs = [("devices/cleandev/modules/m/inputs/#", 0)]
    identity, client = online(harness, open_clients, "cleandev", "m", clean=True, subscribe=inputs)
    assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"q0")
    message = client.recv()
    assert isinstance(message, Publish) and message.qos == 0 and message.packet_id is None
    client.close()
    time.sleep(0.3)
    assert not harness.call(harness.gateway.is_connected, identity)
    assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"lost") is False


def test_a_resumed_session_is_announced_with_its_subscriptions(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    """The SDK does not subscribe again after a reconnect: the handler hears which filters still hold."""
    filters = [("devices/resdev/modules/m/inputs/#", 1), ("$iothub/methods/POST/#", 0)]
    identity, client = online(harness, open_clients, "resdev", "m", subscribe=filters)
    client.close()
    online(harness, open_clients, "resdev", "m")
    while True:  # the harness is shared: skip other tests' events
        kind, who, resumed = harness.handler.events.get(timeout=5)
        if kind == "resumed" and who == identity:
            break
    assert sorted(resumed) == sorted(f for f, _ in filters)


def test_a_clean_connect_drops_a_persistent_session(harness: GatewayHarness, open_clients: list[RawClient]) -> None:
    inputs = [("devices/dropdev/modules/m/inputs/#", 1)]
    identity, client = online(harness, open_clients, "dropdev", "m", subscribe=inputs)
    client.close()
    time.sleep(0.3)
    assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"queued")
    _, fresh = online(harness, open_clients, "dropdev", "m", clean=True)
    with pytest.raises(TimeoutError):
        fresh.recv(timeout=0.3)
    assert harness.call(harness.gateway.pending_count, identity) == 0


def test_offline_persistent_sessions_expire_when_configured(
    harness: GatewayHarness, open_clients: list[RawClient]
) -> None:
    assert harness.gateway is not None
    harness.gateway.session_expiry = 0.5
    try:
        inputs = [("devices/expdev/modules/m/inputs/#", 1)]
        identity, client = online(harness, open_clients, "expdev", "m", subscribe=inputs)
        client.close()
        deadline = time.monotonic() + 5
        while harness.call(harness.gateway.is_connected, identity) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"kept for now")
        time.sleep(0.7)
        assert harness.call(harness.gateway.deliver_input, identity, "in", {}, b"too late") is False
        again = raw(harness, open_clients)
        ack = again.connect(identity.client_id, username(identity), token(harness, identity))
        assert (ack.return_code, ack.session_present) == (0, False)
        with pytest.raises(TimeoutError):
            again.recv(timeout=0.3)
    finally:
        harness.gateway.session_expiry = None



def test_packets_arriving_with_the_tls_close_notify_still_count(harness: GatewayHarness) -> None:
    """A client that publishes and closes TLS at once (the Node SDK after its last PUBACK): the server reads the
    packet and the close_notify in one go and must handle the packet before closing."""
    identity = Identity("closer", "m")
    harness.keys[identity] = generate_key()
    ctx = ssl.create_default_context(cafile=str(harness.ca_file))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=harness.host)
    with socket.create_connection((harness.host, 8883), timeout=5) as tcp:

        def exchange() -> None:
            if outgoing.pending:
                tcp.sendall(outgoing.read())
            incoming.write(tcp.recv(65536))

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                exchange()
        tls.write(encode(Connect(identity.client_id, True, 60, username(identity),
                                 token(harness, identity).encode())))
        reader = PacketReader()
        while True:
            try:
                if reader.feed(tls.read(65536)):
                    break
            except ssl.SSLWantReadError:
                exchange()
        topic = f"devices/{identity.device_id}/modules/{identity.module_id}/messages/events/"
        tls.write(encode(Publish(topic, b"said while closing", 1, 9)))
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()
        tcp.sendall(outgoing.read())  # the PUBLISH and the close_notify in one write
        got = []
        deadline = time.monotonic() + 5
        while not any(who == identity for who, _ in got) and time.monotonic() < deadline:
            got.append(harness.handler.telemetry.get(timeout=5))  # earlier tests may have left some
    assert [m.payload for who, m in got if who == identity] == [b"said while closing"]
