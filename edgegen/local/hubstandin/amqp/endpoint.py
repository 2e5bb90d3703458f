"""The stand-in's AMQP 1.0 endpoint: TLS on port 5671 of its address, claims-based security, and the router
from link addresses to handlers.

Addresses (an ``amqps://host[:port]`` prefix is ignored):

- ``$cbs`` — put-token (``RequestNode``); ``$management`` and ``{EntityPath}/$management`` — Event Hubs READs
- ``{EntityPath}/ConsumerGroups/{group}/Partitions/{id}`` — the device-to-cloud stream (receive)
- ``messages/events[/…]`` — IoT Hub's own name for it: the link is redirected (``amqp:link:redirect``) to the
  Event Hub-compatible address, as IoT Hub does (the Azure CLI's ``monitor-events`` asks this way)
- ``messages/devicebound`` — cloud-to-device messages (send); ``messages/servicebound/feedback`` — their feedback
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from proton import symbol

from edgegen.local.hubstandin.amqp.claims import ClaimsVerifier
from edgegen.local.hubstandin.amqp.connection import AmqpConnection, LinkRefused
from edgegen.local.hubstandin.amqp.eventhub import ManagementNode, PartitionReader
from edgegen.local.hubstandin.amqp.filters import FilterError, parse_selector
from edgegen.local.hubstandin.amqp.links import LinkHandler
from edgegen.local.hubstandin.amqp.requests import ReplyLink
from edgegen.local.hubstandin.amqp.service import CbsNode, CloudToDeviceSender, FeedbackReader
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.store import StoredMessage

__all__ = ["AMQP_PORT", "AmqpEndpoint", "normalize_address"]

log = logging.getLogger(__name__)
AMQP_PORT = 5671
SELECTOR = symbol("apache.org:selector-filter:string")


def normalize_address(address: str | None) -> str:
    """``amqps://host:5671/a/b/`` → ``a/b``; ``/messages/devicebound`` → ``messages/devicebound``."""
    text = (address or "").strip()
    if "://" in text:
        text = urlsplit(text).path
    return text.strip("/")


def _selector(link: Any) -> str | None:
    source = link.remote_source
    if source is None or source.filter is None:
        return None
    try:
        data = source.filter
        data.rewind()
        if not data.next():
            return None
        filters = data.get_object() or {}
    except Exception:
        log.info("unreadable filter set on %r", source.address)
        return None
    value = filters.get(SELECTOR) if isinstance(filters, dict) else None
    value = getattr(value, "value", value)
    return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else None


class Router:
    def __init__(self, endpoint: AmqpEndpoint) -> None:
        self.endpoint = endpoint

    def open_link(self, conn: AmqpConnection, link: Any) -> LinkHandler:
        backend = self.endpoint.backend
        entity = backend.event_hub_name.lower()
        if link.is_receiver:  # the peer sends to us
            address = normalize_address(link.remote_target.address)
            lowered = address.lower()
            if lowered == "$cbs":
                return CbsNode(conn, link)
            if lowered in ("$management", f"{entity}/$management"):
                return ManagementNode(conn, link)
            if lowered == "messages/devicebound":
                conn.claims.require("ServiceConnect", "sending cloud-to-device messages")
                return CloudToDeviceSender(conn, link)
            raise LinkRefused("amqp:not-found", f"no node {address!r} to send to")
        address = normalize_address(link.remote_source.address)
        lowered = address.lower()
        if lowered in ("$cbs", "$management", f"{entity}/$management"):
            return ReplyLink(conn, link, "$cbs" if lowered == "$cbs" else "$management")
        if lowered == "messages/servicebound/feedback":
            conn.claims.require("ServiceConnect", "reading cloud-to-device feedback")
            return FeedbackReader(conn, link)
        if lowered == "messages/events" or lowered.startswith("messages/events/"):
            conn.claims.require("ServiceConnect", "reading the device-to-cloud stream")
            rest = address[len("messages/events"):]
            where = f"amqps://{self.endpoint.address}:{self.endpoint.port}/{backend.event_hub_name}{rest}"
            raise LinkRefused("amqp:link:redirect", f"the stream is read at {where}", {
                symbol("hostname"): self.endpoint.address, symbol("network-host"): self.endpoint.address,
                symbol("port"): self.endpoint.port, symbol("address"): where})
        parts = address.split("/")
        if len(parts) == 5 and parts[0].lower() == entity and parts[1].lower() == "consumergroups" \
                and parts[3].lower() == "partitions":
            return self._reader(conn, link, parts[2], parts[4])
        raise LinkRefused("amqp:not-found", f"the messaging entity {address!r} could not be found")

    def _reader(self, conn: AmqpConnection, link: Any, group: str, partition: str) -> PartitionReader:
        backend = self.endpoint.backend
        conn.claims.require("ServiceConnect", "reading the device-to-cloud stream")
        if group not in backend.consumer_groups and group.lower() != "$default":
            raise LinkRefused("amqp:not-found", f"consumer group {group!r} does not exist "
                              f"(create it with: edgegen hub consumer-group create {group})")
        if not partition.isdigit() or int(partition) >= backend.partition_count:
            raise LinkRefused("amqp:not-found", f"partition {partition!r} does not exist "
                              f"(partitions 0-{backend.partition_count - 1})")
        try:
            start = parse_selector(_selector(link))
        except FilterError as exc:
            raise LinkRefused("amqp:invalid-field", str(exc)) from None
        return PartitionReader(conn, link, group, int(partition), start)


class AmqpEndpoint:
    """``await AmqpEndpoint(backend, address, ssl_ctx, scopes).start()``; ``await close()``."""

    def __init__(self, backend: HubBackend, address: str, ssl_context: ssl.SSLContext, scopes: tuple[str, ...],
                 *, port: int = AMQP_PORT, clock: Callable[[], float] = time.time) -> None:
        """``scopes``: the hub's host names (``127.0.0.5``, ``127.0.0.5:8443``) that tokens may be for."""
        self.backend = backend
        self.address = address
        self.port = port
        self.ssl_context = ssl_context
        self.clock = clock
        self.verifier = ClaimsVerifier(scopes, backend.policies, clock,
                                       event_hub_scopes=(f"{address}/{backend.event_hub_name}",))
        self.router = Router(self)
        self.connections: set[AmqpConnection] = set()
        self.readers: dict[int, set[PartitionReader]] = {}
        self.feedback_readers: set[FeedbackReader] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: AmqpConnection(self), self.address, self.port,
                                                ssl=self.ssl_context, reuse_address=True)
        self.backend.message_listeners.append(self._on_message)
        self.backend.c2d.feedback_listeners.append(self._on_feedback)

    def _on_message(self, message: StoredMessage) -> None:
        for reader in list(self.readers.get(message.partition, ())):
            reader.pump()
            reader.conn.kick()

    def _on_feedback(self) -> None:
        for reader in list(self.feedback_readers):
            reader.pump()
            reader.conn.kick()

    async def close(self) -> None:
        if self._on_message in self.backend.message_listeners:
            self.backend.message_listeners.remove(self._on_message)
        if self._on_feedback in self.backend.c2d.feedback_listeners:
            self.backend.c2d.feedback_listeners.remove(self._on_feedback)
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                conn.abort()
            await self._server.wait_closed()
            self._server = None
