"""Cloud-to-device messages with IoT Hub's queue semantics, and the feedback they ask for (backend side, no wire).

Per device, a queue of at most ``MAX_QUEUE_DEPTH`` (50) messages. Each message lives until its expiry (its
``absolute-expiry-time``, else ``DEFAULT_TTL`` one hour; at most ``MAX_TTL`` two days). A delivery *locks* it
(``LOCK_SECONDS``, delivery count + 1) and the device then completes, rejects or abandons it with the lock
token; a lock that runs out counts as abandoned; past ``MAX_DELIVERY_COUNT`` deliveries the message is dead.
With ``iothub-ack`` = ``positive``/``negative``/``full`` the service gets feedback records (``Success``,
``Expired``, ``DeliveryCountExceeded``, ``Rejected``, ``Purged``) on ``/messages/servicebound/feedback``: they
are kept (store kind ``feedback``) until a receiver accepts the message carrying them.

Stored as documents: kind ``c2d`` keyed ``{device}/{seq:012}``, kind ``feedback`` keyed ``{seq:012}``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgegen.local.hubstandin.errors import InvalidArgument, NotFound, QueueFull
from edgegen.local.hubstandin.store import HubStore

__all__ = ["ACK_MODES", "C2DMessage", "CloudToDevice", "FeedbackBatch"]

MAX_QUEUE_DEPTH = 50
MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_TTL = 3600.0
MAX_TTL = 48 * 3600.0
LOCK_SECONDS = 60.0
MAX_DELIVERY_COUNT = 10
FEEDBACK_BATCH = 64
FEEDBACK_TTL = 3600.0
ACK_MODES = ("none", "positive", "negative", "full")
_WANTS = {"Success": ("positive", "full"), "Expired": ("negative", "full"), "Rejected": ("negative", "full"),
          "DeliveryCountExceeded": ("negative", "full"), "Purged": ("negative", "full")}
_DESCRIPTION = {"Success": "Success", "Expired": "Message expired", "Rejected": "Message rejected",
                "DeliveryCountExceeded": "Message delivery count exceeded", "Purged": "Message purged"}


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class C2DMessage:
    device_id: str
    seq: int
    message_id: str
    body: bytes
    properties: dict[str, str]  # application properties
    system: dict[str, str]  # correlation-id, user-id, content-type, content-encoding, to
    ack: str
    enqueued: float
    expiry: float
    delivery_count: int = 0
    lock_token: str = ""
    locked_until: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.device_id}/{self.seq:012d}"

    def to_dict(self) -> dict[str, Any]:
        return {"deviceId": self.device_id, "seq": self.seq, "messageId": self.message_id,
                "body": base64.b64encode(self.body).decode(), "properties": self.properties, "system": self.system,
                "ack": self.ack, "enqueued": self.enqueued, "expiry": self.expiry,
                "deliveryCount": self.delivery_count}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> C2DMessage:
        return cls(d["deviceId"], int(d["seq"]), d["messageId"], base64.b64decode(d["body"]),
                   dict(d["properties"]), dict(d["system"]), d["ack"], float(d["enqueued"]), float(d["expiry"]),
                   int(d.get("deliveryCount", 0)))


@dataclass
class FeedbackBatch:
    token: str
    records: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class CloudToDevice:
    """The queues and the feedback log. ``generation_of(device)`` gives the device's generation id (or raises
    ``NotFound``); listeners hear of new messages (``on_enqueued(device)``) and new feedback (``on_feedback()``)."""

    def __init__(self, store: HubStore, generation_of: Callable[[str], str],
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.generation_of = generation_of
        self.clock = clock
        self.queues: dict[str, list[C2DMessage]] = {}
        for d in sorted(store.load("c2d").values(), key=lambda d: (d["deviceId"], d["seq"])):
            self.queues.setdefault(d["deviceId"], []).append(C2DMessage.from_dict(d))
        feedback = store.load("feedback")
        self.feedback: dict[str, dict[str, Any]] = {k: feedback[k] for k in sorted(feedback)}
        self._locked_feedback: dict[str, FeedbackBatch] = {}
        start = max([m.seq for q in self.queues.values() for m in q] + [int(k) for k in self.feedback] + [0])
        self._seq = itertools.count(start + 1)
        self.enqueued_listeners: list[Callable[[str], None]] = []
        self.feedback_listeners: list[Callable[[], None]] = []

    # ---- service side ----------------------------------------------------------------------------------
    def send(self, device_id: str, body: bytes, *, message_id: str | None = None, ack: str = "none",
             properties: Mapping[str, str] | None = None, system: Mapping[str, str] | None = None,
             expiry: float | None = None) -> C2DMessage:
        self.generation_of(device_id)  # NotFound for an unknown device
        if ack not in ACK_MODES:
            raise InvalidArgument(f"iothub-ack {ack!r} is not one of {', '.join(ACK_MODES)}")
        if len(body) > MAX_MESSAGE_BYTES:
            raise InvalidArgument(f"the message is {len(body)} bytes; cloud-to-device messages hold at most "
                                  f"{MAX_MESSAGE_BYTES}", code="MessageTooLarge")
        now = self.clock()
        self._expire(device_id, now)
        queue = self.queues.setdefault(device_id, [])
        if len(queue) >= MAX_QUEUE_DEPTH:
            raise QueueFull(f"device {device_id!r} already has {MAX_QUEUE_DEPTH} cloud-to-device messages queued",
                            hint="let the device receive them, or wait for them to expire")
        if expiry is not None and expiry <= now:
            raise InvalidArgument("the message's expiry time is in the past", code="MessageExpired")
        message = C2DMessage(device_id, next(self._seq), message_id or str(uuid.uuid4()), bytes(body),
                             dict(properties or {}), dict(system or {}), ack, now,
                             min(expiry if expiry is not None else now + DEFAULT_TTL, now + MAX_TTL))
        queue.append(message)
        self.store.put("c2d", message.key, message.to_dict())
        for listener in self.enqueued_listeners:
            listener(device_id)
        return message

    def pending(self, device_id: str) -> list[C2DMessage]:
        self._expire(device_id, self.clock())
        return list(self.queues.get(device_id, []))

    def purge(self, device_id: str) -> int:
        self.generation_of(device_id)
        queue = self.queues.pop(device_id, [])
        for message in queue:
            self._finish(message, "Purged")
        return len(queue)

    # ---- device side -----------------------------------------------------------------------------------
    def lock_next(self, device_id: str, limit: int = MAX_QUEUE_DEPTH) -> list[C2DMessage]:
        """Lock up to ``limit`` deliverable messages, oldest first (delivery count + 1 each)."""
        now = self.clock()
        self._expire(device_id, now)
        out: list[C2DMessage] = []
        for message in list(self.queues.get(device_id, [])):
            if len(out) >= limit:
                break
            if message.lock_token and message.locked_until > now:
                continue
            if message.delivery_count >= MAX_DELIVERY_COUNT:
                self._remove(message, "DeliveryCountExceeded")
                continue
            message.delivery_count += 1
            message.lock_token = str(uuid.uuid4())
            message.locked_until = now + LOCK_SECONDS
            self.store.put("c2d", message.key, message.to_dict())
            out.append(message)
        return out

    def complete(self, device_id: str, lock_token: str) -> C2DMessage:
        message = self._locked(device_id, lock_token)
        self._remove(message, "Success")
        return message

    def reject(self, device_id: str, lock_token: str) -> C2DMessage:
        message = self._locked(device_id, lock_token)
        self._remove(message, "Rejected")
        return message

    def abandon(self, device_id: str, lock_token: str) -> C2DMessage:
        message = self._locked(device_id, lock_token)
        message.lock_token, message.locked_until = "", 0.0
        for listener in self.enqueued_listeners:
            listener(device_id)
        return message

    def release_locks(self, device_id: str) -> int:
        """The device went away: what it held locked may be delivered again (counts stay)."""
        released = 0
        for message in self.queues.get(device_id, []):
            if message.lock_token:
                message.lock_token, message.locked_until = "", 0.0
                released += 1
        return released

    def _locked(self, device_id: str, lock_token: str) -> C2DMessage:
        for message in self.queues.get(device_id, []):
            if message.lock_token and message.lock_token == lock_token:
                if message.locked_until <= self.clock():
                    break
                return message
        raise NotFound(f"no locked cloud-to-device message {lock_token!r} for device {device_id!r}",
                       code="DeviceMessageLockLost", hint="the lock expired or the message was settled already")

    def _expire(self, device_id: str, now: float) -> None:
        for message in [m for m in self.queues.get(device_id, []) if m.expiry <= now]:
            self._remove(message, "Expired")

    def _remove(self, message: C2DMessage, status: str) -> None:
        queue = self.queues.get(message.device_id, [])
        if message in queue:
            queue.remove(message)
        if not queue:
            self.queues.pop(message.device_id, None)
        self._finish(message, status)

    def _finish(self, message: C2DMessage, status: str) -> None:
        self.store.delete("c2d", message.key)
        if message.ack not in _WANTS[status]:
            return
        try:
            generation = self.generation_of(message.device_id)
        except NotFound:
            generation = ""
        record = {"originalMessageId": message.message_id, "description": _DESCRIPTION[status],
                  "deviceGenerationId": generation, "deviceId": message.device_id,
                  "enqueuedTimeUtc": _iso(self.clock()), "statusCode": status}
        key = f"{next(self._seq):012d}"
        self.feedback[key] = record
        self.store.put("feedback", key, record)
        for listener in self.feedback_listeners:
            listener()

    # ---- feedback ----------------------------------------------------------------------------------------
    def take_feedback(self, limit: int = FEEDBACK_BATCH) -> FeedbackBatch | None:
        """Lock up to ``limit`` feedback records into one batch (one AMQP message), or None when there are none."""
        cutoff = _iso(self.clock() - FEEDBACK_TTL)
        locked = {k for b in self._locked_feedback.values() for k in b.keys}
        batch = FeedbackBatch(str(uuid.uuid4()))
        for key, record in list(self.feedback.items()):
            if key in locked:
                continue
            if record["enqueuedTimeUtc"] < cutoff:  # nobody read it within its time to live
                self._drop_feedback(key)
                continue
            batch.records.append(record)
            batch.keys.append(key)
            if len(batch.keys) >= limit:
                break
        if not batch.keys:
            return None
        self._locked_feedback[batch.token] = batch
        return batch

    def settle_feedback(self, token: str, consumed: bool) -> None:
        """``consumed``: accepted or rejected, the records go; else (released) they may be read again."""
        batch = self._locked_feedback.pop(token, None)
        if batch is None:
            return
        if consumed:
            for key in batch.keys:
                self._drop_feedback(key)
        else:
            for listener in self.feedback_listeners:
                listener()

    def _drop_feedback(self, key: str) -> None:
        self.feedback.pop(key, None)
        self.store.delete("feedback", key)
