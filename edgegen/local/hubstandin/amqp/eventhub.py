"""The Event Hub-compatible side of the stand-in: partition readers and the ``$management`` node.

A receiver attaches to ``{EntityPath}/ConsumerGroups/{group}/Partitions/{id}`` (with or without the
``amqps://host/`` prefix) and gets the stored device-to-cloud messages of that partition from the position its
selector filter names, then new ones as they arrive. Each event carries what IoT Hub stamps: message
annotations ``iothub-connection-device-id``, ``iothub-connection-module-id``, ``iothub-connection-auth-method``,
``iothub-enqueuedtime``, ``iothub-message-source`` and Event Hubs' ``x-opt-sequence-number``,
``x-opt-offset`` (the hub-wide sequence, as a string), ``x-opt-enqueued-time``; the message's own
properties (message id, content type and encoding …) and application properties; the body as a data section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proton import UNDESCRIBED, Array, Data, Message, int32, symbol, timestamp

from edgegen.local.hubstandin.amqp.filters import StartPosition
from edgegen.local.hubstandin.amqp.links import OutboundLink
from edgegen.local.hubstandin.amqp.requests import RequestNode
from edgegen.local.hubstandin.errors import InvalidArgument, NotFound, Unauthorized
from edgegen.local.hubstandin.store import StoredMessage

if TYPE_CHECKING:
    from edgegen.local.hubstandin.amqp.connection import AmqpConnection

__all__ = ["ManagementNode", "PartitionReader", "encode_event"]

BATCH = 300
# system property names of the store -> (AMQP properties attribute) for those that are message properties
_PROPERTY_FIELDS = {"message_id": "id", "correlation_id": "correlation_id", "user_id": "user_id",
                    "content_type": "content_type", "content_encoding": "content_encoding"}


def encode_event(m: StoredMessage) -> Message:
    annotations: dict[Any, Any] = {}
    message = Message(body=m.body, inferred=True, properties=dict(m.properties))
    for key, value in m.system_properties.items():
        attr = _PROPERTY_FIELDS.get(key)
        if attr == "user_id":
            message.user_id = str(value).encode()
        elif attr is not None:
            setattr(message, attr, str(value))
        elif key == "absolute_expiry_time":
            continue
        elif key == "iothub-enqueuedtime":
            annotations[symbol(key)] = timestamp(m.enqueued_ms)
        else:
            annotations[symbol(key)] = str(value)
    annotations[symbol("x-opt-sequence-number")] = m.pseq
    annotations[symbol("x-opt-offset")] = str(m.seq)
    annotations[symbol("x-opt-enqueued-time")] = timestamp(m.enqueued_ms)
    message.annotations = annotations
    return message


class PartitionReader(OutboundLink):
    def __init__(self, conn: AmqpConnection, link: Any, group: str, partition: int, start: StartPosition) -> None:
        super().__init__(conn, link)
        self.group = group
        self.partition = partition
        store = conn.endpoint.backend.store
        if start.kind == "start":
            self.next = store.partition_info(partition)[0]
        elif start.kind == "end":
            last = store.partition_info(partition)[1]
            self.next = (last.pseq + 1) if last else store.partition_info(partition)[0]
        elif start.kind == "offset":
            self.next = store.first_pseq(partition, after_seq=start.value - (1 if start.inclusive else 0))
        elif start.kind == "time":
            self.next = store.first_pseq(partition, after_ms=start.value - (1 if start.inclusive else 0))
        else:
            self.next = max(start.value + (0 if start.inclusive else 1), store.partition_info(partition)[0])

    def on_open(self) -> None:
        self.conn.endpoint.readers.setdefault(self.partition, set()).add(self)
        super().on_open()

    def on_close(self) -> None:
        self.conn.endpoint.readers.get(self.partition, set()).discard(self)
        super().on_close()

    def fill(self, room: int) -> None:
        try:
            self.conn.claims.require("ServiceConnect", "reading the device-to-cloud stream")
        except Unauthorized as exc:
            self.detach("amqp:unauthorized-access", str(exc))
            return
        messages = self.conn.endpoint.backend.store.partition_messages(self.partition, self.next, min(room, BATCH))
        for m in messages:
            self.send(encode_event(m))
            self.next = m.pseq + 1


class ManagementNode(RequestNode):
    """``READ`` of ``com.microsoft:eventhub`` (name, created_at, partition_count, partition_ids) and of
    ``com.microsoft:partition`` (sequence numbers, last offset and time, emptiness)."""

    node = "$management"

    def handle(self, props: dict[str, Any], message: Message) -> tuple[int, str, Any]:
        endpoint = self.conn.endpoint
        backend = endpoint.backend
        token = props.get("security_token")
        if isinstance(token, str) and token:
            self.conn.claims.add("security_token", endpoint.verifier.verify(token))
        self.conn.claims.require("ServiceConnect", "reading the Event Hub-compatible endpoint's properties")
        operation, kind, name = props.get("operation"), props.get("type"), props.get("name")
        if operation != "READ":
            raise InvalidArgument(f"management operation {operation!r} is not supported (only READ)")
        if name != backend.event_hub_name:
            raise NotFound(f"event hub {name!r} not found", hint=f"the name is {backend.event_hub_name}")
        ids = [str(p) for p in range(backend.partition_count)]
        if kind == "com.microsoft:eventhub":
            return 200, "OK", {
                "name": backend.event_hub_name, "type": "com.microsoft:eventhub",
                "created_at": timestamp(int(backend.created_at * 1000)),
                "partition_count": int32(backend.partition_count),
                "partition_ids": Array(UNDESCRIBED, Data.STRING, *ids)}
        if kind == "com.microsoft:partition":
            partition = str(props.get("partition"))
            if partition not in ids:
                raise NotFound(f"partition {partition!r} not found", hint=f"partitions are {', '.join(ids)}")
            begin, last = backend.store.partition_info(int(partition))
            return 200, "OK", {
                "name": backend.event_hub_name, "type": "com.microsoft:partition", "partition": partition,
                "begin_sequence_number": begin,
                "last_enqueued_sequence_number": last.pseq if last else begin - 1,
                "last_enqueued_offset": str(last.seq) if last else "-1",
                "last_enqueued_time_utc": timestamp(last.enqueued_ms if last else 0),
                "is_partition_empty": last is None}
        raise InvalidArgument(f"management type {kind!r} is not supported")
