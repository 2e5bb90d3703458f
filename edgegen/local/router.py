"""The edge hub's router: telemetry in, route evaluation, delivery to module inputs and ``$upstream``.

A module's publish becomes a routing ``Message`` whose system properties come from the SDK's property bag
(``$.mid`` → messageId, …) and from the connection (connectionDeviceId, connectionModuleId; the output name from
``$.on``). The ``$edgeHub`` routes pick endpoints; a message reaching one endpoint through several routes goes once,
at the best priority.

Delivery: a module input whose module is connected (and has no backlog) gets the message straight into its MQTT
session, with edgeHub's property bag (``$.cdid``, ``$.cmid``, ``$.mid``, ``$.ct``, …). Otherwise the message is
written to the store-and-forward ``Store`` *before* the publisher's PUBACK, kept for the route's
``timeToLiveSecs`` (else ``storeAndForwardConfiguration.timeToLiveSecs``), and delivered in order — best priority
first — once the module subscribes again. ``$upstream`` works the same way with an ``UpstreamSink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edgegen.local.mqtt.topics import SYSTEM_PROPERTY_NAMES, Identity
from edgegen.local.store import Pending, QueuedMessage, Store
from edgegen.local.upstream import UpstreamMessage, UpstreamSink
from edgegen.routing import Message, ModuleInputEndpoint, RouteTable

__all__ = ["UPSTREAM", "GroupCommit", "InputDelivery", "Router", "RouterCounters", "input_property_bag",
           "routing_message"]

log = logging.getLogger(__name__)

UPSTREAM = "$upstream"
_TO_BAG = {name: key for key, name in SYSTEM_PROPERTY_NAMES.items()}
# The system properties edgeHub writes into a module input's property bag (its OutgoingSystemPropertiesMap);
# not outputName, interfaceId or enqueuedTime.
_INPUT_SYSTEM = frozenset(("messageId", "to", "correlationId", "userId", "contentType", "contentEncoding",
                           "messageSchema", "creationTime", "dt-subject", "absoluteExpiryTime",
                           "connectionDeviceId", "connectionModuleId"))


class GroupCommit:
    """Await ``wait()`` to know ``flush`` ran after this point; callers in one loop turn share one flush."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._pending: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._run)
        await asyncio.shield(self._pending)

    def _run(self) -> None:
        fut, self._pending = self._pending, None
        try:
            self._flush()
        except Exception as exc:
            if fut is not None:
                fut.set_exception(exc)
            return
        if fut is not None:
            fut.set_result(None)


class InputDelivery(Protocol):
    """The part of the MQTT gateway the router uses."""

    def is_connected(self, identity: Identity) -> bool: ...

    def deliver_input(
        self, identity: Identity, input_name: str, properties: Mapping[str, str], payload: bytes, qos: int = 1
    ) -> bool: ...


@dataclass
class RouterCounters:
    received: int = 0
    unrouted: int = 0
    direct: int = 0  # handed straight to a connected module or the upstream sink
    stored: int = 0  # went through the store-and-forward store

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def routing_message(identity: Identity, properties: Mapping[str, str], bag_system: Mapping[str, str],
                    body: bytes, enqueued: float) -> Message:
    """The routing model of one telemetry publish (system properties named as routes name them).

    As in edgeHub, the connection's ids come first, then the bag's system properties in the order sent."""
    system = {"connectionDeviceId": identity.device_id}
    if identity.module_id:
        system["connectionModuleId"] = identity.module_id
    for key, value in bag_system.items():
        name = SYSTEM_PROPERTY_NAMES.get(key, key)
        if name not in system:
            system[name] = value
    system.setdefault("enqueuedTime", _iso_second(int(enqueued)))
    return Message(properties=dict(properties), system_properties=system, body=body)


def input_property_bag(properties: Mapping[str, str], system: Mapping[str, str]) -> dict[str, str]:
    """edgeHub's bag for a module input, in its order: the application properties, then the system properties it
    forwards (``$.cdid``, ``$.cmid``, ``$.mid``, ``$.ct``, …) in the message's order; a system value replaces an
    application property of the same key where it stands."""
    bag = dict(properties)
    for name, value in system.items():
        if name in _INPUT_SYSTEM and value:
            bag[_TO_BAG[name]] = value
    return bag


def _endpoint_id(endpoint: Any) -> str:
    return f"{endpoint.module}/{endpoint.input}" if isinstance(endpoint, ModuleInputEndpoint) else UPSTREAM


class Router:
    """Routes telemetry for one device. Attach the gateway with ``attach`` before messages flow."""

    def __init__(self, device_id: str, store: Store, upstream: UpstreamSink, *, default_ttl: float = 7200,
                 sweep_interval: float = 1.0, drain_batch: int = 500, commit: GroupCommit | None = None) -> None:
        self.device_id = device_id
        self.store = store
        self.upstream = upstream
        self.default_ttl = float(default_ttl)
        self.sweep_interval = sweep_interval
        self.drain_batch = drain_batch
        self.counters = RouterCounters()
        self.commit = commit  # makes hand-overs to MQTT sessions durable before the publisher's PUBACK
        self._table: RouteTable | None = None
        self._inputs: InputDelivery | None = None
        self._backlog: set[str] = {ep for ep, st in store.stats().items() if st.pending}
        # Modules whose current process subscribed to its inputs. The SDK drops input messages that arrive before
        # its handler is set (a new process on an old persistent session), so inputs wait until it subscribes.
        self._subscribed: set[str] = set()
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ configuration and lifetime

    def attach(self, inputs: InputDelivery) -> None:
        self._inputs = inputs

    def set_routes(self, routes: Mapping[str, Any], schema_version: str, default_ttl: float | None = None) -> None:
        """Compile the ``$edgeHub`` routes (raises the routing area's error on a bad route)."""
        self._table = RouteTable.from_routes(routes, schema_version)
        if default_ttl is not None:
            self.default_ttl = float(default_ttl)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="router-sweep")

    async def stop(self) -> None:
        tasks = [t for t in (self._sweeper, *self._draining.values()) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._sweeper = None
        self._draining.clear()

    # ------------------------------------------------------------------ messages in

    async def on_telemetry(self, identity: Identity, properties: Mapping[str, str], bag_system: Mapping[str, str],
                           body: bytes) -> None:
        """Route one publish; returns once every copy is delivered or stored (then the gateway sends PUBACK)."""
        self.counters.received += 1
        table = self._table
        if table is None:
            self.counters.unrouted += 1
            return
        now = time.time()
        message = routing_message(identity, properties, bag_system, body, now)
        deliveries = table.match(message)
        if not deliveries:
            self.counters.unrouted += 1
            return
        to_store: list[Pending] = []
        handed = False
        for d in deliveries:
            ep = _endpoint_id(d.endpoint)
            ttl = float(d.ttl_secs) if d.ttl_secs else self.default_ttl
            if ep not in self._backlog:
                if ep == UPSTREAM:
                    if await self._send_upstream(message.properties, message.system_properties, body, now):
                        self.counters.direct += 1
                        continue
                elif self._deliver(d.endpoint.module, d.endpoint.input, message.properties,
                                   message.system_properties, body):
                    self.counters.direct += 1
                    handed = True
                    continue
            to_store.append(Pending(ep, message.properties, message.system_properties, body, d.priority, ttl))
        if to_store:
            self.store.append(to_store, now=now)
            self.counters.stored += len(to_store)
            for p in to_store:
                self._backlog.add(p.endpoint)
        if handed and self.commit is not None:
            await self.commit.wait()

    def _deliver(self, module: str, input_name: str, properties: Mapping[str, str], system: Mapping[str, str],
                 body: bytes) -> bool:
        inputs = self._inputs
        identity = Identity(self.device_id, module)
        if inputs is None or module not in self._subscribed or not inputs.is_connected(identity):
            return False
        return inputs.deliver_input(identity, input_name, input_property_bag(properties, system), body)

    async def _send_upstream(self, properties: Mapping[str, str], system: Mapping[str, str], body: bytes,
                             enqueued: float) -> bool:
        if not self.upstream.available():
            return False
        msg = UpstreamMessage(system.get("connectionDeviceId", self.device_id), system.get("connectionModuleId"),
                              properties, system, body, enqueued)
        try:
            await self.upstream.send([msg])
        except Exception:
            log.exception("upstream send failed; keeping the message in the store")
            return False
        return True

    # ------------------------------------------------------------------ store-and-forward

    def inputs_subscribed(self, module: str) -> None:
        """The module's process subscribed to its inputs: deliver what waits for it."""
        self._subscribed.add(module)
        self.module_ready(module)

    def process_restarted(self, module: str) -> None:
        """A process of ``module`` starts or is being stopped: hold its inputs until a process subscribes again."""
        self._subscribed.discard(module)

    def module_ready(self, module: str) -> None:
        """A module (re)connected: deliver what waits for it, if its process has subscribed to its inputs."""
        if module not in self._subscribed:
            return
        prefix = f"{module}/"
        for ep in list(self._backlog):
            if ep.startswith(prefix):
                self._kick(ep)

    def _kick(self, ep: str) -> None:
        task = self._draining.get(ep)
        if task is None or task.done():
            self._draining[ep] = asyncio.create_task(self._drain(ep), name=f"drain-{ep}")

    async def _drain(self, ep: str) -> None:
        while True:
            batch = self.store.peek(ep, self.drain_batch)
            if not batch:
                self._backlog.discard(ep)
                return
            done = await self._hand_over(ep, batch)
            if done:
                self.store.remove(ep, [m.seq for m in batch[:done]])
            if done < len(batch):
                return  # endpoint went away; the next connect or sweep resumes
            await asyncio.sleep(0)

    async def _hand_over(self, ep: str, batch: list[QueuedMessage]) -> int:
        if ep == UPSTREAM:
            if not self.upstream.available():
                return 0
            msgs = [UpstreamMessage(m.system_properties.get("connectionDeviceId", self.device_id),
                                    m.system_properties.get("connectionModuleId"), m.properties,
                                    m.system_properties, m.body, m.enqueued_at) for m in batch]
            try:
                await self.upstream.send(msgs)
            except Exception:
                log.exception("upstream send failed; retrying later")
                return 0
            return len(batch)
        module, _, input_name = ep.partition("/")
        n = 0
        for m in batch:
            if not self._deliver(module, input_name, m.properties, m.system_properties, m.body):
                break
            n += 1
        return n

    async def _sweep(self) -> None:
        """Expire what outlived its TTL, and retry endpoints that are reachable again."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            for ep in list(self._backlog):
                if ep in self._draining and not self._draining[ep].done():
                    continue
                self.store.peek(ep, 0)  # drops and counts expired messages
                if ep == UPSTREAM:
                    reachable = self.upstream.available()
                else:
                    module = ep.partition("/")[0]
                    reachable = (self._inputs is not None and module in self._subscribed
                                 and self._inputs.is_connected(Identity(self.device_id, module)))
                if reachable:
                    self._kick(ep)

    def backlog(self) -> dict[str, dict[str, int]]:
        return {ep: {"pending": s.pending, "delivered": s.delivered, "expired": s.expired}
                for ep, s in sorted(self.store.stats().items())}
