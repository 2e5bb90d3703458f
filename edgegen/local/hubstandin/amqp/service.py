"""IoT Hub's own AMQP nodes: ``$cbs`` (put-token), ``/messages/devicebound`` (cloud-to-device messages in)
and ``/messages/servicebound/feedback`` (their feedback out)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import unquote

from proton import Message

from edgegen.local.hubstandin.amqp.links import ACCEPTED, InboundLink, OutboundLink, Rejected
from edgegen.local.hubstandin.amqp.requests import RequestNode
from edgegen.local.hubstandin.errors import HubError, InvalidArgument, NotFound, QueueFull, Unauthorized

__all__ = ["CbsNode", "CloudToDeviceSender", "FeedbackReader"]

FEEDBACK_CONTENT_TYPE = "application/vnd.microsoft.iothub.feedback.json"
_CONDITIONS: list[tuple[type[HubError], str]] = [
    (Unauthorized, "amqp:unauthorized-access"), (NotFound, "amqp:not-found"),
    (QueueFull, "amqp:resource-limit-exceeded"), (InvalidArgument, "amqp:invalid-field")]


class CbsNode(RequestNode):
    node = "$cbs"

    def handle(self, props: dict[str, Any], message: Message) -> tuple[int, str, Any]:
        if props.get("operation") != "put-token":
            raise InvalidArgument(f"$cbs operation {props.get('operation')!r} is not supported (only put-token)")
        token = message.body
        if isinstance(token, bytes):
            token = token.decode("utf-8", "replace")
        if not isinstance(token, str):
            raise InvalidArgument("put-token needs the token as a string body")
        claim = self.conn.endpoint.verifier.verify(token)
        self.conn.claims.add(str(props.get("name") or claim.resource), claim)
        return 200, "OK", None


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, default=str).encode()


def _device_of(to: str | None) -> str:
    parts = (to or "").strip("/").split("/")
    if len(parts) != 4 or parts[0] != "devices" or parts[2:] != ["messages", "devicebound"] or not parts[1]:
        raise InvalidArgument(f"'to' is {to!r}; it must be /devices/{{deviceId}}/messages/devicebound")
    return unquote(parts[1])


class CloudToDeviceSender(InboundLink):
    """The service sends here; each message goes to its device's queue, or is rejected saying why."""

    def on_message(self, message: Message, delivery: Any) -> str | None:
        try:
            self.conn.claims.require("ServiceConnect", "sending cloud-to-device messages")
            device_id = _device_of(message.address)
            props = {str(k): str(v) for k, v in (message.properties or {}).items()}
            ack = props.pop("iothub-ack", "none")
            system = {"to": message.address or ""}
            for name, value in (("correlation_id", message.correlation_id), ("content_type", message.content_type),
                                ("content_encoding", message.content_encoding),
                                ("user_id", message.user_id.decode("utf-8", "replace") if message.user_id else None)):
                if value:
                    system[name] = str(value)
            expiry = float(message.expiry_time) if message.expiry_time else None
            self.conn.endpoint.backend.c2d.send(
                device_id, _body_bytes(message.body), message_id=str(message.id) if message.id else None,
                ack=ack, properties=props, system=system, expiry=expiry)
        except HubError as exc:
            condition = next((c for cls, c in _CONDITIONS if isinstance(exc, cls)), "amqp:internal-error")
            raise Rejected(condition, f"{exc.code}: {exc.message}") from None
        return ACCEPTED


class FeedbackReader(OutboundLink):
    """Feedback records in batches; a batch is gone once accepted (or rejected), back in the queue otherwise."""

    def on_open(self) -> None:
        self.conn.endpoint.feedback_readers.add(self)
        super().on_open()

    def on_close(self) -> None:
        self.conn.endpoint.feedback_readers.discard(self)
        super().on_close()

    def fill(self, room: int) -> None:
        try:
            self.conn.claims.require("ServiceConnect", "reading cloud-to-device feedback")
        except Unauthorized as exc:
            self.detach("amqp:unauthorized-access", exc.message)
            return
        c2d = self.conn.endpoint.backend.c2d
        for _ in range(room):
            batch = c2d.take_feedback()
            if batch is None:
                return
            message = Message(body=json.dumps(batch.records).encode(), inferred=True, id=str(uuid.uuid4()),
                              content_type=FEEDBACK_CONTENT_TYPE, content_encoding="utf-8")
            token = batch.token
            self.send(message, lambda state, token=token: c2d.settle_feedback(
                token, consumed=state in ("accepted", "rejected")))
