"""asyncio transport for MQTT: TLS listener, one task per connection, batched writes, backpressure, keepalive.

The transport only shuttles bytes. ``data_received`` feeds the codec and queues packets; the connection's task
hands them one by one to a ``PacketDispatcher`` (the gateway). Outgoing bytes are gathered and written once
per event-loop turn. Reading pauses when too many packets wait; the dispatcher sees ``writable`` go False when
the peer reads too slowly and stops pumping queued messages until ``on_writable``.
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

from edgegen.local.mqtt.codec import Connect, MqttCodecError, Packet, PacketReader

__all__ = ["ConnState", "Connection", "MqttServer", "PacketDispatcher"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
_PAUSE_AT = 2000  # queued inbound packets before reading pauses
_RESUME_AT = 200


class ConnState(enum.Enum):
    AWAITING_CONNECT = "awaiting-connect"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class PacketDispatcher(Protocol):
    async def on_packet(self, conn: Connection, packet: Packet) -> None: ...
    async def on_closed(self, conn: Connection) -> None: ...
    def on_writable(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One client connection. ``context`` belongs to the dispatcher (identity, session)."""

    def __init__(self, server: MqttServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._reader = PacketReader(server.max_packet_size)
        self._inbox: deque[Packet] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._transport: asyncio.Transport | None = None
        self._reading_paused = False
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._expiry_handle: asyncio.TimerHandle | None = None
        self._last_rx = self._loop.time()
        self._task: asyncio.Task[None] | None = None
        self.state = ConnState.AWAITING_CONNECT
        self.writable = True
        self.keepalive = 0.0
        self.peer: Any = None
        self.context: Any = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio subclasses
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small MQTT packets must not wait for Nagle (uvloop does not set it for TLS)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server._connections.add(self)
        self._keepalive_handle = self._loop.call_later(CONNECT_TIMEOUT, self._check_connect)
        self._task = self._loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self._last_rx = self._loop.time()
        if self.state is ConnState.CLOSED or self.state is ConnState.CLOSING:
            return
        try:
            packets = self._reader.feed(data)
        except MqttCodecError as exc:
            log.info("closing %s: %s", self.peer, exc.message)
            self.close()
            return
        if packets:
            self._inbox.extend(packets)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if len(self._inbox) > _PAUSE_AT and not self._reading_paused and self._transport is not None:
                self._reading_paused = True
                self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = ConnState.CLOSED
        for handle in (self._keepalive_handle, self._expiry_handle, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._out.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        if self.state is ConnState.ACTIVE:
            self._server.dispatcher.on_writable(self)

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
        if self._transport is not None:
            self._transport.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------------ internals

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if not out or self._transport is None or self._transport.is_closing():
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._transport.write(data)

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

    async def _run(self) -> None:
        dispatcher = self._server.dispatcher
        inbox = self._inbox
        try:
            while self.state is not ConnState.CLOSED and self.state is not ConnState.CLOSING:
                if not inbox:
                    self._waiter = self._loop.create_future()
                    await self._waiter
                    self._waiter = None
                    continue
                packet = inbox.popleft()
                if self.state is ConnState.AWAITING_CONNECT and not isinstance(packet, Connect):
                    log.info("closing %s: first packet is not CONNECT", self.peer)
                    break
                await dispatcher.on_packet(self, packet)
                if self._reading_paused and len(inbox) < _RESUME_AT and self._transport is not None:
                    self._reading_paused = False
                    self._transport.resume_reading()
        except Exception:
            log.exception("connection %s failed", self.peer)
        finally:
            self.close()
            try:
                await dispatcher.on_closed(self)
            except Exception:
                log.exception("on_closed for %s failed", self.peer)
            self._server._connections.discard(self)


class MqttServer:
    """A listener whose connections feed ``dispatcher``. ``start`` binds, ``stop`` closes everything."""

    def __init__(self, dispatcher: PacketDispatcher, *, max_packet_size: int = 1024 * 1024) -> None:
        self.dispatcher = dispatcher
        self.max_packet_size = max_packet_size
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, ssl=ssl_context, reuse_address=True, backlog=256
        )

    @property
    def sockets(self) -> list[Any]:
        return list(self._server.sockets) if self._server else []

    @property
    def connections(self) -> set[Connection]:
        return set(self._connections)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = []
        connections = list(self._connections)
        for conn in connections:
            conn.close()
            if conn._task is not None:
                tasks.append(conn._task)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=5)
            for conn in connections:  # do not wait for TLS close_notify from peers: drop the sockets now
                if conn.state is not ConnState.CLOSED:
                    conn.abort()
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
