"""Watching device-to-cloud messages, with output shaped like ``az iot hub monitor-events``.

- The local stand-in: paho-mqtt on its live feed (see ``edgegen.local.hubstandin.feed``): TLS with the
  stand-in's CA, signed with the service policy key of the connection string, persistent session, QoS 1.
  Messages come in ``seq`` order; one seen before (QoS 1 may deliver again after a reconnect) is skipped. The
  inbox is bounded (``INBOX``): when the terminal is slower than the feed, paho's thread waits, stops
  acknowledging, and the hub holds the rest in its store (flow control, nothing dropped). Messages retention
  removed before they were read arrive as a gap notice: counted in ``missed``, and ``run_monitor`` raises
  ``MissedMessages`` at the end (the CLI exits non-zero, saying how to re-read what is still stored).
- Azure: the Event Hub-compatible endpoint with ``azure-eventhub`` (optional extra, imported lazily), see
  ``edgegen.hub.eventhub``.

Each event becomes ``{"event": {"origin", "module", "interface", "component", "properties"?, "payload"}}``.
"""

from __future__ import annotations

import json
import queue
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

from edgegen.common.sas import generate_sas_token
from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError
from edgegen.hub.events import FeedMessage, MonitorFilter, format_event
from edgegen.local.hubstandin import MQTT_PORT, feed_client_id, feed_resource, feed_session, feed_topic

__all__ = [
    "INBOX", "FeedMessage", "LocalFeed", "MissedMessages", "MonitorFilter", "format_event", "run_monitor",
    "show_messages"]

INBOX = 1000  # messages received and not yet shown before paho's thread waits (and acknowledges no more)


class MissedMessages(HubClientError):
    """Retention removed messages before this monitor read them (printed after everything that did arrive)."""

    def __init__(self, missed: int, gaps: list[tuple[int, int]]) -> None:
        spans = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in gaps[:5]) + (" …" if len(gaps) > 5 else "")
        super().__init__(f"missed {missed} messages (seq {spans}): the hub's retention removed them before this "
                         "monitor read them",
                         hint="re-read what is still stored with 'edgegen monitor --from <time>'; keep more with "
                              "'edgegen hub serve --retention-mb/--retention-days'")
        self.missed = missed
        self.gaps = gaps


class LocalFeed:
    """The stand-in's live feed through paho-mqtt. ``with LocalFeed(target) as feed: for m in feed.messages(…)``."""

    def __init__(self, target: HubTarget, *, from_start: bool = False, after_seq: int | None = None,
                 since_ms: int | None = None) -> None:
        parts = dict(p.split("=", 1) for p in target.connection_string.split(";") if "=" in p)
        self.target = target
        self.key = parts["SharedAccessKey"]
        self.policy = parts.get("SharedAccessKeyName") or None  # the hub checks that policy's rights
        self.session = feed_session(from_start=from_start, after_seq=after_seq, since_ms=since_ms)
        self.inbox: queue.Queue[bytes] = queue.Queue(maxsize=INBOX)
        self.subscribed = queue.Queue[int]()
        self.last_seq = after_seq or 0
        self.missed = 0
        self.gaps: list[tuple[int, int]] = []
        self.connect_error: str | None = None
        self._client: Any = None
        self._closing = False

    def _on_message(self, payload: bytes) -> None:
        """On paho's thread: wait while the inbox is full (paho then reads and acknowledges nothing more)."""
        while not self._closing:
            try:
                self.inbox.put(payload, timeout=0.5)
                return
            except queue.Full:
                continue

    def __enter__(self) -> LocalFeed:
        import paho.mqtt.client as mqtt

        host = self.target.device_host_name
        client_id = feed_client_id(self.session)
        topic = feed_topic(self.session)
        resource = feed_resource(host, self.session)
        client = mqtt.Client(client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311)
        client.username_pw_set(f"{host}/{client_id}/?api-version=2019-10-01",
                               generate_sas_token(resource, self.key, ttl=24 * 3600, key_name=self.policy))
        client.tls_set_context(ssl.create_default_context(cafile=self.target.ca_file))
        client.reconnect_delay_set(0.5, 5)

        def on_connect(c: Any, userdata: Any, flags: Any, rc: int) -> None:
            if rc == 0:
                c.subscribe(topic, qos=1)
            else:
                self.connect_error = mqtt.connack_string(rc)

        client.on_connect = on_connect
        client.on_subscribe = lambda c, u, mid, granted: self.subscribed.put(mid)
        client.on_message = lambda c, u, msg: self._on_message(msg.payload)
        try:
            client.connect(host, MQTT_PORT, keepalive=30)
        except OSError as exc:
            raise HubClientError(f"cannot reach the local hub's live feed at {host}:{MQTT_PORT} ({exc})",
                                 hint="is 'edgegen hub serve' running (with MQTT)?") from None
        client.loop_start()
        self._client = client
        self._topic = topic
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.connect_error:
                raise HubClientError(f"the local hub refused the monitor: {self.connect_error}",
                                     hint="check the connection string's key; its policy needs the ServiceConnect "
                                     "right (iothubowner and service have it)")
            try:
                self.subscribed.get(timeout=0.1)
                return
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise HubClientError("the local hub's live feed did not answer",
                                         hint="is 'edgegen hub serve' running (with MQTT)?") from None

    def messages(self, timeout: float | None) -> Iterator[FeedMessage]:
        """New messages, each once, until ``timeout`` seconds pass without one (None: forever)."""
        while True:
            message = self.next_message(timeout)
            if message is None:
                return
            yield message

    def next_message(self, timeout: float | None) -> FeedMessage | None:
        """The next new message, or None when ``timeout`` seconds pass without one (None: wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                raw = self.inbox.get(timeout=wait)
            except queue.Empty:
                return None
            envelope = json.loads(raw)
            seq = int(envelope.get("seq") or 0)
            if seq <= self.last_seq:
                continue  # delivered again after a reconnect
            gap = envelope.get("gap")
            if gap is not None:  # retention removed these before they were read
                first = max(int(gap["first"]), self.last_seq + 1)
                self.missed += seq - first + 1
                self.gaps.append((first, seq))
                self.last_seq = seq
                continue
            self.last_seq = seq
            return FeedMessage.from_dict(envelope)

    def __exit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._closing = True  # paho's thread stops waiting for room in the inbox
        try:  # no subscription left: the hub forgets this monitor's session
            info = client.unsubscribe(self._topic)
            info_wait = getattr(info, "wait_for_publish", None)
            if callable(info_wait):
                info_wait(1.0)
            else:
                time.sleep(0.1)
        finally:
            client.disconnect()
            client.loop_stop()


def run_monitor(target: HubTarget, filt: MonitorFilter, *, timeout: float | None, count: int | None,
                from_start: bool, on_event: Callable[[dict[str, Any]], None],
                eventhub_connection_string: str | None = None, consumer_group: str = "$Default",
                since_ms: int | None = None, warn: Callable[[str], None] | None = None) -> int:
    """Hand each event (``format_event``'s dict) to ``on_event`` until ``count`` or ``timeout`` seconds pass with
    nothing new; return how many were handed over. Rendering them is the caller's (``edgegen.cli.output``).

    ``since_ms``: start from the first message enqueued at or after that time (epoch ms; the stand-in's live
    feed). Raises ``MissedMessages`` at the end when retention removed messages before they could be shown.

    An Azure hub, or any hub given an Event Hub-compatible connection string (argument or
    ``IOTHUB_EVENTHUB_CONNECTION_STRING``), is read with azure-eventhub; the local stand-in otherwise through
    its live feed (the fast path)."""
    import os

    eventhub_cs = eventhub_connection_string or os.environ.get("IOTHUB_EVENTHUB_CONNECTION_STRING")
    if eventhub_cs or (not target.is_local and not target.host_name.startswith("127.")):
        if since_ms is not None:
            raise HubClientError("--from works with the local stand-in's live feed only",
                                 hint="drop --eventhub-connection-string, or read the Event Hub-compatible endpoint "
                                      "from a time with an Event Hubs client")
        from edgegen.hub.eventhub import monitor_eventhub

        return monitor_eventhub(target, filt, timeout=timeout, count=count, on_event=on_event,
                                connection_string=eventhub_cs, consumer_group=consumer_group,
                                from_start=from_start)
    with LocalFeed(target, from_start=from_start, since_ms=since_ms) as feed:
        feed.wait_ready()
        shown = show_messages(feed, filt, timeout=timeout, count=count, on_event=on_event, warn=warn)
    if feed.missed:
        raise MissedMessages(feed.missed, feed.gaps)
    return shown


def show_messages(feed: Any, filt: MonitorFilter, *, timeout: float | None, count: int | None,
                  on_event: Callable[[dict[str, Any]], None], warn: Callable[[str], None] | None = None) -> int:
    """Hand over (as events) the feed's messages that ``filt`` keeps until ``count`` are shown or ``timeout``
    seconds pass since the last one shown (messages that -d/-m filter out do not extend it, as with az iot hub
    monitor-events)."""
    shown = missed = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        message = feed.next_message(None if deadline is None else deadline - time.monotonic())
        if message is None:
            break
        if getattr(feed, "missed", 0) != missed:
            if warn is not None:
                warn(f"missed {feed.missed - missed} messages: the hub's retention removed them before they were "
                     "read")
            missed = feed.missed
        if not filt.matches(message):
            continue
        on_event(format_event(message, filt))
        shown += 1
        if count is not None and shown >= count:
            break
        deadline = None if timeout is None else time.monotonic() + timeout
    return shown
