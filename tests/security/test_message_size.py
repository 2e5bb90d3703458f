"""IoT Hub's device-to-cloud message limit (256 KiB) at both gateways: the stand-in's MQTT (paho, its fast
telemetry path) and a device's edge hub gateway (a raw client, the handler path). A larger PUBLISH is never
acknowledged: the connection is closed and a log line names the client and the size, as IoT Hub drops it."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.local.mqtt import Identity
from edgegen.local.mqtt.codec import Puback, Publish
from edgegen.local.mqtt.gateway import MAX_TELEMETRY_BYTES
from tests.hub.conftest import HubThread
from tests.local.mqtt.harness import HUB, GatewayHarness, gateway_harness
from tests.local.mqtt.rawclient import RawClient
from tests.support.net import free_loopback_address

pytestmark = pytest.mark.integration
WAIT = 20  # seconds: a hang guard, not a speed claim


class PahoDevice:
    """A paho MQTT 3.1.1 client speaking IoT Hub's dialect; records PUBACKs and the disconnect."""

    def __init__(self, address: str, ca_file: str, device: str, key: str) -> None:
        self.acked: set[int] = set()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.changed = threading.Condition()
        self.client = mqtt.Client(client_id=device, clean_session=True, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(f"{address}/{device}/?api-version=2021-04-12",
                                    generate_sas_token(f"{address}/devices/{device}", key))
        self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.client.max_inflight_messages_set(1)
        self.client.on_connect = lambda c, u, f, rc: rc == 0 and self.connected.set()
        self.client.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.client.on_publish = self._on_publish
        self.client.connect(address, 8883)
        self.client.loop_start()
        assert self.connected.wait(WAIT)
        self.topic = f"devices/{device}/messages/events/"

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int) -> None:
        with self.changed:
            self.acked.add(mid)
            self.changed.notify_all()

    def publish(self, size: int) -> int:
        return self.client.publish(self.topic, b"x" * size, qos=1).mid

    def wait_ack(self, mid: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: mid in self.acked, WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    thread = HubThread(tmp_path / "hub", free_loopback_address(), None, mqtt=True)
    running = thread.start()
    try:
        def create() -> dict:
            return running.standin.backend.put_device("sender", {})

        device = running.call(create)
        yield running.info.address, running.info.ca_file, device["authentication"]["symmetricKey"]["primaryKey"]
    finally:
        thread.stop()


def test_standin_refuses_a_message_over_256_kib(standin: tuple[str, str, str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    address, ca_file, key = standin
    caplog.set_level(logging.INFO, logger="edgegen.local.mqtt.gateway")
    device = PahoDevice(address, ca_file, "sender", key)
    try:
        assert device.wait_ack(device.publish(MAX_TELEMETRY_BYTES))  # exactly the limit is taken
        big = device.publish(300 * 1024)
        assert device.disconnected.wait(WAIT)
        assert big not in device.acked
    finally:
        device.close()
    refusals = [r.getMessage() for r in caplog.records if "exceeds IoT Hub's limit" in r.getMessage()]
    assert refusals == [f"closing sender: a device-to-cloud message of {300 * 1024} bytes exceeds IoT Hub's "
                        f"limit of {MAX_TELEMETRY_BYTES} bytes"]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[GatewayHarness]:
    with gateway_harness(tmp_path) as h:
        yield h


def test_edge_gateway_refuses_a_message_over_256_kib(harness: GatewayHarness,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgegen.local.mqtt.gateway")
    identity = Identity("dev1", "sensor")
    harness.keys[identity] = generate_key()
    client = RawClient(harness.host, harness.ca_file)
    try:
        ack = client.connect(identity.client_id, f"{HUB}/{identity.client_id}/?api-version=2021-04-12",
                             generate_sas_token(identity.resource(HUB), harness.keys[identity]))
        assert ack.return_code == 0
        topic = f"{identity.topic_base}/messages/events/"
        client.send(Publish(topic, b"y" * 1000, qos=1, packet_id=1))
        assert client.recv() == Puback(1)
        client.send(Publish(topic, b"y" * (MAX_TELEMETRY_BYTES + 1), qos=1, packet_id=2))
        assert client.closed_by_server(WAIT)
    finally:
        client.close()
    taken = []
    while not harness.handler.telemetry.empty():
        taken.append(harness.handler.telemetry.get_nowait()[1].payload)
    assert taken == [b"y" * 1000]
    assert any(f"closing {identity}: a device-to-cloud message of {MAX_TELEMETRY_BYTES + 1} bytes" in r.getMessage()
               for r in caplog.records)
