"""The stand-in's Event Hub-compatible endpoint read by the real azure-eventhub client (pure-Python AMQP), from
the connection string the stand-in prints, over TLS with its CA."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub import EventHubConsumerClient
from azure.eventhub._eventprocessor.in_memory_checkpoint_store import InMemoryCheckpointStore
from azure.eventhub.exceptions import AuthenticationError
from azure.iot.device import IoTHubDeviceClient, IoTHubModuleClient, Message

from edgegen.local.hubstandin.backend import partition_for

pytestmark = pytest.mark.integration


@pytest.fixture
def amqp_hub(hub_factory, tmp_path, monkeypatch):
    running, thread = hub_factory(state_dir=tmp_path / "state", mqtt=True, amqp=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    return running, thread


def consumer(running, group: str = "$Default", **kw) -> EventHubConsumerClient:
    return EventHubConsumerClient.from_connection_string(
        running.info.event_hub_connection_string, consumer_group=group, connection_verify=running.info.ca_file,
        **kw)


def receive(client: EventHubConsumerClient, want: int, timeout: float = 20.0, **kw) -> list:
    """Events until ``want`` arrived (or ``timeout``); each as (partition, event)."""
    got: list = []
    done = threading.Event()

    def on_event(ctx, event) -> None:
        if event is not None:
            got.append((ctx.partition_id, event))
            ctx.update_checkpoint(event)
        if len(got) >= want:
            done.set()

    worker = threading.Thread(target=lambda: client.receive(on_event=on_event, max_wait_time=1, **kw), daemon=True)
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    return got


def record(running, device: str, n: int, start: int = 0) -> None:
    backend = running.standin.backend
    for i in range(start, start + n):
        running.call(backend.record_message, device, None, {"i": str(i)},
                     {"message_id": f"{device}-{i}", "content_type": "application/json",
                      "iothub-message-source": "Telemetry"}, json.dumps({"i": i}).encode())


def ids(events) -> list[str]:
    return [e.body_as_str() for _, e in events]


def test_sdk_telemetry_reaches_every_partition_with_iothub_properties(amqp_hub) -> None:
    running, _ = amqp_hub
    backend = running.standin.backend
    devices = [f"d{i}" for i in range(12)]
    assert len({partition_for(d, 4) for d in devices}) == 4  # every partition gets something
    for d in devices:
        running.call(backend.put_device, d, {})
    running.call(backend.put_device, "edge1", {"capabilities": {"iotEdge": True}})
    running.call(backend.put_module, "edge1", "sensor", {})
    key = backend.devices["d0"]["authentication"]["symmetricKey"]["primaryKey"]
    ca = Path(running.info.ca_file).read_text()
    dc = IoTHubDeviceClient.create_from_connection_string(
        f"HostName={running.info.address};DeviceId=d0;SharedAccessKey={key}", server_verification_cert=ca)
    mkey = backend.modules["edge1/sensor"]["authentication"]["symmetricKey"]["primaryKey"]
    mc = IoTHubModuleClient.create_from_connection_string(
        f"HostName={running.info.address};DeviceId=edge1;ModuleId=sensor;SharedAccessKey={mkey}",
        server_verification_cert=ca)
    try:
        dc.connect()
        msg = Message('{"t": 21.5}', message_id="sdk-1", content_encoding="utf-8", content_type="application/json")
        msg.custom_properties["unit"] = "C"
        dc.send_message(msg)
        mc.connect()
        mc.send_message(Message("from a module", message_id="sdk-2"))
    finally:
        dc.shutdown()
        mc.shutdown()
    for d in devices[1:]:
        record(running, d, 1)

    client = consumer(running)
    props = client.get_eventhub_properties()
    assert props["eventhub_name"] == backend.event_hub_name and props["partition_ids"] == ["0", "1", "2", "3"]
    events = receive(client, 13, starting_position="-1")
    assert sorted({p for p, _ in events}) == ["0", "1", "2", "3"]
    by_id = {e.system_properties[b"message-id"].decode(): (p, e) for p, e in events}
    partition, sdk = by_id["sdk-1"]
    assert partition == str(partition_for("d0", 4))
    sysp = sdk.system_properties
    assert sysp[b"iothub-connection-device-id"] == b"d0"
    assert sysp[b"iothub-message-source"] == b"Telemetry"
    assert sysp[b"content-type"] == b"application/json" and sysp[b"content-encoding"] == b"utf-8"
    assert abs(sdk.enqueued_time.timestamp() - time.time()) < 120
    assert sdk.properties == {b"unit": b"C"} and sdk.body_as_json() == {"t": 21.5}
    _, module_event = by_id["sdk-2"]
    assert module_event.system_properties[b"iothub-connection-module-id"] == b"sensor"
    seqs = [e.sequence_number for p, e in events if p == partition]
    assert seqs == list(range(len(seqs)))  # per-partition sequence numbers from 0, in order
    info = consumer(running).get_partition_properties(partition)
    assert info["last_enqueued_sequence_number"] == seqs[-1] and not info["is_empty"]


def test_positions_offset_time_sequence_and_latest(amqp_hub) -> None:
    running, _ = amqp_hub
    running.call(running.standin.backend.put_device, "dev", {})
    partition = str(partition_for("dev", 4))
    record(running, "dev", 5)
    first = receive(consumer(running), 5, partition_id=partition, starting_position="-1")
    assert ids(first) == [json.dumps({"i": i}) for i in range(5)]
    third = first[2][1]
    after_offset = receive(consumer(running), 2, partition_id=partition, starting_position=third.offset)
    assert ids(after_offset) == [json.dumps({"i": i}) for i in (3, 4)]
    inclusive = receive(consumer(running), 3, partition_id=partition, starting_position=third.sequence_number,
                        starting_position_inclusive=True)
    assert ids(inclusive) == [json.dumps({"i": i}) for i in (2, 3, 4)]
    time.sleep(0.01)
    cut = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    record(running, "dev", 2, start=5)
    after_time = receive(consumer(running), 2, partition_id=partition, starting_position=cut)
    assert ids(after_time) == [json.dumps({"i": i}) for i in (5, 6)]
    latest = consumer(running)
    threading.Timer(2.0, lambda: record(running, "dev", 1, start=7)).start()
    assert ids(receive(latest, 1, partition_id=partition, starting_position="@latest")) == [json.dumps({"i": 7})]


def test_checkpoint_resume_misses_nothing_and_restart_keeps_events(amqp_hub, hub_factory, tmp_path) -> None:
    running, thread = amqp_hub
    running.call(running.standin.backend.put_device, "dev", {})
    record(running, "dev", 4)
    store = InMemoryCheckpointStore()
    first = receive(consumer(running, checkpoint_store=store), 4, starting_position="-1")
    assert len(first) == 4
    record(running, "dev", 3, start=4)  # sent while no consumer is connected
    second = receive(consumer(running, checkpoint_store=store), 3, starting_position="-1")
    assert ids(second) == [json.dumps({"i": i}) for i in (4, 5, 6)]
    thread.stop()
    restarted, _ = hub_factory(state_dir=tmp_path / "state", address=running.info.address, mqtt=True, amqp=True)
    again = receive(consumer(restarted), 7, starting_position="-1")
    assert ids(again) == [json.dumps({"i": i}) for i in range(7)]
    assert [e.sequence_number for _, e in again] == list(range(7))
    record(restarted, "dev", 1, start=7)  # numbering goes on after the restart
    latest = receive(consumer(restarted), 8, starting_position="-1")
    assert latest[-1][1].sequence_number == 7


def test_consumer_groups_and_rights(amqp_hub, caplog) -> None:
    running, _ = amqp_hub
    backend = running.standin.backend
    running.call(backend.put_device, "dev", {})
    record(running, "dev", 2)
    with caplog.at_level("INFO", logger="edgegen.local.hubstandin.amqp.connection"):
        assert receive(consumer(running, "analytics"), 1, timeout=3, starting_position="-1") == []
    assert "consumer group 'analytics' does not exist" in caplog.text
    running.call(backend.create_consumer_group, "analytics")
    assert len(receive(consumer(running, "analytics"), 2, starting_position="-1")) == 2
    assert len(receive(consumer(running, "$Default"), 2, starting_position="-1")) == 2  # groups read apart
    key = backend.policies["registryReadWrite"]["primaryKey"]
    no_service = running.info.event_hub_connection_string.replace(
        f"SharedAccessKeyName=iothubowner;SharedAccessKey={backend.policies['iothubowner']['primaryKey']}",
        f"SharedAccessKeyName=registryReadWrite;SharedAccessKey={key}")
    weak = EventHubConsumerClient.from_connection_string(no_service, consumer_group="$Default",
                                                         connection_verify=running.info.ca_file, retry_total=0)
    with pytest.raises(AuthenticationError):
        weak.get_eventhub_properties()
    weak.close()



def test_bulk_read_of_one_busy_partition_beside_idle_ones(amqp_hub) -> None:
    """A few thousand events on one partition, three partitions idle: ``edgegen monitor``'s azure-eventhub path
    gets them all, in order, without a duplicate (the synchronous client's round-robin gave ~1.6 events/s
    here: it waits 0.2 s on every idle partition before it hands over the next event of a busy one)."""
    from edgegen.hub.connection import HubTarget
    from edgegen.hub.eventhub import monitor_eventhub
    from edgegen.hub.monitor import MonitorFilter

    running, _ = amqp_hub
    backend = running.standin.backend
    total = 3000

    def bulk() -> None:
        backend.put_device("bulk", {})
        for i in range(total):
            backend.record_message("bulk", None, {}, {"message_id": f"bulk-{i}"}, json.dumps({"i": i}).encode())

    running.call(bulk)
    events: list[dict[str, Any]] = []
    result: list[int] = []
    target = HubTarget(host_name=running.info.host_name, connection_string=running.info.connection_string,
                       ca_file=running.info.ca_file, source="test")
    worker = threading.Thread(target=lambda: result.append(monitor_eventhub(
        target, MonitorFilter(), timeout=60, count=total, on_event=events.append,
        connection_string=running.info.event_hub_connection_string, from_start=True)), daemon=True)
    worker.start()
    worker.join(240)  # generous: at the old pace this would take half an hour
    assert not worker.is_alive(), f"{len(events)} of {total} events arrived"
    assert result == [total]
    assert [json.loads(e["event"]["payload"])["i"] for e in events] == list(range(total))
