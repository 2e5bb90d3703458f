"""The live feed's server side: one cursor per monitor over the message store, with a window (flow control).

Contract for clients: ``edgegen.local.hubstandin.feed``. Each monitor has ``acked`` (the last ``seq`` it
acknowledged, saved in the hub store under kind ``monitor``) and ``sent`` (the last ``seq`` handed to its
connection). While ``sent - acked < FEED_WINDOW``, messages go out: straight from the batch just stored when the
monitor is caught up, else read from the store. Deliveries are tagged with their ``seq`` (transient: not kept in
the MQTT session), so the PUBACK moves ``acked`` on (``on_delivered``) and a reconnect starts again after
``acked``. Memory per monitor is bounded by the window whatever its speed; a paused monitor costs nothing but
the messages it has not read yet, which the store keeps (until retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from edgegen.local.hubstandin.feed import (
    FEED_DEVICE,
    FEED_INPUT,
    FEED_WINDOW,
    feed_envelope,
    feed_gap_envelope,
    feed_since,
    feed_start,
)
from edgegen.local.hubstandin.store import HubStore, StoredMessage
from edgegen.local.mqtt.topics import Identity

__all__ = ["FeedDelivery", "LiveFeed"]

log = logging.getLogger(__name__)

KIND = "monitor"
SAVE_EVERY = 1.0  # seconds between cursor saves while acknowledgements come in
FORGET_AFTER = 24 * 3600.0  # a monitor not seen for this long is forgotten
_READ = 500  # messages read from the store at a time
_PROPS = {"$.ct": "application/json"}


class FeedDelivery(Protocol):
    """The part of the MQTT gateway the feed uses."""

    def deliver_input(self, identity: Identity, input_name: str, properties: dict[str, str], payload: bytes,
                      qos: int = 1, tag: str | None = None) -> bool: ...

    def is_subscribed(self, identity: Identity, topic: str) -> bool: ...


@dataclass
class _Monitor:
    identity: Identity
    acked: int
    sent: int
    online: bool = False
    saved: int = -1


class LiveFeed:
    def __init__(self, store: HubStore, gateway: FeedDelivery) -> None:
        self.store = store
        self.gateway = gateway
        self._monitors: dict[str, _Monitor] = {}
        self._save_handle: asyncio.TimerHandle | None = None
        now = time.time()
        for key, doc in store.load(KIND).items():
            seen = float(doc.get("seen") or 0) if isinstance(doc, dict) else 0.0
            if "cursor" not in doc or now - seen > FORGET_AFTER:
                store.delete(KIND, key)
                continue
            cursor = int(doc["cursor"])
            self._monitors[key] = _Monitor(Identity(FEED_DEVICE, key), cursor, cursor, saved=cursor)

    @staticmethod
    def _probe(key: str) -> str:
        return f"devices/{FEED_DEVICE}/modules/{key}/inputs/{FEED_INPUT}/"

    # ---- monitors come and go ------------------------------------------------------------------------------
    def attach(self, key: str) -> None:
        """A monitor subscribed (or resumed its session): start, or go on after what it acknowledged."""
        monitor = self._monitors.get(key)
        if monitor is None:
            after = feed_start(key)
            since = feed_since(key)
            if since is not None:
                after = self.store.first_seq_since(since) - 1
            elif after is None:
                after = self.store.last_seq()
            elif after == 0:  # everything still stored: what retention removed earlier is not missed
                first = self.store.messages(0, 1)
                after = first[0].seq - 1 if first else self.store.last_seq()
            monitor = self._monitors[key] = _Monitor(Identity(FEED_DEVICE, key), after, after)
            self._save(key, monitor)
        monitor.online = True
        monitor.sent = monitor.acked  # what was on its way went with the old connection
        self.pump(key)

    def detach(self, key: str) -> None:
        """The monitor's connection went; forget it when it also gave up its subscription."""
        monitor = self._monitors.get(key)
        if monitor is None:
            return
        monitor.online = False
        monitor.sent = monitor.acked
        if self.gateway.is_subscribed(monitor.identity, self._probe(key)):
            self._save(key, monitor)
        else:
            del self._monitors[key]
            self.store.delete(KIND, key)

    def on_delivered(self, key: str, tag: str) -> None:
        monitor = self._monitors.get(key)
        if monitor is None or not tag.isdigit():
            return
        seq = int(tag)
        if seq > monitor.acked:
            monitor.acked = seq
            self._schedule_save()
        if monitor.online and monitor.sent - monitor.acked <= FEED_WINDOW // 2:
            self.pump(key)

    # ---- messages ------------------------------------------------------------------------------------------
    def on_stored(self, batch: list[StoredMessage]) -> None:
        """New messages: caught-up monitors get them from here, the others read them from the store later."""
        if not batch or not self._monitors:
            return
        first = batch[0].seq
        payloads: list[bytes] | None = None
        for key, monitor in list(self._monitors.items()):
            if not monitor.online or monitor.sent != first - 1:
                continue
            if payloads is None:
                payloads = [feed_envelope(m) for m in batch]
            for message, payload in zip(batch, payloads, strict=True):
                if monitor.sent - monitor.acked >= FEED_WINDOW:
                    break
                if not self._deliver(key, monitor, payload, message.seq):
                    break

    def pump(self, key: str) -> None:
        """Fill the monitor's window from the store."""
        monitor = self._monitors.get(key)
        while monitor is not None and monitor.online and monitor.sent - monitor.acked < FEED_WINDOW:
            room = FEED_WINDOW - (monitor.sent - monitor.acked)
            batch = self.store.messages(monitor.sent, min(_READ, room))
            if not batch:
                return
            if batch[0].seq > monitor.sent + 1:  # retention removed these before the monitor read them
                last = batch[0].seq - 1
                if not self._deliver(key, monitor, feed_gap_envelope(monitor.sent + 1, last), last):
                    return
            for message in batch:
                if not self._deliver(key, monitor, feed_envelope(message), message.seq):
                    return

    def _deliver(self, key: str, monitor: _Monitor, payload: bytes, seq: int) -> bool:
        if not self.gateway.deliver_input(monitor.identity, FEED_INPUT, _PROPS, payload, 1, str(seq)):
            monitor.online = False  # not connected, or no longer subscribed: attach() starts it again
            monitor.sent = monitor.acked
            return False
        monitor.sent = seq
        return True

    # ---- cursors on disk -----------------------------------------------------------------------------------
    def _save(self, key: str, monitor: _Monitor) -> None:
        self.store.put(KIND, key, {"cursor": monitor.acked, "seen": time.time()})
        monitor.saved = monitor.acked

    def _schedule_save(self) -> None:
        if self._save_handle is None:
            with contextlib.suppress(RuntimeError):
                self._save_handle = asyncio.get_running_loop().call_later(SAVE_EVERY, self.save)

    def save(self) -> None:
        """Write the cursors that moved (every ``SAVE_EVERY`` seconds while they move, and at stop)."""
        self._save_handle = None
        for key, monitor in self._monitors.items():
            if monitor.acked != monitor.saved:
                self._save(key, monitor)

    def close(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
        self.save()

    def stats(self) -> list[dict[str, object]]:
        last = self.store.last_seq()
        return [{"session": key, "online": m.online, "acknowledged": m.acked, "behind": max(0, last - m.acked),
                 "inFlight": m.sent - m.acked} for key, m in self._monitors.items()]
