"""The identity-aware MQTT gateway: IoT Hub's MQTT dialect on top of the transport, one identity per connection.

Each connection is authenticated once (``Authenticator``) and may then only use its own topics. Twin and method
topics (``$iothub/…``) carry no identity, so the gateway scopes them per connection: twin requests go to the
handler with the caller's identity and replies go back to that connection only; desired patches and method calls
are sent to one identity only. Telemetry is acknowledged after ``handler.on_telemetry`` returned, or, when the
handler has a ``telemetry_sink``, after the sink said the message is stored: the sink takes messages inline (no
task per message) and stores each loop turn's messages together, and their PUBACKs go out together after that.

A connection the server took beyond its limit (``Connection.over_limit``) gets CONNACK "server unavailable".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from edgegen.local.mqtt.auth import Authenticator, AuthError
from edgegen.local.mqtt.codec import (
    PINGRESP_BYTES,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Publish,
    Subscribe,
    Unsubscribe,
    encode_connack,
    encode_puback,
    encode_publish,
    encode_suback,
    encode_unsuback,
)
from edgegen.local.mqtt.core import BrokerCore
from edgegen.local.mqtt.errors import GatewayUnavailable, InvalidRequest, NotConnected
from edgegen.local.mqtt.handler import (
    BaseGatewayHandler,
    GatewayError,
    GatewayHandler,
    MethodTimeoutError,
    TelemetryMessage,
    TelemetrySink,
)
from edgegen.local.mqtt.packets import ConnackCode, SubackCode
from edgegen.local.mqtt.server import Connection, ConnState, MqttServer
from edgegen.local.mqtt.session import Session
from edgegen.local.mqtt.store import MemorySessionStore, SessionStore
from edgegen.local.mqtt.topics import (
    Identity,
    InboundKind,
    TopicError,
    decode_property_bag,
    desired_patch_topic,
    encode_property_bag,
    in_sdk_order,
    method_request_topic,
    parse_inbound,
    twin_response_topic,
)

__all__ = [
    "BaseGatewayHandler",
    "GatewayError",
    "GatewayHandler",
    "MethodTimeoutError",
    "MqttGateway",
    "TelemetryMessage",
    "TelemetrySink",
]

log = logging.getLogger(__name__)
SERVER_UNAVAILABLE = ConnackCode.SERVER_UNAVAILABLE
MAX_TELEMETRY_BYTES = 256 * 1024  # IoT Hub's device-to-cloud message limit (its SDKs refuse larger ones themselves)


def _oversized(conn: Connection, identity: Identity, payload: bytes) -> bool:
    """A telemetry payload over IoT Hub's limit: closed without PUBACK and logged, as IoT Hub drops the client."""
    if len(payload) <= MAX_TELEMETRY_BYTES:
        return False
    log.warning("closing %s: a device-to-cloud message of %d bytes exceeds IoT Hub's limit of %d bytes",
                identity, len(payload), MAX_TELEMETRY_BYTES)
    conn.close()
    return True


def _acknowledge(conn: Connection, packet_id: int, stored: bool) -> None:
    """A sink's answer for one telemetry publish: PUBACK once stored, else close without one."""
    if not stored:
        conn.close()
    elif conn.state is ConnState.ACTIVE:
        conn.send(encode_puback(packet_id))


@dataclass(slots=True)
class _Client:
    """What the gateway knows about an accepted connection."""

    identity: Identity
    session: Session
    events_prefix: str


class MqttGateway:
    """IoT-Hub-dialect MQTT server. ``async with MqttGateway(...)`` then ``await start(host, 8883, ctx)``."""

    def __init__(
        self, authenticator: Authenticator, handler: GatewayHandler, session_store: SessionStore | None = None,
        *, max_inflight: int = 100, max_queued: int = 100_000, flush_interval: float = 0.02,
        session_expiry: float | None = None, max_connections: int | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.handler = handler
        self.store: SessionStore = session_store if session_store is not None else MemorySessionStore()
        self.core = BrokerCore(self.store, max_inflight=max_inflight, max_queued=max_queued,
                               session_expiry=session_expiry)
        self._server = MqttServer(self, max_connections=max_connections)
        self._sink: TelemetrySink | None = getattr(handler, "telemetry_sink", None)
        self._online: dict[str, Connection] = {}
        self._methods: dict[tuple[str, str], asyncio.Future[tuple[int, Any]]] = {}
        self._method_waiters: dict[str, set[asyncio.Future[None]]] = {}  # client id -> invocations waiting for it
        self._rids = itertools.count(1)
        self._flush_handle: asyncio.TimerHandle | None = None
        self.flush_interval = flush_interval  # session-store writes are grouped over this many seconds
        self._input_prefixes: dict[tuple[Identity, str], bytes] = {}
        self.address: tuple[str, int] | None = None
        self._stopped = False

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> MqttGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, host: str, port: int = 8883, ssl_context: ssl.SSLContext | None = None) -> None:
        await self._server.start(host, port, ssl_context)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])

    async def stop(self) -> None:
        self._stopped = True
        await self._server.stop()
        for fut in self._methods.values():
            if not fut.done():
                fut.set_exception(GatewayUnavailable("the gateway stopped"))
        self._methods.clear()
        for waiters in self._method_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)  # they look again, find nobody, and answer 404
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.store.flush()

    # ------------------------------------------------------------------ queries

    @property
    def session_expiry(self) -> float | None:
        """Persistent sessions offline longer than this many seconds are dropped (None: kept)."""
        return self.core.session_expiry

    @session_expiry.setter
    def session_expiry(self, seconds: float | None) -> None:
        self.core.session_expiry = seconds

    def is_connected(self, identity: Identity) -> bool:
        return identity.client_id in self._online

    @property
    def max_connections(self) -> int:
        return self._server.max_connections

    def is_subscribed(self, identity: Identity, topic: str) -> bool:
        """Whether ``identity``'s session has a subscription matching ``topic``."""
        session = self._session(identity)
        return session is not None and session.granted_qos(topic) is not None

    def connected_identities(self) -> list[Identity]:
        return [conn.context.identity for conn in self._online.values()]

    def revoke(self, identity: Identity, *, forget: bool = False, reason: str = "credentials revoked") -> bool:
        """Close ``identity``'s live connection now (its credentials no longer hold: disabled, deleted, keys
        regenerated, module removed); nothing it sends afterwards is acknowledged. A reconnect is refused by the
        authenticator as long as the keys say so. ``forget`` also drops its persistent session (a deleted
        identity's queued messages and subscriptions must not pass to a new one of the same name).
        True when a connection was closed."""
        conn = self._online.get(identity.client_id)
        if conn is not None:
            log.info("closing %s: %s", identity, reason)
            conn.close()
        if forget:
            self.core.forget(identity, online=conn is not None)
        return conn is not None

    def pending_count(self, identity: Identity) -> int:
        """Messages queued or unacknowledged for ``identity`` (0 when it has no session)."""
        session = self._session(identity)
        return session.pending if session else 0

    # ------------------------------------------------------------------ sending to clients

    def deliver_input(
        self, identity: Identity, input_name: str, properties: Mapping[str, str], payload: bytes, qos: int = 1,
        tag: str | None = None,
    ) -> bool:
        """Send a message to a module input. True when sent or queued in its session, False when the module has
        no session subscribed to that input (keep the message and try again after ``on_subscribe``).

        With a ``tag`` the message is the caller's, not the session's: sent only to a connected module that
        subscribed, never stored, dropped with the connection, and ``handler.on_delivered(identity, tag)`` is
        called on its PUBACK."""
        key = (identity, input_name)
        prefix = self._input_prefixes.get(key)
        if prefix is None:
            if identity.module_id is None:
                raise InvalidRequest(f"{identity} is a device; only modules have inputs")
            if not input_name or any(c in input_name for c in "/#+"):
                raise InvalidRequest(f"input name {input_name!r} is not valid")
            prefix = f"{identity.topic_base}/inputs/{input_name}/".encode()
            if len(self._input_prefixes) > 10_000:
                self._input_prefixes.clear()
            self._input_prefixes[key] = prefix
        topic = prefix + encode_property_bag(properties).encode() if properties else prefix
        if tag is not None and identity.client_id not in self._online:
            return False
        return self._send(identity, topic, payload, qos, tag)

    def deliver_c2d(self, identity: Identity, properties: Mapping[str, str], payload: bytes, qos: int = 1,
                    tag: str | None = None) -> bool:
        """Send a cloud-to-device message to a device (hub mode); same return value as ``deliver_input``.

        With a ``tag`` the message is the hub's, not the session's: sent only to a connected device that
        subscribed, never stored, and ``handler.on_delivered(identity, tag)`` is called on its PUBACK."""
        if identity.module_id is not None:
            raise InvalidRequest(f"{identity} is a module; cloud-to-device messages go to devices")
        topic = f"{identity.topic_base}/messages/devicebound/{encode_property_bag(in_sdk_order(properties))}"
        if tag is not None and identity.client_id not in self._online:
            return False
        return self._send(identity, topic.encode(), payload, qos, tag)

    def push_desired_patch(self, identity: Identity, patch: Mapping[str, Any], version: int) -> bool:
        """Send a desired-properties patch (``$version`` added) to this identity only; queued while offline."""
        body = dict(patch)
        body["$version"] = version
        topic = desired_patch_topic(version).encode()
        return self._send(identity, topic, json.dumps(body, separators=(",", ":")).encode(), 1)

    async def invoke_method(
        self, identity: Identity, name: str, payload: Any = None, timeout: float = 30.0, connect_timeout: float = 0.0,
    ) -> tuple[int, Any]:
        """Call a direct method on one identity; return (status, JSON payload) or raise GatewayError.

        Like IoT Hub and edgeHub: an identity that is not connected with methods subscribed is waited for up to
        ``connect_timeout`` seconds (404 after that), then its answer up to ``timeout`` seconds (504)."""
        rid = format(next(self._rids), "x")
        topic = method_request_topic(name, rid)
        conn = await self._method_target(identity, topic, connect_timeout)
        fut: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._methods[(identity.client_id, rid)] = fut
        try:
            body = b"null" if payload is None else json.dumps(payload).encode()
            conn.send(encode_publish(topic.encode(), body, 0))
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise MethodTimeoutError(f"method {name!r} on {identity} timed out after {timeout}s") from None
        finally:
            self._methods.pop((identity.client_id, rid), None)

    def _subscribed_connection(self, identity: Identity, topic: str) -> Connection | None:
        conn = self._online.get(identity.client_id)
        if conn is None or conn.context is None or conn.context.session.granted_qos(topic) is None:
            return None
        return conn

    async def _method_target(self, identity: Identity, topic: str, connect_timeout: float) -> Connection:
        conn = self._subscribed_connection(identity, topic)
        deadline = time.monotonic() + max(0.0, connect_timeout)
        while conn is None and not self._stopped and (left := deadline - time.monotonic()) > 0:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._method_waiters.setdefault(identity.client_id, set())
            waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                pass
            finally:
                waiters.discard(waiter)
                if not waiters:
                    self._method_waiters.pop(identity.client_id, None)
            conn = self._subscribed_connection(identity, topic)
        if conn is None:
            if identity.client_id in self._online:
                raise NotConnected(f"{identity} has not subscribed to direct methods",
                                   hint="the client must register a method handler first")
            raise NotConnected(f"{identity} is not connected", hint="start it and try again")
        return conn

    def _send(self, identity: Identity, topic: bytes, payload: bytes, qos: int, tag: str | None = None) -> bool:
        conn = self._online.get(identity.client_id)
        session = self.core.enqueue(identity, topic, payload, qos, tag, online=conn is not None)
        if session is None:
            return False
        if conn is not None and conn.writable:
            self._pump(conn, session)
        self._schedule_flush()
        return True

    def _pump(self, conn: Connection, session: Session) -> None:
        for out in self.core.outgoing(session):
            message = out.message
            conn.send(encode_publish(message.topic, message.payload, message.qos, out.packet_id, out.dup))

    def on_writable(self, conn: Connection) -> None:
        client: _Client | None = conn.context
        if client is not None:
            self._pump(conn, client.session)

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self.flush_interval, self._flush_store)

    def _flush_store(self) -> None:
        self._flush_handle = None
        self.store.flush()

    def _session(self, identity: Identity) -> Session | None:
        return self.core.lookup(identity)

    # ------------------------------------------------------------------ packets from clients

    def handle_now(self, conn: Connection, packet: Packet) -> bool:
        """The packets that need no waiting: PUBACK, PINGREQ, and telemetry when the handler has a sink."""
        client: _Client | None = conn.context
        if client is None:
            return False
        kind = type(packet)
        if kind is Publish:
            return self._sink is not None and self._telemetry_now(conn, client, packet)  # type: ignore[arg-type]
        if kind is Puback:
            self._on_puback(conn, client, packet)  # type: ignore[arg-type]
            return True
        if kind is Pingreq:
            conn.send(PINGRESP_BYTES)
            return True
        return False

    def _on_puback(self, conn: Connection, client: _Client, packet: Puback) -> None:
        acked = self.core.acknowledge(client.session, packet.packet_id)
        if acked is not None:
            if conn.writable:
                self._pump(conn, client.session)
            self._schedule_flush()
            if acked.tag is not None:
                try:
                    self.handler.on_delivered(client.identity, acked.tag)
                except Exception:
                    log.exception("on_delivered for %s failed", client.identity)

    def _telemetry_now(self, conn: Connection, client: _Client, packet: Publish) -> bool:
        """Telemetry into the sink; False (the slow path, which also refuses) for any other publish."""
        topic = packet.topic
        prefix = client.events_prefix
        if not topic.startswith(prefix):
            return False
        tail = topic[len(prefix):]
        if tail and tail != "/":  # the property bag, as parse_inbound reads it
            if tail[0] != "/":
                return False
            bag = tail[1:-1] if tail[-1] == "/" else tail[1:]
            if "/" in bag:
                return False
        else:
            bag = ""
        identity = client.identity
        try:
            system, custom = decode_property_bag(bag) if bag else ({}, {})
        except TopicError as exc:  # edgeHub and IoT Hub drop the connection too
            log.info("closing %s: %s", identity, exc.message)
            conn.close()
            return True
        if _oversized(conn, identity, packet.payload):
            return True
        message = TelemetryMessage(custom, system, packet.payload, system.get("$.on"))
        done = partial(_acknowledge, conn, packet.packet_id or 0) if packet.qos else None
        assert self._sink is not None
        try:
            self._sink.submit(identity, message, done)
        except GatewayError as exc:
            log.info("closing %s: %s", identity, exc.message)
            conn.close()
        return True

    async def on_packet(self, conn: Connection, packet: Packet) -> None:
        client: _Client | None = conn.context
        if client is None:
            if isinstance(packet, Connect):
                await self._on_connect(conn, packet)
            return
        if isinstance(packet, Publish):
            await self._on_publish(conn, client, packet)
        elif isinstance(packet, Puback):
            self._on_puback(conn, client, packet)
        elif isinstance(packet, Subscribe):
            await self._on_subscribe(conn, client, packet)
        elif isinstance(packet, Unsubscribe):
            for topic_filter in packet.topics:
                client.session.unsubscribe(topic_filter)
            client.session.save_subscriptions()
            conn.send(encode_unsuback(packet.packet_id))
        elif isinstance(packet, Pingreq):
            conn.send(PINGRESP_BYTES)
        elif isinstance(packet, Disconnect):
            conn.close()
        else:  # a second CONNECT or a server-to-client packet: protocol violation
            log.info("closing %s: unexpected %s", client.identity, type(packet).__name__)
            conn.close()

    async def _on_connect(self, conn: Connection, packet: Connect) -> None:
        if packet.protocol_level != 4:
            conn.send(encode_connack(False, ConnackCode.UNACCEPTABLE_PROTOCOL_VERSION))
            conn.close()
            return
        if conn.over_limit:
            log.warning("refused %s: %d connections, the most this process's open-files limit allows",
                        packet.client_id, self._server.max_connections)
            conn.send(encode_connack(False, SERVER_UNAVAILABLE))
            conn.close()
            return
        try:
            auth = self.authenticator.authenticate(packet.client_id, packet.username, packet.password)
        except AuthError as exc:
            log.info("refused %s (%s): %s", packet.client_id, conn.peer, exc.message)
            conn.send(encode_connack(False, exc.return_code))
            conn.close()
            return
        except Exception:  # a broken key lookup must not look like bad credentials
            log.exception("authenticating %s failed", packet.client_id)
            conn.send(encode_connack(False, SERVER_UNAVAILABLE))
            conn.close()
            return
        identity = auth.identity
        cid = identity.client_id
        old = self._online.pop(cid, None)
        if old is not None:  # the same client id again: the new connection takes over
            log.info("%s connected again; closing its previous connection", cid)
            old.context = None
            old.close()
            self.core.end_connection(cid)
            await self._safe(self.handler.on_disconnect(identity))
        opened = self.core.open_session(identity, packet.clean_session)
        session, present = opened.session, opened.present
        conn.context = _Client(identity, session, f"{identity.topic_base}/messages/events")
        self._online[cid] = conn
        conn.activate(packet.keepalive)
        if auth.expiry is not None:
            conn.close_at(auth.expiry, time.time())
        conn.send(encode_connack(present, ConnackCode.ACCEPTED))
        self._pump(conn, session)
        await self._safe(self.handler.on_connect(identity))
        if present and session.subscriptions:
            await self._safe(self.handler.on_session_resumed(identity, list(session.subscriptions)))

    async def on_closed(self, conn: Connection) -> None:
        client: _Client | None = conn.context
        if client is None:
            return
        conn.context = None
        cid = client.identity.client_id
        if self._online.get(cid) is conn:
            del self._online[cid]
            self.core.end_connection(cid)
            self.store.flush()
            await self._safe(self.handler.on_disconnect(client.identity))

    async def _on_subscribe(self, conn: Connection, client: _Client, packet: Subscribe) -> None:
        outcome = self.core.subscribe(client.session, packet.topics)
        codes, granted = outcome.codes, outcome.granted
        for (topic_filter, _qos), code in zip(packet.topics, codes, strict=True):
            if code == SubackCode.FAILURE:
                log.info("%s may not subscribe %r", client.identity, topic_filter)
        conn.send(encode_suback(packet.packet_id, codes))
        for waiter in self._method_waiters.get(client.identity.client_id, ()):
            if not waiter.done():
                waiter.set_result(None)
        if granted:
            await self._safe(self.handler.on_subscribe(client.identity, granted))

    async def _on_publish(self, conn: Connection, client: _Client, packet: Publish) -> None:
        inbound = parse_inbound(packet.topic, client.identity, client.events_prefix)
        if inbound is None:
            log.info("closing %s: may not publish to %r", client.identity, packet.topic)
            conn.close()
            return
        kind = inbound.kind
        identity = client.identity
        if kind is InboundKind.TELEMETRY:
            try:
                system, custom = decode_property_bag(inbound.bag) if inbound.bag else ({}, {})
            except TopicError as exc:  # edgeHub and IoT Hub drop the connection too
                log.info("closing %s: %s", identity, exc.message)
                conn.close()
                return
            if _oversized(conn, identity, packet.payload):
                return
            message = TelemetryMessage(custom, system, packet.payload, system.get("$.on"))
            try:
                await self.handler.on_telemetry(identity, message)
            except GatewayError as exc:  # refused (e.g. revoked identity): no PUBACK, the client sends it again
                log.info("closing %s without PUBACK: %s", identity, exc.message)
                conn.close()
                return
            except Exception:
                log.exception("telemetry handler failed for %s; closing without PUBACK", identity)
                conn.close()
                return
        elif kind is InboundKind.TWIN_GET:
            status, twin = await self._twin_call(self.handler.on_twin_get(identity))
            self._reply(conn, twin_response_topic(status, inbound.rid), twin)
        elif kind is InboundKind.TWIN_REPORTED:
            try:
                patch = json.loads(packet.payload or b"{}")
            except ValueError:
                self._reply(conn, twin_response_topic(400, inbound.rid), {"message": "reported patch is not JSON"})
            else:
                status, version = await self._twin_call(self.handler.on_twin_reported(identity, patch))
                self._reply(conn, twin_response_topic(status, inbound.rid, version if status < 300 else None), None)
        else:  # method response
            fut = self._methods.get((identity.client_id, inbound.rid))
            if fut is not None and not fut.done():
                try:
                    body = json.loads(packet.payload) if packet.payload else None
                except ValueError:
                    body = packet.payload.decode("utf-8", "replace")
                fut.set_result((inbound.status, body))
        if packet.qos and conn.state is ConnState.ACTIVE:
            conn.send(encode_puback(packet.packet_id or 0))

    @staticmethod
    def _reply(conn: Connection, topic: str, body: Any) -> None:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        conn.send(encode_publish(topic.encode(), payload, 0))

    @staticmethod
    async def _twin_call(call: Any) -> tuple[int, Any]:
        try:
            return await call
        except GatewayError as exc:
            return exc.status, {"message": exc.message}
        except Exception as exc:
            log.exception("twin handler failed")
            return 500, {"message": str(exc)}

    @staticmethod
    async def _safe(call: Any) -> None:
        try:
            await call
        except Exception:
            log.exception("gateway handler hook failed")
