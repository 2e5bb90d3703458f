"""The MQTT gateway's protocol core, sans-I/O: which session a client gets, what it may subscribe, what to send next.

No sockets, no event loop, no handler calls: the core holds the sessions (``Session``, also pure) by client id and
answers the transport's events with decisions; ``MqttGateway`` feeds it from its connections and performs the
results (CONNACK, SUBACK, PUBLISH bytes, closing the previous connection). The five behaviours that decide message
delivery live here and are unit-tested in memory (tests/local/mqtt/test_core.py):

- **session takeover**: a client id that connects again ends its previous connection's session use first
  (``end_connection``); its unacknowledged QoS 1 messages go back to the front of the queue.
- **clean session**: ``clean_session=True`` discards any stored session and starts a transient one (session present
  false); ``False`` resumes the stored one (session present true) or starts and stores a new one.
- **inflight window**: ``outgoing`` hands out at most ``max_inflight`` unacknowledged QoS 1 messages; ``acknowledge``
  frees a slot.
- **DUP redelivery**: a QoS 1 message sent again (after a reconnect) carries DUP; a first attempt never does.
- **subscribe permissions**: ``subscribe`` grants (QoS capped at 1, IoT Hub has no QoS 2) only the filters the
  identity may use (``topics.may_subscribe``); the others get SUBACK failure (0x80).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edgegen.local.mqtt.packets import SubackCode
from edgegen.local.mqtt.session import Session, SessionState
from edgegen.local.mqtt.store import SessionStore, StoredMessage
from edgegen.local.mqtt.topics import Identity, may_subscribe

__all__ = ["BrokerCore", "Outgoing", "SessionOpened", "SubscribeOutcome"]

log = logging.getLogger(__name__)
_MAX_ABSENT = 100_000  # remembered client ids without a stored session (a cache: cleared when it grows past this)


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """The result of an accepted CONNECT: the session to attach and the CONNACK's session-present flag."""

    session: Session
    present: bool


@dataclass(frozen=True, slots=True)
class SubscribeOutcome:
    """The SUBACK return codes (one per requested filter, in order) and the filters granted."""

    codes: list[int]
    granted: list[str]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One PUBLISH to send: the message, its packet id (None for QoS 0) and the DUP flag."""

    message: StoredMessage
    packet_id: int | None
    dup: bool


class BrokerCore:
    """Sessions by client id and the decisions on them. ``clock`` is monotonic seconds (injected for tests)."""

    def __init__(self, store: SessionStore, *, max_inflight: int = 100, max_queued: int = 100_000,
                 session_expiry: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.limits = {"max_inflight": max_inflight, "max_queued": max_queued}
        self.session_expiry = session_expiry  # persistent sessions offline longer than this are dropped
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self._absent: set[str] = set()  # client ids known to have no stored session

    # ------------------------------------------------------------------ sessions

    def lookup(self, identity: Identity) -> Session | None:
        """The live or stored session of ``identity`` (loaded from the store once), or None."""
        cid = identity.client_id
        session = self.sessions.get(cid)
        if session is None and cid not in self._absent:
            session = Session.restore(identity, self.store, **self.limits)
            if session is not None:
                session.offline_since = self.clock()
                self.sessions[cid] = session
            else:
                if len(self._absent) > _MAX_ABSENT:
                    self._absent.clear()
                self._absent.add(cid)
        return session

    def open_session(self, identity: Identity, clean_session: bool) -> SessionOpened:
        """An accepted CONNECT (after ``end_connection`` of any previous connection of the same client id)."""
        cid = identity.client_id
        self._absent.discard(cid)
        session = self.lookup(identity)
        if clean_session:
            if session is not None:
                session.discard()
            session = Session(identity, self.store, persistent=False, **self.limits)
            present = False
        elif session is None:
            session = Session(identity, self.store, persistent=True, **self.limits)
            session.save_subscriptions()
            present = False
        else:
            session.persistent = True
            present = True
        self.sessions[cid] = session
        session.state = SessionState.ONLINE
        return SessionOpened(session, present)

    def end_connection(self, client_id: str) -> None:
        """The client's connection is gone (closed, or taken over by a new one with the same client id)."""
        session = self.sessions.get(client_id)
        if session is None:
            return
        session.detach()
        if session.state is SessionState.ENDED:
            del self.sessions[client_id]
        else:
            session.offline_since = self.clock()

    def forget(self, identity: Identity, *, online: bool) -> None:
        """Drop ``identity``'s persistent session (a deleted identity's state must not pass to a new one)."""
        session = self.lookup(identity)
        if session is None:
            return
        if not online:
            session.discard()
            self.sessions.pop(identity.client_id, None)
            self._absent.add(identity.client_id)
        else:  # an online session is forgotten when its connection ends
            session.persistent = False
            self.store.delete(identity.client_id)

    # ------------------------------------------------------------------ subscriptions

    @staticmethod
    def subscribe(session: Session, topics: Iterable[tuple[str, int]]) -> SubscribeOutcome:
        """A SUBSCRIBE: grant what the session's identity may subscribe (QoS capped at 1), refuse the rest."""
        codes: list[int] = []
        granted: list[str] = []
        for topic_filter, qos in topics:
            if may_subscribe(session.identity, topic_filter):
                session.subscribe(topic_filter, min(qos, 1))
                codes.append(min(qos, 1))
                granted.append(topic_filter)
            else:
                codes.append(SubackCode.FAILURE)
        session.save_subscriptions()
        return SubscribeOutcome(codes, granted)

    # ------------------------------------------------------------------ messages to clients

    def enqueue(self, identity: Identity, topic: bytes, payload: bytes, qos: int, tag: str | None, *,
                online: bool) -> Session | None:
        """Queue a message for ``identity``: its session when queued, None when not (no session, expired, not
        subscribed, a QoS 0 message for an offline client, or the queue full)."""
        session = self.lookup(identity)
        if session is None or session.state is SessionState.ENDED:
            return None
        if (
            self.session_expiry is not None
            and session.state is SessionState.OFFLINE
            and self.clock() - session.offline_since > self.session_expiry
        ):
            log.info("%s: persistent session expired after %ss offline", identity, self.session_expiry)
            session.discard()
            del self.sessions[identity.client_id]
            self._absent.add(identity.client_id)
            return None
        granted = session.granted_qos(topic)
        if granted is None:
            return None
        qos = min(qos, granted)
        if not online and not (qos and session.persistent):
            return None  # nobody to send a QoS 0 message to, and no session to keep it
        if not session.enqueue(topic, payload, qos, tag):
            return None
        return session

    @staticmethod
    def outgoing(session: Session) -> list[Outgoing]:
        """The PUBLISHes that may go out now (inflight window permitting), DUP set on QoS 1 redeliveries."""
        return [Outgoing(message, pid, pid is not None and message.attempts > 1) for message, pid in session.take()]

    @staticmethod
    def acknowledge(session: Session, packet_id: int) -> StoredMessage | None:
        """A PUBACK: the acknowledged message (its inflight slot freed), or None for an unknown packet id."""
        return session.ack(packet_id)
