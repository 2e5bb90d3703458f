"""The broker side of one module's IoT Hub conversation, for tests: twin, methods, inputs and outputs over paho.

The device SDK waits forever for twin replies, so a test that runs a module against a bare Mosquitto needs
someone to answer ``$iothub/twin/GET`` and reported PATCHes. This responder does that and also lets the test
push desired patches, invoke direct methods, publish to the module's inputs and collect what it sends.
Topic and property formats follow notes/azure-contracts.md §1.
"""

from __future__ import annotations

import copy
import itertools
import json
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import paho.mqtt.client as mqtt

__all__ = ["IoTHubResponder", "OutputMessage", "decode_property_bag", "encode_property_bag", "run_responder"]


def encode_property_bag(properties: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in properties.items())


def decode_property_bag(bag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in bag.split("&"):
        if part:
            key, _, value = part.partition("=")
            out[unquote(key)] = unquote(value)
    return out


@dataclass(frozen=True)
class OutputMessage:
    """A message the module sent: ``output`` from ``$.on`` (None when sent without one)."""

    topic: str
    output: str | None
    properties: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Client(mqtt.Client):
    """paho 1.6 lets an ``ssl.SSLError`` on an established TLS connection (EOF when the broker stops, BAD_LENGTH
    after a broken write) kill its network thread; the responder must survive broker restarts, so such an error is
    the lost connection it is (paho then reconnects)."""

    def _sock_send(self, buf: bytes) -> int:
        try:
            return super()._sock_send(buf)  # type: ignore[misc]
        except ssl.SSLError as exc:
            raise ConnectionResetError(str(exc)) from exc

    def _sock_recv(self, bufsize: int) -> bytes:
        try:
            return super()._sock_recv(bufsize)  # type: ignore[misc]
        except ssl.SSLError as exc:
            raise ConnectionResetError(str(exc)) from exc


@dataclass
class IoTHubResponder:
    host: str
    port: int
    ca_file: Path | None
    device_id: str
    module_id: str
    desired: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    reported_patches: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[OutputMessage] = field(default_factory=list)
    twin_gets: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._desired_version = 1
        self._reported_version = 1
        self._method_replies: dict[str, queue.Queue[tuple[int, Any]]] = {}
        self._rids = itertools.count(1)
        # A persistent session: what the module sends while we reconnect (after a broker restart) waits for us.
        self._client = _Client(client_id=f"responder-{uuid.uuid4().hex[:8]}", clean_session=False)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        if self.ca_file is not None:
            self._client.tls_set_context(ssl.create_default_context(cafile=str(self.ca_file)))
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()

    @property
    def prefix(self) -> str:
        return f"devices/{self.device_id}/modules/{self.module_id}"

    # -- lifetime ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("responder could not subscribe on the broker")

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([("$iothub/#", 1), (f"{self.prefix}/messages/events/#", 1)])

    # -- paho thread ------------------------------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic.startswith("$iothub/twin/GET/"):
            rid = self._rid(topic)
            with self._lock:
                self.twin_gets += 1
                doc = {"desired": {**self.desired, "$version": self._desired_version},
                       "reported": {**self.reported, "$version": self._reported_version}}
                self._lock.notify_all()
            client.publish(f"$iothub/twin/res/200/?$rid={rid}", json.dumps(doc), qos=1)
        elif topic.startswith("$iothub/twin/PATCH/properties/reported/"):
            rid = self._rid(topic)
            patch = json.loads(msg.payload)
            with self._lock:
                self._reported_version += 1
                _merge(self.reported, patch)
                self.reported_patches.append(patch)
                version = self._reported_version
                self._lock.notify_all()
            client.publish(f"$iothub/twin/res/204/?$rid={rid}&$version={version}", b"", qos=1)
        elif topic.startswith("$iothub/methods/res/"):
            status = int(topic.split("/")[3])
            rid = self._rid(topic)
            box = self._method_replies.get(rid)
            if box is not None:
                box.put((status, json.loads(msg.payload) if msg.payload else None))
        elif topic.startswith(f"{self.prefix}/messages/events/"):
            bag = decode_property_bag(topic[len(f"{self.prefix}/messages/events/"):])
            with self._lock:
                self.outputs.append(OutputMessage(topic, bag.get("$.on"), bag, bytes(msg.payload)))
                self._lock.notify_all()

    @staticmethod
    def _rid(topic: str) -> str:
        query = topic.split("?", 1)[1]
        return decode_property_bag(query)["$rid"]

    # -- test side --------------------------------------------------------------------------------------------------
    def push_desired(self, patch: dict[str, Any]) -> None:
        with self._lock:
            self._desired_version += 1
            _merge(self.desired, patch)
            version = self._desired_version
        body = json.dumps({**patch, "$version": version})
        topic = f"$iothub/twin/PATCH/properties/desired/?$version={version}"
        self._client.publish(topic, body, qos=1).wait_for_publish()

    def invoke_method(self, name: str, payload: Any, timeout: float = 15.0) -> tuple[int, Any]:
        rid = str(next(self._rids))
        box: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._method_replies[rid] = box
        try:
            self._client.publish(f"$iothub/methods/POST/{name}/?$rid={rid}", json.dumps(payload), qos=1)
            return box.get(timeout=timeout)
        finally:
            self._method_replies.pop(rid, None)

    def send_input(self, input_name: str, body: bytes | str, properties: dict[str, str] | None = None,
                   wait: bool = True) -> mqtt.MQTTMessageInfo:
        """Publish to the module's input like edgeHub does; system keys (``$.mid``, ``$.ct`` …) go in ``properties``.
        ``wait=False`` returns without waiting for the broker's PUBACK (bursts: wait on the last one)."""
        bag = encode_property_bag(properties or {})
        data = body.encode() if isinstance(body, str) else body
        info = self._client.publish(f"{self.prefix}/inputs/{input_name}/{bag}", data, qos=1)
        if wait:
            info.wait_for_publish()
        return info

    def wait_until(self, check: Callable[[IoTHubResponder], Any], timeout: float = 15.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = check(self)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; "
                                         f"outputs={self.outputs[-5:]!r} reported={self.reported!r}")
                self._lock.wait(left)

    def outputs_on(self, output: str | None) -> list[OutputMessage]:
        with self._lock:
            return [m for m in self.outputs if m.output == output]

    def wait_output(self, output: str | None, count: int = 1, timeout: float = 15.0) -> list[OutputMessage]:
        """The messages sent on ``output`` so far, once there are at least ``count`` of them."""
        return self.wait_until(
            lambda r: (found,) if len(found := [m for m in r.outputs if m.output == output]) >= count else None,
            timeout, f"{count} message(s) on output {output!r}")[0]

    def wait_reported(self, check: Callable[[dict[str, Any]], Any], timeout: float = 15.0) -> Any:
        return self.wait_until(lambda r: check(r.reported), timeout, "reported properties")


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Twin patch semantics: nested merge, null deletes."""
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@contextmanager
def run_responder(broker: Any, device_id: str, module_id: str, desired: dict[str, Any] | None = None,
                  ) -> Iterator[IoTHubResponder]:
    """A started responder on ``broker`` (a ``tests.support.mosquitto.MosquittoBroker``)."""
    responder = IoTHubResponder(broker.host, broker.port, broker.ca_file, device_id, module_id, dict(desired or {}))
    responder.start()
    try:
        yield responder
    finally:
        responder.stop()
