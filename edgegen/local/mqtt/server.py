"""asyncio transport for MQTT: TLS listener, packets handled inline or in order by a task, batched writes,
backpressure, keepalive, a connection limit.

The transport only shuttles bytes. It is lean per connection, because a hub holds thousands: TLS is an
``ssl.SSLObject`` over two memory BIOs driven here (asyncio's TLS layer gives each connection a 256 KiB read
buffer), and every connection reads into one buffer the server shares (``BufferedProtocol``: the loop calls
``buffer_updated`` right after the read, so the bytes are consumed before the next connection reads).

Packets go to a ``PacketDispatcher`` (the gateway) in arrival order: ``handle_now`` takes the ones it can finish
without waiting (telemetry, PUBACK, PINGREQ) inline, in the same loop turn the bytes arrived; the first one it
declines, and every packet after it, waits for ``on_packet`` in a task that exists only while such packets wait.
Outgoing bytes are gathered and written once per event-loop turn. Reading pauses when too many packets wait;
the dispatcher sees ``writable`` go False when the peer reads too slowly and stops pumping queued messages until
``on_writable``.

Beyond ``max_connections`` (by default what the open-files limit leaves after a reserve, see
``edgegen.common.fdlimit``) connections are still accepted, so that they can be told: ``over_limit`` is set and
the dispatcher answers their CONNECT with "server unavailable".
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import ssl
from collections import deque
from typing import Any, Protocol

from edgegen.common.fdlimit import connection_capacity
from edgegen.local.mqtt.codec import Connect, MqttCodecError, Packet, PacketReader

__all__ = ["ConnState", "Connection", "MqttServer", "PacketDispatcher"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_BUFFER = 64 * 1024  # shared by all connections of a server
_PAUSE_AT = 2000  # queued inbound packets before reading pauses
_RESUME_AT = 200
_TLS_CHUNK = 16 * 1024  # the largest TLS record's plaintext


class ConnState(enum.Enum):
    AWAITING_CONNECT = "awaiting-connect"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class PacketDispatcher(Protocol):
    def handle_now(self, conn: Connection, packet: Packet) -> bool:
        """Handle ``packet`` at once and return True, or return False to have ``on_packet`` await it."""
        ...

    async def on_packet(self, conn: Connection, packet: Packet) -> None: ...
    async def on_closed(self, conn: Connection) -> None: ...
    def on_writable(self, conn: Connection) -> None: ...


class Connection(asyncio.BufferedProtocol):
    """One client connection. ``context`` belongs to the dispatcher (identity, session)."""

    __slots__ = (
        "_eof", "_expiry_handle", "_finishing", "_flush_handle", "_in_bio", "_inbox", "_keepalive_handle", "_last_rx",
        "_loop", "_out", "_out_bio", "_reader", "_reading_paused", "_server", "_task", "_tls", "_tls_ready",
        "_transport", "context", "keepalive", "over_limit", "peer", "state", "writable",
    )

    def __init__(self, server: MqttServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._reader = PacketReader(server.max_packet_size)
        self._inbox: deque[Packet] | None = None  # packets waiting for the task (made when first needed)
        self._task: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._transport: asyncio.Transport | None = None
        self._reading_paused = False
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._expiry_handle: asyncio.TimerHandle | None = None
        self._last_rx = self._loop.time()
        self._tls: ssl.SSLObject | None = None
        self._in_bio: ssl.MemoryBIO | None = None
        self._out_bio: ssl.MemoryBIO | None = None
        self._tls_ready = False
        self._eof = False  # the peer is done sending: handle what it sent, then close
        self.state = ConnState.AWAITING_CONNECT
        self.writable = True
        self.keepalive = 0.0
        self.over_limit = False
        self.peer: Any = None
        self.context: Any = None

    # ------------------------------------------------------------------ asyncio.BufferedProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small MQTT packets must not wait for Nagle
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self._server
        self.over_limit = len(server._connections) >= server.max_connections
        server._connections.add(self)
        if server.ssl_context is not None:
            self._in_bio = ssl.MemoryBIO()
            self._out_bio = ssl.MemoryBIO()
            self._tls = server.ssl_context.wrap_bio(self._in_bio, self._out_bio, server_side=True)
        self._keepalive_handle = self._loop.call_later(CONNECT_TIMEOUT, self._check_connect)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self._last_rx = self._loop.time()
        if self.state is ConnState.CLOSED or self.state is ConnState.CLOSING:
            return
        data: bytes | memoryview = self._server._read_view[:nbytes]
        peer_closed = False
        if self._tls is not None:
            data, peer_closed = self._tls_receive(data)
            if not data:
                if peer_closed:
                    self._peer_done()
                return
        try:
            packets = self._reader.feed(data)
        except MqttCodecError as exc:
            log.info("closing %s: %s", self.peer, exc.message)
            self.close()
            return
        if packets:
            self._dispatch(packets)
        if peer_closed:  # after what came with the close_notify (a last PUBACK, a DISCONNECT)
            self._peer_done()

    def eof_received(self) -> bool | None:
        if self._task is not None:  # packets still wait: close once they are handled
            self._eof = True
            return True
        return None  # close the transport

    def _peer_done(self) -> None:
        if self._task is not None:
            self._eof = True
        else:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = ConnState.CLOSED
        for handle in (self._keepalive_handle, self._expiry_handle, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._keepalive_handle = self._expiry_handle = self._flush_handle = None
        self._out.clear()
        self._tls = self._in_bio = self._out_bio = None
        self._finish()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        if self.state is ConnState.ACTIVE:
            self._server.dispatcher.on_writable(self)

    # ------------------------------------------------------------------ TLS

    def _tls_receive(self, data: memoryview) -> tuple[bytes, bool]:
        """Decrypt what arrived (b"" when no application data is complete yet), answer the handshake; True when
        the peer closed TLS (close_notify) after it."""
        tls, in_bio = self._tls, self._in_bio
        assert tls is not None and in_bio is not None
        in_bio.write(data)
        chunks: list[bytes] = []
        closed = False
        try:
            if not self._tls_ready:
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    return b"", False
                finally:
                    self._tls_send_pending()
                self._tls_ready = True
            while True:
                try:
                    chunk = tls.read(_TLS_CHUNK)
                except ssl.SSLWantReadError:
                    break
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        except ssl.SSLZeroReturnError:  # close_notify: what came before it still counts
            closed = True
        except (ssl.SSLError, OSError) as exc:
            self._server.log_tls_failure(self.peer, exc)
            self.abort()
            return b"", False
        if self._out_bio is not None and self._out_bio.pending:  # e.g. key updates
            self._tls_send_pending()
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), closed

    def _tls_send_pending(self) -> None:
        out_bio = self._out_bio
        if out_bio is not None and out_bio.pending and self._transport is not None:
            self._transport.write(out_bio.read())

    # ------------------------------------------------------------------ packets in order

    def _dispatch(self, packets: list[Packet]) -> None:
        inbox = self._inbox
        if self._task is not None or (inbox is not None and inbox):
            self._queue(packets, 0)
            return
        dispatcher = self._server.dispatcher
        for i, packet in enumerate(packets):
            if self.state is not ConnState.ACTIVE:
                if self.state is ConnState.AWAITING_CONNECT and isinstance(packet, Connect) and i == 0:
                    self._queue(packets, i)
                    return
                if self.state is ConnState.AWAITING_CONNECT:
                    log.info("closing %s: first packet is not CONNECT", self.peer)
                    self.close()
                return
            try:
                if dispatcher.handle_now(self, packet):
                    continue
            except Exception:
                log.exception("connection %s failed", self.peer)
                self.close()
                return
            self._queue(packets, i)
            return

    def _queue(self, packets: list[Packet], start: int) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.extend(packets[start:] if start else packets)
        if len(inbox) > _PAUSE_AT and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
        if self._task is None:
            self._task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        dispatcher = self._server.dispatcher
        inbox = self._inbox
        assert inbox is not None
        try:
            while inbox and (self._eof or (self.state is not ConnState.CLOSED and self.state is not ConnState.CLOSING)):
                packet = inbox.popleft()
                if self.state is ConnState.AWAITING_CONNECT and not isinstance(packet, Connect):
                    log.info("closing %s: first packet is not CONNECT", self.peer)
                    self.close()
                    break
                if self.context is None or not dispatcher.handle_now(self, packet):
                    await dispatcher.on_packet(self, packet)
                if self._reading_paused and len(inbox) < _RESUME_AT and self._transport is not None:
                    self._reading_paused = False
                    self._transport.resume_reading()
        except Exception:
            log.exception("connection %s failed", self.peer)
            self.close()
        finally:
            self._task = None
            if not inbox:
                self._inbox = None
            if self._eof:
                self.close()

    # ------------------------------------------------------------------ for the dispatcher

    def send(self, data: bytes) -> None:
        """Queue bytes; they go out in one write at the end of this event-loop turn."""
        if self.state is ConnState.CLOSED:
            return
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def activate(self, keepalive: int) -> None:
        """CONNECT accepted: start keepalive supervision (1.5 × the client's keepalive)."""
        self.state = ConnState.ACTIVE
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self.keepalive = keepalive * 1.5
        if keepalive:
            self._keepalive_handle = self._loop.call_later(self.keepalive, self._check_keepalive)

    def close_at(self, when_epoch: float, now_epoch: float) -> None:
        """Drop the connection when its credential expires (clients renew by reconnecting before that)."""
        delay = when_epoch - now_epoch
        if 0 < delay < 10 * 365 * 86400:
            self._expiry_handle = self._loop.call_later(delay, self.close)

    def close(self) -> None:
        if self.state is ConnState.CLOSED or self.state is ConnState.CLOSING:
            return
        self.state = ConnState.CLOSING
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        if self._tls is not None and self._tls_ready:
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self._tls.unwrap()  # close_notify
            self._tls_send_pending()
        if self._transport is not None:
            self._transport.close()
        self._finish()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------------ internals

    def _finish(self) -> None:
        """Once per connection: wait for the packet task, then tell the dispatcher the connection is gone."""
        if self._finishing is None:
            self._finishing = self._loop.create_task(self._finished())
            self._server._finishing.add(self._finishing)
            self._finishing.add_done_callback(self._server._finishing.discard)

    async def _finished(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(BaseException):
                await task
        try:
            await self._server.dispatcher.on_closed(self)
        except Exception:
            log.exception("on_closed for %s failed", self.peer)
        finally:
            self._server._connections.discard(self)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        transport = self._transport
        if not out or transport is None or transport.is_closing():
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        tls = self._tls
        if tls is None:
            transport.write(data)
            return
        try:
            tls.write(data)
        except (ssl.SSLError, OSError) as exc:
            self._server.log_tls_failure(self.peer, exc)
            self.abort()
            return
        self._tls_send_pending()

    def _check_connect(self) -> None:
        if self.state is ConnState.AWAITING_CONNECT:
            log.info("closing %s: no CONNECT within %ss", self.peer, CONNECT_TIMEOUT)
            self.close()

    def _check_keepalive(self) -> None:
        idle = self._loop.time() - self._last_rx
        if idle >= self.keepalive:
            log.info("closing %s: silent for %.1fs (keepalive)", self.peer, idle)
            self.close()
        else:
            self._keepalive_handle = self._loop.call_later(self.keepalive - idle, self._check_keepalive)


class MqttServer:
    """A listener whose connections feed ``dispatcher``. ``start`` binds, ``stop`` closes everything.

    ``max_connections`` None: what the process's open-files limit leaves (``connection_capacity``) at start."""

    def __init__(self, dispatcher: PacketDispatcher, *, max_packet_size: int = 1024 * 1024,
                 max_connections: int | None = None) -> None:
        self.dispatcher = dispatcher
        self.max_packet_size = max_packet_size
        self.max_connections = max_connections if max_connections is not None else connection_capacity()
        self.ssl_context: ssl.SSLContext | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()
        self._finishing: set[asyncio.Task[None]] = set()
        self._read_buffer = bytearray(READ_BUFFER)
        self._read_view = memoryview(self._read_buffer)
        self._tls_failures = 0

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self.ssl_context = ssl_context
        self._server = await asyncio.get_running_loop().create_server(
            lambda: Connection(self), host, port, reuse_address=True, backlog=1024
        )

    @property
    def sockets(self) -> list[Any]:
        return list(self._server.sockets) if self._server else []

    @property
    def connections(self) -> set[Connection]:
        return set(self._connections)

    def log_tls_failure(self, peer: Any, exc: BaseException) -> None:
        self._tls_failures += 1
        log.info("closing %s: TLS: %s", peer, getattr(exc, "reason", None) or exc)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if self._finishing:
            _done, pending = await asyncio.wait(list(self._finishing), timeout=5)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for conn in connections:  # do not wait for TLS close_notify from peers: drop the sockets now
            if conn.state is not ConnState.CLOSED:
                conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
