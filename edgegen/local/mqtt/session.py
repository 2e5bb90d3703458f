"""Per-client MQTT session state (pure; no sockets): subscriptions, the outgoing queue and QoS 1 inflight window.

A session outlives its connections when the client asked for ``clean_session=False``: subscriptions and every
QoS 1 message not yet acknowledged are kept (in the ``SessionStore``) and sent again, in order, on reconnect.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Iterator

from edgegen.local.mqtt.store import SessionStore, StoredMessage
from edgegen.local.mqtt.topics import Identity, topic_matches

__all__ = ["Session", "SessionState"]

DEFAULT_MAX_INFLIGHT = 100
DEFAULT_MAX_QUEUED = 100_000


class SessionState(enum.Enum):
    ONLINE = "online"  # a connection is attached
    OFFLINE = "offline"  # persistent session waiting for its client
    ENDED = "ended"  # clean session whose connection went away; never used again


class Session:
    """One client's state. ``persistent`` mirrors ``clean_session=False``; only then does the store see it."""

    __slots__ = (
        "_match_cache",
        "_next_pid",
        "_next_seq",
        "client_id",
        "identity",
        "inflight",
        "max_inflight",
        "max_queued",
        "offline_since",
        "persistent",
        "queue",
        "state",
        "store",
        "subscriptions",
    )

    def __init__(
        self, identity: Identity, store: SessionStore, *, persistent: bool,
        max_inflight: int = DEFAULT_MAX_INFLIGHT, max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.identity = identity
        self.client_id = identity.client_id
        self.store = store
        self.persistent = persistent
        self.state = SessionState.OFFLINE
        self.offline_since = time.monotonic()  # when the last connection went away (or the session was loaded)
        self.subscriptions: dict[str, int] = {}
        self.queue: deque[StoredMessage] = deque()
        self.inflight: dict[int, StoredMessage] = {}
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self._next_seq = 1
        self._next_pid = 1
        self._match_cache: dict[str | bytes, int | None] = {}

    @classmethod
    def restore(cls, identity: Identity, store: SessionStore, **limits: int) -> Session | None:
        """The persistent session the store holds for ``identity``, or None."""
        stored = store.load(identity.client_id)
        if stored is None:
            return None
        session = cls(identity, store, persistent=True, **limits)
        session.subscriptions = dict(stored.subscriptions)
        session.queue.extend(stored.messages)
        if stored.messages:
            session._next_seq = stored.messages[-1].seq + 1
        return session

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, topic_filter: str, qos: int) -> None:
        self.subscriptions[topic_filter] = qos
        self._match_cache.clear()

    def unsubscribe(self, topic_filter: str) -> None:
        self.subscriptions.pop(topic_filter, None)
        self._match_cache.clear()

    def save_subscriptions(self) -> None:
        if self.persistent:
            self.store.save_subscriptions(self.client_id, self.subscriptions)

    def granted_qos(self, topic: str | bytes) -> int | None:
        """The best QoS among subscriptions matching ``topic``, or None when nothing matches."""
        cache = self._match_cache
        if topic in cache:
            return cache[topic]
        text = topic.decode("utf-8", "replace") if isinstance(topic, bytes) else topic
        best: int | None = None
        for topic_filter, qos in self.subscriptions.items():
            if topic_matches(topic_filter, text) and (best is None or qos > best):
                best = qos
        if len(cache) > 4096:
            cache.clear()
        cache[topic] = best
        return best

    # ------------------------------------------------------------------ outgoing messages

    def enqueue(self, topic: bytes, payload: bytes, qos: int, tag: str | None = None) -> bool:
        """Queue a message for this client; QoS 1 ones of a persistent session go to the store. False when full.

        A ``tag``ged message is transient: never stored, dropped when the connection goes (its owner keeps it
        and sends it again), and reported by ``ack``."""
        if len(self.queue) >= self.max_queued:
            return False
        message = StoredMessage(self._next_seq, topic, payload, qos, tag=tag)
        self._next_seq += 1
        if qos and self.persistent and tag is None:
            self.store.add_message(self.client_id, message)
        self.queue.append(message)
        return True

    def take(self) -> Iterator[tuple[StoredMessage, int | None]]:
        """Messages that may be sent now (inflight window permitting), each with its packet id (None for QoS 0)."""
        queue = self.queue
        inflight = self.inflight
        while queue and len(inflight) < self.max_inflight:
            message = queue.popleft()
            message.attempts += 1
            if message.qos:
                pid = self._allocate_pid()
                inflight[pid] = message
                yield message, pid
            else:
                yield message, None

    def ack(self, packet_id: int) -> StoredMessage | None:
        """The acknowledged message, or None for an unknown packet id."""
        message = self.inflight.pop(packet_id, None)
        if message is None:
            return None
        if self.persistent and message.tag is None:
            self.store.remove_message(self.client_id, message.seq)
        return message

    def detach(self) -> None:
        """The connection is gone: unacknowledged messages go back to the front of the queue, in order."""
        if self.inflight:
            pending = sorted((m for m in self.inflight.values() if m.tag is None), key=lambda m: m.seq)
            self.inflight.clear()
            self.queue.extendleft(reversed(pending))
        if any(m.tag is not None for m in self.queue):
            self.queue = deque(m for m in self.queue if m.tag is None)
        if self.persistent:
            self.state = SessionState.OFFLINE
            self.offline_since = time.monotonic()
            # QoS 0 messages are not kept for an offline client
            if any(m.qos == 0 for m in self.queue):
                self.queue = deque(m for m in self.queue if m.qos)
        else:
            self.state = SessionState.ENDED
            self.queue.clear()

    def discard(self) -> None:
        """Forget this session everywhere (a clean_session connect)."""
        self.queue.clear()
        self.inflight.clear()
        self.subscriptions.clear()
        self._match_cache.clear()
        self.state = SessionState.ENDED
        self.store.delete(self.client_id)

    def _allocate_pid(self) -> int:
        pid = self._next_pid
        inflight = self.inflight
        for _ in range(65536):
            if pid not in inflight:
                break
            pid = pid % 65535 + 1
        self._next_pid = pid % 65535 + 1
        return pid

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.inflight)
