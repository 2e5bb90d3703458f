"""The MQTT area's errors under one root, ``MqttError``: the codec's, the topic dialect's, the authenticator's and
the gateway's.

A gateway error's class says what went wrong; its ``status`` (a class attribute) is the HTTP-like status IoT Hub
and edgeHub answer for it, so callers branch on the type (``except NotConnected``) and wire code reads
``exc.status``. Nothing here knows a transport.
"""

from __future__ import annotations

from typing import ClassVar

from edgegen.errors import EdgegenError

__all__ = [
    "GatewayError",
    "GatewayUnavailable",
    "InvalidRequest",
    "MethodTimeoutError",
    "MqttError",
    "NotConnected",
    "NotPermitted",
    "Revoked",
]


class MqttError(EdgegenError):
    """Base of every error of the MQTT server: codec, topics, authentication, gateway."""


class GatewayError(MqttError):
    """A gateway operation that cannot be done. Raise a subclass; this base answers 500."""

    status: ClassVar[int] = 500


class InvalidRequest(GatewayError):
    """The request cannot be served as asked (a device has no inputs, a bad input name, a malformed patch)."""

    status = 400


class Revoked(GatewayError):
    """The identity is disabled or deleted."""

    status = 401


class NotPermitted(GatewayError):
    """The identity may not do this (a monitor sending telemetry, another device's module)."""

    status = 403


class NotConnected(GatewayError):
    """The target is not connected, or has not subscribed to what the call needs (direct methods)."""

    status = 404


class GatewayUnavailable(GatewayError):
    """The gateway (or what it hands messages to) cannot take the request now: stopping, restarting, store down."""

    status = 503


class MethodTimeoutError(GatewayError):
    """The module or device did not answer a direct method within its response timeout."""

    status = 504

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "the module did not answer in time; is its method handler running?")
