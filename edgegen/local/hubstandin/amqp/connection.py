"""One AMQP connection: TLS and sockets from asyncio, the SASL front (``sasl.py``), then proton's engine driven
sans-I/O — bytes are pushed into a ``proton.Transport``, events read from its ``Collector``, output popped back
to the socket — so every link handler runs on the event loop, beside the rest of the stand-in.

Links are handed to handlers (``links.py``) chosen by the endpoint's router; a refused link is attached and
detached at once with an error condition, as the service does. What the connection needs of the endpoint, its
router and the handlers is written here as protocols, so that this module imports none of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from proton import Collector, Condition, Connection, Event, Transport, symbol

from edgegen.local.hubstandin.amqp.claims import ClaimsVerifier, ConnectionClaims
from edgegen.local.hubstandin.amqp.completer import FrameCompleter
from edgegen.local.hubstandin.amqp.sasl import SaslFailure, SaslInit, SaslServer
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.errors import Unauthorized

__all__ = ["AmqpConnection", "Endpoint", "LinkEvents", "LinkRefused", "ReplyTarget", "Router"]

log = logging.getLogger(__name__)
IDLE_TIMEOUT = 240.0  # seconds; proton sends empty frames to keep the peer's own idle timer happy
CONTAINER_ID = "edgegen-local-hub"


class LinkRefused(Exception):
    """Refuse a link attach with an AMQP error condition (``amqp:not-found``, ``amqp:link:redirect`` …)."""

    def __init__(self, condition: str, description: str, info: dict[Any, Any] | None = None) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description
        self.info = info


class LinkEvents(Protocol):
    """What happens on an accepted link (``links.py`` has the implementations)."""

    def on_open(self) -> None: ...
    def on_flow(self) -> None: ...
    def on_delivery(self, delivery: Any) -> None: ...
    def on_close(self) -> None: ...


class ReplyTarget(Protocol):
    """A link the peer reads ``$cbs``/``$management`` answers on (``requests.ReplyLink``)."""

    node: str
    address: str

    def send(self, message: Any, on_outcome: Any = None) -> None: ...
    def pump(self) -> None: ...


class Router(Protocol):
    def open_link(self, conn: AmqpConnection, link: Any) -> LinkEvents: ...


class Endpoint(Protocol):
    """The listener's state the connection and its link handlers share (``endpoint.AmqpEndpoint``)."""

    backend: HubBackend
    address: str
    port: int
    clock: Callable[[], float]
    verifier: ClaimsVerifier
    router: Router
    connections: set[AmqpConnection]
    readers: dict[int, set[Any]]
    feedback_readers: set[Any]


class AmqpConnection(asyncio.Protocol):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.claims = ConnectionClaims(clock=endpoint.clock)
        self.sasl = SaslServer(self._authenticate)
        self.io: asyncio.Transport | None = None
        self.conn = Connection()
        self.transport = Transport(Transport.SERVER)
        self.transport.idle_timeout = IDLE_TIMEOUT
        self.collector = Collector()
        self.conn.collect(self.collector)
        self.transport.bind(self.conn)
        self.handlers: list[LinkEvents] = []
        self.reply_links: list[ReplyTarget] = []
        self.completer = FrameCompleter()
        self._busy = False
        self._again = False
        self._deferred: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.peer = "?"

    # ---- asyncio side ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.io = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.endpoint.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.endpoint.connections.discard(self)
        for handler in list(self.handlers):
            self._drop(handler)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.sasl.done:
            try:
                out = self.sasl.feed(data)
            except SaslFailure as exc:
                log.info("AMQP %s: SASL failed: %s", self.peer, exc)
                if exc.reply and self.io is not None:
                    self.io.write(exc.reply)
                self.abort()
                return
            if out and self.io is not None:
                self.io.write(out)
            if not self.sasl.done:
                return
            data, self.sasl.rest = self.sasl.rest, b""
            if not data:
                return
        view = memoryview(data)
        while view:
            capacity = self.transport.capacity()
            if capacity <= 0:
                break
            n = min(capacity, len(view))
            self.transport.push(bytes(view[:n]))
            view = view[n:]
            self.kick()
        self.kick()

    def eof_received(self) -> bool | None:
        self.transport.close_tail()
        self.kick()
        return None

    def abort(self) -> None:
        self.closed = True
        if self.io is not None:
            self.io.close()

    # ---- SASL ------------------------------------------------------------------------------------------
    def _authenticate(self, init: SaslInit) -> bool:
        if init.mechanism != "PLAIN":
            return True  # MSSBCBS / ANONYMOUS: tokens come later on $cbs
        user, password = init.plain_credentials()
        try:
            claim = self.endpoint.verifier.verify(password)
        except Unauthorized as exc:
            log.info("AMQP %s: PLAIN credentials of %r refused: %s", self.peer, user, exc.message)
            return False
        self.claims.add(f"sasl:{user}", claim)
        return True

    # ---- proton side -----------------------------------------------------------------------------------
    def kick(self) -> None:
        """Process pending engine events and write what the engine has to say (re-entrant calls coalesce)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                self._process()
                if not self._again:
                    break
        finally:
            self._busy = False

    def after_flush(self, action: Callable[[], None]) -> None:
        """Run ``action`` once what the engine has to say now is written (an answer after the settlement of
        its request: proton batches accepted dispositions and writes them after transfers, and uamqp's
        management client fails an operation whose answer comes before the request's disposition)."""
        self._deferred.append(action)

    def _process(self) -> None:
        while (event := self.collector.peek()) is not None:
            try:
                self._dispatch(event)
            except Exception:
                log.exception("AMQP %s: handling %s failed", self.peer, event.type)
            self.collector.pop()
        self._flush()
        if self._deferred and not self.closed:
            deferred, self._deferred = self._deferred, []
            for action in deferred:
                try:
                    action()
                except Exception:
                    log.exception("AMQP %s: a deferred action failed", self.peer)
            self._again = True

    def _flush(self) -> None:
        if self.io is None or self.closed:
            return
        while True:
            pending = self.transport.pending()
            if pending < 0:
                self.abort()
                return
            if pending == 0:
                break
            out = self.transport.peek(pending)
            self.transport.pop(len(out))
            self.io.write(self.completer.feed(out))
        deadline = self.transport.tick(time.monotonic())
        if deadline:
            if self._timer is not None:
                self._timer.cancel()
            delay = max(0.0, deadline - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self.kick)

    def _dispatch(self, event: Event) -> None:
        kind = event.type
        if kind == Event.CONNECTION_REMOTE_OPEN:
            self.conn.container = CONTAINER_ID
            # some clients (azure-eventhub's pure-Python AMQP) index every field of a performative, and proton
            # leaves out trailing nulls: a last field that is set keeps the list whole
            self.conn.properties = {symbol("product"): CONTAINER_ID}
            self.conn.open()
        elif kind == Event.SESSION_REMOTE_OPEN:
            event.session.open()
        elif kind == Event.LINK_REMOTE_OPEN:
            self._open_link(event.link)
        elif kind == Event.LINK_FLOW:
            handler = getattr(event.link, "edgegen_handler", None)
            if handler is not None:
                handler.on_flow()
        elif kind == Event.DELIVERY:
            handler = getattr(event.delivery.link, "edgegen_handler", None)
            if handler is not None:
                handler.on_delivery(event.delivery)
        elif kind in (Event.LINK_REMOTE_CLOSE, Event.LINK_REMOTE_DETACH):
            link = event.link
            handler = getattr(link, "edgegen_handler", None)
            if handler is not None:
                self._drop(handler)
            if not link.state & link.LOCAL_CLOSED:
                link.close()
        elif kind == Event.SESSION_REMOTE_CLOSE:
            if not event.session.state & event.session.LOCAL_CLOSED:
                event.session.close()
        elif kind == Event.CONNECTION_REMOTE_CLOSE:
            if not self.conn.state & self.conn.LOCAL_CLOSED:
                self.conn.close()
        elif kind == Event.TRANSPORT_CLOSED:
            self._flush()
            self.abort()

    def _open_link(self, link: Any) -> None:
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        if link.is_sender:
            link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        try:
            handler = self.endpoint.router.open_link(self, link)
        except LinkRefused as exc:
            log.info("AMQP %s: link %r refused: %s %s", self.peer, link.name, exc.condition, exc.description)
            link.open()
            link.condition = Condition(exc.condition, exc.description, exc.info)
            link.close()
            return
        except Unauthorized as exc:
            log.info("AMQP %s: link %r unauthorized: %s", self.peer, link.name, exc.message)
            link.open()
            link.condition = Condition("amqp:unauthorized-access", exc.message)
            link.close()
            return
        link.edgegen_handler = handler
        self.handlers.append(handler)
        link.properties = {symbol("com.microsoft:tracking-id"): f"{CONTAINER_ID}:{link.name}"}
        link.open()
        handler.on_open()

    def _drop(self, handler: LinkEvents) -> None:
        if handler in self.handlers:
            self.handlers.remove(handler)
            try:
                handler.on_close()
            except Exception:
                log.exception("AMQP %s: closing a link handler failed", self.peer)
