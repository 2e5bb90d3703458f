"""The edge hub's brain behind the MQTT gateway: telemetry to the router, module twins, readiness events.

``EdgeHubHandler`` implements the gateway's ``GatewayHandler``: a module's telemetry goes to the ``Router``; its
twin GET is answered from ``Twins`` (desired from the deployment, reported as the module patched it); a module that
connects or subscribes gets what the store kept for it. ``apply_twins`` pushes desired patches with increasing
``$version`` to the modules whose desired properties changed, each to that module only. ``ClientEvents``
listeners hear when a module enables direct methods and when it goes away (how edgeHub's cloud proxy knows to
subscribe to methods upstream for it, and to stop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from edgegen.local.mqtt.errors import InvalidRequest, NotPermitted
from edgegen.local.mqtt.gateway import BaseGatewayHandler, TelemetryMessage
from edgegen.local.mqtt.topics import Identity
from edgegen.local.router import Router
from edgegen.local.twins import TwinFile, Twins

__all__ = ["ClientEvents", "DesiredPush", "EdgeHubHandler"]

log = logging.getLogger(__name__)


class DesiredPush(Protocol):
    def push_desired_patch(self, identity: Identity, patch: Mapping[str, Any], version: int) -> bool: ...


class ClientEvents(Protocol):
    """Told (on the gateway's loop; must not block) when a module subscribes to methods or disconnects."""

    def methods_subscribed(self, module: str) -> None: ...

    def module_disconnected(self, module: str) -> None: ...


class EdgeHubHandler(BaseGatewayHandler):
    def __init__(self, device_id: str, router: Router, twins: Twins, twin_file: TwinFile | None = None,
                 save_delay: float = 0.5) -> None:
        self.device_id = device_id
        self.router = router
        self.twins = twins
        self.twin_file = twin_file
        self.save_delay = save_delay
        self._save_handle: asyncio.TimerHandle | None = None
        self.connected: set[str] = set()
        self.listeners: list[ClientEvents] = []

    def _module(self, identity: Identity) -> str:
        if identity.device_id != self.device_id or not identity.module_id:
            raise NotPermitted(f"{identity} is not a module of device {self.device_id!r}")
        return identity.module_id

    async def on_connect(self, identity: Identity) -> None:
        if identity.module_id:
            self.connected.add(identity.module_id)
            self.router.module_ready(identity.module_id)

    async def on_disconnect(self, identity: Identity) -> None:
        if identity.module_id:
            self.connected.discard(identity.module_id)
            for listener in self.listeners:
                listener.module_disconnected(identity.module_id)

    async def on_subscribe(self, identity: Identity, topic_filters: list[str]) -> None:
        if identity.module_id and any("/inputs/" in f for f in topic_filters):
            self.router.inputs_subscribed(identity.module_id)
        self._methods_subscribed(identity, topic_filters)

    async def on_session_resumed(self, identity: Identity, topic_filters: list[str]) -> None:
        self._methods_subscribed(identity, topic_filters)  # the SDK does not subscribe again after a reconnect

    def _methods_subscribed(self, identity: Identity, topic_filters: list[str]) -> None:
        if identity.module_id and any(f.startswith("$iothub/methods/POST/") for f in topic_filters):
            for listener in self.listeners:
                listener.methods_subscribed(identity.module_id)

    async def on_telemetry(self, identity: Identity, message: TelemetryMessage) -> None:
        await self.router.on_telemetry(identity, message.properties, message.system_properties, message.payload)

    async def on_twin_get(self, identity: Identity) -> tuple[int, dict[str, Any]]:
        return 200, self.twins.get(self._module(identity)).document()

    async def on_twin_reported(self, identity: Identity, patch: dict[str, Any]) -> tuple[int, int | None]:
        if not isinstance(patch, dict):
            raise InvalidRequest("a reported patch must be a JSON object")
        version = self.twins.report(self._module(identity), patch)
        self._schedule_save()
        return 204, version

    def apply_twins(self, desired_by_module: Mapping[str, Mapping[str, Any]], gateway: DesiredPush | None) -> list[str]:
        """Set desired properties from a deployment; push patches to changed modules; return their names."""
        patches = self.twins.apply_desired(desired_by_module)
        if gateway is not None:
            for module, patch in patches.items():
                if module.startswith("$"):
                    continue
                body = {k: v for k, v in patch.items() if k != "$version"}
                gateway.push_desired_patch(Identity(self.device_id, module), body, int(patch["$version"]))
        self.save_now()
        return sorted(patches)

    def report_system(self, module: str, reported: Mapping[str, Any]) -> None:
        """Reported properties written by the runtime itself (``$edgeAgent`` module statuses, ``$edgeHub``)."""
        self.twins.report(module, reported)
        self._schedule_save()

    def _schedule_save(self) -> None:
        if self.twin_file is None or self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save_now()
            return
        self._save_handle = loop.call_later(self.save_delay, self.save_now)

    def save_now(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self.twin_file is not None:
            try:
                self.twin_file.save(self.twins)
            except OSError:
                log.exception("cannot save twins to %s", self.twin_file.path)
