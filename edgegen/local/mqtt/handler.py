"""What the gateway hands over and to whom: the handler Protocol, the telemetry message (the gateway's errors are
in ``edgegen.local.mqtt.errors``; re-exported here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edgegen.local.mqtt.errors import GatewayError, MethodTimeoutError
from edgegen.local.mqtt.topics import Identity

__all__ = ["BaseGatewayHandler", "GatewayError", "GatewayHandler", "MethodTimeoutError", "TelemetryMessage",
           "TelemetrySink"]


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """One telemetry publish: custom ``properties``, ``system_properties`` keyed ``$.mid``/``$.ct``/…, payload."""

    properties: dict[str, str]
    system_properties: dict[str, str]
    payload: bytes
    output_name: str | None


class GatewayHandler(Protocol):
    async def on_connect(self, identity: Identity) -> None: ...
    async def on_disconnect(self, identity: Identity) -> None: ...
    async def on_subscribe(self, identity: Identity, topic_filters: list[str]) -> None: ...
    async def on_session_resumed(self, identity: Identity, topic_filters: list[str]) -> None: ...
    async def on_telemetry(self, identity: Identity, message: TelemetryMessage) -> None: ...
    async def on_twin_get(self, identity: Identity) -> tuple[int, dict[str, Any]]: ...
    async def on_twin_reported(self, identity: Identity, patch: dict[str, Any]) -> tuple[int, int | None]: ...
    def on_delivered(self, identity: Identity, tag: str) -> None: ...


class TelemetrySink(Protocol):
    """Telemetry taken without a task per message (a handler's optional ``telemetry_sink``).

    ``submit`` returns at once; ``done(True)`` is called once the message is stored (the gateway then sends the
    PUBACK), ``done(False)`` if it could not be (the gateway closes the connection without one). ``done`` is
    None for QoS 0. Raising ``GatewayError`` refuses the message (the connection is closed)."""

    def submit(self, identity: Identity, message: TelemetryMessage, done: Callable[[bool], None] | None) -> None: ...


class BaseGatewayHandler:
    """Optional hooks as no-ops; subclasses implement telemetry and twins."""

    async def on_connect(self, identity: Identity) -> None:
        return None

    async def on_disconnect(self, identity: Identity) -> None:
        return None

    async def on_subscribe(self, identity: Identity, topic_filters: list[str]) -> None:
        return None

    async def on_session_resumed(self, identity: Identity, topic_filters: list[str]) -> None:
        """A client reconnected to its persistent session, whose subscriptions still hold (it sends no SUBSCRIBE)."""
        return None

    def on_delivered(self, identity: Identity, tag: str) -> None:
        """A tagged (transient) message was acknowledged by the client."""
        return None
