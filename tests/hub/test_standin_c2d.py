"""Cloud-to-device messages through the stand-in: sent by the real azure-iot-hub service SDK (uamqp, AMQP on
5671), received by the real azure-iot-device SDK over MQTT, feedback read with uamqp as the Azure CLI does.

uamqp trusts certifi's bundle, so its tests point ``certifi.where`` at a bundle holding certifi's CAs and the
stand-in's (how a user trusts a private CA for uamqp).
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import certifi
import pytest
import uamqp
from azure.iot.device import IoTHubDeviceClient
from azure.iot.hub import IoTHubRegistryManager

from edgegen.local.hubstandin.c2d import MAX_QUEUE_DEPTH

pytestmark = pytest.mark.integration


@pytest.fixture
def c2d_hub(hub_factory, tmp_path, monkeypatch):
    running, _ = hub_factory(state_dir=tmp_path / "state", mqtt=True, amqp=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    bundle = tmp_path / "trust.pem"
    bundle.write_text(Path(certifi.where()).read_text() + Path(running.info.ca_file).read_text())
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    backend = running.standin.backend
    running.call(backend.put_device, "dev1", {})
    return running


def device_client(running, device: str = "dev1") -> IoTHubDeviceClient:
    key = running.standin.backend.devices[device]["authentication"]["symmetricKey"]["primaryKey"]
    client = IoTHubDeviceClient.create_from_connection_string(
        f"HostName={running.info.address};DeviceId={device};SharedAccessKey={key}",
        server_verification_cert=Path(running.info.ca_file).read_text())
    return client


def feedback_records(running, want: int, timeout: float = 15.0) -> list[dict]:
    """Read feedback like ``az iot hub monitor-feedback``: uamqp, SASL PLAIN with a SAS token, accept each."""
    from edgegen.common.sas import generate_sas_token

    backend = running.standin.backend
    host = running.info.host_name
    token = generate_sas_token(host, backend.policies["iothubowner"]["primaryKey"], key_name="iothubowner")
    user = "iothubowner@sas.root.localhub"
    from urllib.parse import quote_plus

    source = f"amqps://{quote_plus(user)}:{quote_plus(token)}@{host}/messages/servicebound/feedback"
    client = uamqp.ReceiveClient(source, timeout=int(timeout * 1000))
    records: list[dict] = []
    try:
        for message in client.receive_messages_iter():
            records.extend(json.loads(b"".join(message.get_data())))
            message.accept()
            if len(records) >= want:
                break
    finally:
        client.close()
    return records


def test_send_receive_properties_expiry_and_feedback(c2d_hub) -> None:
    running = c2d_hub
    registry = IoTHubRegistryManager.from_connection_string(running.info.connection_string)
    inbox: queue.Queue = queue.Queue()
    device = device_client(running)
    device.on_message_received = inbox.put
    device.connect()
    try:
        registry.send_c2d_message("dev1", '{"cmd": "on"}', properties={
            "contentType": "application/json", "contentEncoding": "utf-8", "messageId": "c2d-1",
            "correlationId": "corr-1", "iothub-ack": "full", "level": "7"})
        got = inbox.get(timeout=15)
        assert got.data == b'{"cmd": "on"}' and got.message_id == "c2d-1" and got.correlation_id == "corr-1"
        assert got.content_type == "application/json" and got.content_encoding == "utf-8"
        assert got.custom_properties == {"level": "7"} and got.ack == "full"
        assert got.expiry_time_utc  # IoT Hub's default time to live applies
    finally:
        device.shutdown()
    # an expired message is never delivered; asked for, its feedback says so
    c2d = running.standin.backend.c2d
    running.call(lambda: c2d.send("dev1", b"late", message_id="c2d-exp", ack="negative", expiry=time.time() + 0.5))
    time.sleep(0.6)
    assert running.call(running.standin.backend.c2d.pending, "dev1") == []
    records = {r["originalMessageId"]: r for r in feedback_records(running, 2)}
    assert records["c2d-1"]["statusCode"] == "Success" and records["c2d-1"]["deviceId"] == "dev1"
    assert records["c2d-exp"]["statusCode"] == "Expired"
    deadline = time.monotonic() + 5
    while running.call(lambda: dict(c2d.feedback)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.call(lambda: dict(c2d.feedback)) == {}  # accepted feedback is gone


def test_offline_device_gets_queue_in_order_and_full_queue_is_refused(c2d_hub) -> None:
    running = c2d_hub
    registry = IoTHubRegistryManager.from_connection_string(running.info.connection_string)
    for i in range(MAX_QUEUE_DEPTH):
        registry.send_c2d_message("dev1", f"m{i}")
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message("dev1", "one too many")
    with pytest.raises(Exception, match="C2D message send failure"):
        registry.send_c2d_message("ghost", "no such device")
    inbox: queue.Queue = queue.Queue()
    device = device_client(running)
    device.on_message_received = inbox.put
    device.connect()
    try:
        bodies = [inbox.get(timeout=15).data.decode() for _ in range(MAX_QUEUE_DEPTH)]
    finally:
        device.shutdown()
    assert bodies == [f"m{i}" for i in range(MAX_QUEUE_DEPTH)]
    deadline = time.monotonic() + 5
    while running.call(running.standin.backend.c2d.pending, "dev1") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.call(running.standin.backend.c2d.pending, "dev1") == []  # every PUBACK completed one


def test_c2d_needs_service_connect(c2d_hub) -> None:
    running = c2d_hub
    backend = running.standin.backend
    weak = (f"HostName={running.info.host_name};SharedAccessKeyName=registryReadWrite;"
            f"SharedAccessKey={backend.policies['registryReadWrite']['primaryKey']}")
    with pytest.raises(Exception):  # noqa: B017 - uamqp reports the refused token as a generic error
        IoTHubRegistryManager.from_connection_string(weak).send_c2d_message("dev1", "nope")
    assert running.call(backend.c2d.pending, "dev1") == []
