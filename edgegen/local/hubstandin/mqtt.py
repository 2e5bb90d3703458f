"""The stand-in's device side: the shared MQTT gateway in hub mode, wired to ``HubBackend``.

- Devices connect as ``{device}`` and edge modules as ``{device}/{module}`` with SAS tokens signed with that
  identity's own key (as in IoT Hub, an edge device's key does not sign for its modules: the device runtime
  fetches module keys over REST with a device-scoped token). Disabled or unknown identities are refused.
- Twins come from the hub store: ``$edgeAgent``/``$edgeHub`` desired are what the applied deployment says;
  desired changes are pushed as patches with ``$version``; reported patches are stored.
- Telemetry is stored durably (``iothub-connection-device-id``/``-module-id``, enqueued time), the messages of
  one event-loop turn in one transaction, then acknowledged (PUBACK) and fanned out to monitors.
- Devices and modules may also sign with a shared access policy that has DeviceConnect (``mqttauth``).
- The live feed (its contract for clients is ``edgegen.local.hubstandin.feed``, the server side
  ``livefeed.LiveFeed``): a monitor connects as module ``{FEED_DEVICE}/{session}`` signing with a key of a policy
  that has ServiceConnect and subscribes to its own ``inputs/#``; every stored message is delivered to input
  ``events`` as a JSON envelope, with flow control.
- Cloud-to-device messages stay in the hub's queue (``c2d.py``); a device connected and subscribed to
  ``devices/{id}/messages/devicebound/#`` gets them locked and sent (QoS 1, not kept in its MQTT session); its
  PUBACK completes the message, a disconnect first releases the lock so it is delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgegen.local.hubstandin.backend import HubBackend, IncomingMessage
from edgegen.local.hubstandin.c2d import C2DMessage
from edgegen.local.hubstandin.errors import NotFound, from_gateway
from edgegen.local.hubstandin.feed import FEED_DEVICE, FEED_INPUT, MQTT_PORT, feed_envelope
from edgegen.local.hubstandin.livefeed import LiveFeed
from edgegen.local.hubstandin.mqttauth import HubMqttAuthenticator
from edgegen.local.mqtt import (
    BaseGatewayHandler,
    GatewayError,
    GatewayUnavailable,
    Identity,
    MqttGateway,
    NotPermitted,
    Revoked,
    SqliteSessionStore,
    TelemetryMessage,
    TopicError,
    server_ssl_context,
)

__all__ = ["FEED_DEVICE", "FEED_INPUT", "HubGateway", "feed_envelope", "start_hub_gateway"]

log = logging.getLogger(__name__)

SESSION_EXPIRY = 24 * 3600.0

# wire names of system properties -> the names Event Hubs consumers (and az monitor-events) show
_SYSTEM_NAMES = {"$.mid": "message_id", "$.cid": "correlation_id", "$.uid": "user_id", "$.ct": "content_type",
                 "$.ce": "content_encoding", "$.exp": "absolute_expiry_time", "$.ifid": "dt-dataschema"}


def c2d_properties(message: C2DMessage) -> dict[str, str]:
    """The property bag IoT Hub puts on a devicebound topic: system properties, ``iothub-ack``, then the
    application properties."""
    bag = {"$.mid": message.message_id, "$.to": message.system.get("to") or
           f"/devices/{message.device_id}/messages/devicebound"}
    for key, name in (("correlation_id", "$.cid"), ("user_id", "$.uid"), ("content_type", "$.ct"),
                      ("content_encoding", "$.ce")):
        if message.system.get(key):
            bag[name] = message.system[key]
    bag["$.exp"] = _dt.datetime.fromtimestamp(message.expiry, _dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    bag["iothub-ack"] = message.ack
    bag.update(message.properties)
    return bag


class HubGateway(BaseGatewayHandler):
    def __init__(self, backend: HubBackend, device_host: str, state_dir: Path,
                 max_connections: int | None = None) -> None:
        self.backend = backend
        auth = HubMqttAuthenticator(self._keys, backend.policies, host=device_host)
        self.telemetry_sink = self  # telemetry arrives through submit()
        self._pending: list[IncomingMessage] = []
        self._pending_done: list[Callable[[bool], None] | None] = []
        self._flush_handle: asyncio.Handle | None = None
        # offline persistent sessions (a monitor killed without unsubscribing, a device gone for good) are
        # dropped after a day; twins are re-read on every reconnect, so a device loses nothing it needs
        self.gateway = MqttGateway(auth, self, session_store=SqliteSessionStore(state_dir / "hub-sessions.db"),
                                   session_expiry=SESSION_EXPIRY, max_connections=max_connections)
        self.feed = LiveFeed(backend.store, self.gateway)
        backend.desired_listeners.append(self._push_desired)
        backend.batch_listeners.append(self.feed.on_stored)
        backend.method_invoker = self._invoke
        backend.c2d.enqueued_listeners.append(self._deliver_c2d)
        backend.revoked_listeners.append(self._revoked)

    # ---- authentication ------------------------------------------------------------------------------
    def _keys(self, identity: Identity) -> list[str] | None:
        """An enabled identity's own keys (monitors sign with a policy's: see ``mqttauth``)."""
        if identity.device_id == FEED_DEVICE:
            return None
        device = self.backend.devices.get(identity.device_id)
        if device is None or device.get("status") != "enabled":
            return None
        try:
            return self.backend.identity_keys(identity.device_id, identity.module_id)
        except Exception:
            return None

    # ---- handler hooks -------------------------------------------------------------------------------
    async def on_connect(self, identity: Identity) -> None:
        if identity.device_id != FEED_DEVICE:
            self.backend.set_connection_state(identity.device_id, identity.module_id, True)
            if identity.module_id is None:  # a persistent session may already hold the C2D subscription
                self._deliver_c2d(identity.device_id)

    async def on_disconnect(self, identity: Identity) -> None:
        if identity.device_id != FEED_DEVICE:
            self.backend.set_connection_state(identity.device_id, identity.module_id, False)
            if identity.module_id is None:
                self.backend.c2d.release_locks(identity.device_id)
        elif identity.module_id is not None:
            self.feed.detach(identity.module_id)

    def _deliver_c2d(self, device_id: str) -> None:
        identity = Identity(device_id, None)
        probe = f"devices/{device_id}/messages/devicebound/"
        if not self.gateway.is_connected(identity) or not self.gateway.is_subscribed(identity, probe):
            return
        for message in self.backend.c2d.lock_next(device_id):
            self.gateway.deliver_c2d(identity, c2d_properties(message), message.body, qos=1,
                                     tag=message.lock_token)

    async def on_subscribe(self, identity: Identity, topic_filters: list[str]) -> None:
        if identity.device_id != FEED_DEVICE and identity.module_id is None:
            self._deliver_c2d(identity.device_id)
        elif identity.device_id == FEED_DEVICE and identity.module_id is not None:
            self.feed.attach(identity.module_id)

    async def on_session_resumed(self, identity: Identity, topic_filters: list[str]) -> None:
        await self.on_subscribe(identity, topic_filters)

    def on_delivered(self, identity: Identity, tag: str) -> None:
        """A tagged delivery was acknowledged: a monitor's feed message (tag: its seq) or a C2D message (tag: its
        lock token), which the PUBACK completes."""
        if identity.device_id == FEED_DEVICE:
            if identity.module_id is not None:
                self.feed.on_delivered(identity.module_id, tag)
        else:
            with contextlib.suppress(NotFound):
                self.backend.c2d.complete(identity.device_id, tag)

    # ---- telemetry: the messages of one loop turn are stored together, then acknowledged -------------------
    def submit(self, identity: Identity, message: TelemetryMessage, done: Callable[[bool], None] | None) -> None:
        if identity.device_id == FEED_DEVICE:
            raise NotPermitted("monitors do not send telemetry")
        if not self._enabled(identity):  # revoked while this message was on its way: neither stored nor acked
            raise Revoked(f"{identity} is disabled or deleted")
        names = _SYSTEM_NAMES
        system = {names.get(k, k): v for k, v in message.system_properties.items() if k != "$.on"}
        system["iothub-message-source"] = "Telemetry"
        self._pending.append((identity.device_id, identity.module_id, message.properties, system, message.payload))
        self._pending_done.append(done)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        batch, self._pending = self._pending, []
        dones, self._pending_done = self._pending_done, []
        if not batch:
            return
        try:
            self.backend.record_messages(batch)
            stored = True
        except Exception:
            log.exception("storing %d device-to-cloud messages failed; their senders get no PUBACK", len(batch))
            stored = False
        for done in dones:
            if done is not None:
                done(stored)

    async def on_telemetry(self, identity: Identity, message: TelemetryMessage) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self.submit(identity, message, fut.set_result)
        if not await fut:
            raise GatewayUnavailable("the message could not be stored")

    async def on_twin_get(self, identity: Identity) -> tuple[int, dict[str, Any]]:
        if identity.device_id == FEED_DEVICE:
            return 404, {}
        return 200, self.backend.device_twin_view(identity.device_id, identity.module_id)

    async def on_twin_reported(self, identity: Identity, patch: dict[str, Any]) -> tuple[int, int | None]:
        if identity.device_id == FEED_DEVICE:
            return 404, None
        return 204, self.backend.update_reported(identity.device_id, identity.module_id, patch)

    def _enabled(self, identity: Identity) -> bool:
        device = self.backend.devices.get(identity.device_id)
        if device is None or device.get("status") != "enabled":
            return False
        return identity.module_id is None or f"{identity.device_id}/{identity.module_id}" in self.backend.modules

    # ---- backend events ------------------------------------------------------------------------------
    def _revoked(self, device_id: str, module_id: str | None, deleted: bool) -> None:
        with contextlib.suppress(TopicError):  # an id the gateway could never have seen
            self.gateway.revoke(Identity(device_id, module_id), forget=deleted,
                                reason="identity deleted" if deleted else "identity disabled or its keys changed")

    def _push_desired(self, device_id: str, module_id: str | None, patch: dict[str, Any], version: int) -> None:
        with contextlib.suppress(GatewayError):
            self.gateway.push_desired_patch(Identity(device_id, module_id), patch, version)

    async def _invoke(self, device_id: str, module_id: str | None, name: str, payload: Any,
                      timeout: float, connect_timeout: float) -> tuple[int, Any]:
        try:
            return await self.gateway.invoke_method(Identity(device_id, module_id), name, payload, timeout,
                                                    connect_timeout)
        except GatewayError as exc:
            raise from_gateway(exc, connect_timeout=connect_timeout) from None

    async def close(self) -> None:
        await self.gateway.stop()
        self.flush()
        self.feed.close()
        self.gateway.store.close()


async def start_hub_gateway(backend: HubBackend, address: str, cert: tuple[str, str], state_dir: Path,
                            max_connections: int | None = None) -> HubGateway:
    hub = HubGateway(backend, address, state_dir, max_connections)
    try:
        await hub.gateway.start(address, MQTT_PORT, server_ssl_context(*cert))
    except BaseException:
        hub.gateway.store.close()
        raise
    return hub
