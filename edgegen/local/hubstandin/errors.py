"""Domain errors of the IoT Hub stand-in; the HTTP layer maps each class to a status and Azure error code."""

from __future__ import annotations

import datetime as _dt
import json
import time
import uuid
from typing import Any

from edgegen.errors import EdgegenError
from edgegen.local.mqtt.errors import (
    GatewayError,
    GatewayUnavailable,
    InvalidRequest,
    MethodTimeoutError,
    NotConnected,
    NotPermitted,
    Revoked,
)

__all__ = [
    "AlreadyExists",
    "DeviceNotOnline",
    "HubError",
    "InvalidArgument",
    "MethodNotAllowed",
    "MethodTimeout",
    "NotFound",
    "PreconditionFailed",
    "QueueFull",
    "ServiceUnavailable",
    "TooLarge",
    "Unauthorized",
    "from_gateway",
]


class HubError(EdgegenError):
    """Base of the stand-in's errors; ``code`` is the Azure error code (``iothub-errorcode``)."""

    default_code = "ServerError"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code or self.default_code

    def body(self) -> dict[str, Any]:
        """The JSON error body IoT Hub sends."""
        return {"Message": f"ErrorCode:{self.code};{self.message}",
                "ExceptionMessage": f"Tracking ID:{uuid.uuid4().hex}-G:0-TimeStamp:{_timestamp()}"}


def _timestamp() -> str:
    """IoT Hub's error time stamp, ``MM/DD/YYYY HH:MM:SS`` in UTC."""
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())


def _method_error(number: int, message: str, info: dict[str, Any]) -> dict[str, Any]:
    """A direct-method error as IoT Hub words it: a JSON document inside ``Message``."""
    now = _dt.datetime.now(_dt.UTC)
    inner = {"errorCode": number, "trackingId": f"{uuid.uuid4().hex}-G:0-TimeStamp:{now:%m/%d/%Y %H:%M:%S}",
             "message": message, "info": info, "timestampUtc": now.isoformat().replace("+00:00", "Z")}
    return {"Message": json.dumps(inner, separators=(",", ":")), "ExceptionMessage": ""}


class NotFound(HubError):
    default_code = "NotFound"


class AlreadyExists(HubError):
    default_code = "Conflict"


class PreconditionFailed(HubError):
    default_code = "PreconditionFailed"


class InvalidArgument(HubError):
    default_code = "ArgumentInvalid"


class Unauthorized(HubError):
    default_code = "IotHubUnauthorizedAccess"


class DeviceNotOnline(HubError):
    """404103: the device or module is not connected with methods subscribed (within the connect timeout)."""

    default_code = "DeviceNotOnline"

    def __init__(self, message: str, *, connect_timeout: float = 0.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.connect_timeout = connect_timeout

    def body(self) -> dict[str, Any]:
        seconds = int(self.connect_timeout)
        timeout = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return _method_error(404103, "Timed out waiting for device to connect.", {"timeout": timeout})


class MethodTimeout(HubError):
    """504101: the device did not answer within ``responseTimeoutInSeconds``."""

    default_code = "GatewayTimeout"

    def body(self) -> dict[str, Any]:
        return _method_error(504101, "Timed out waiting for the response from device.", {})


class MethodNotAllowed(HubError):
    default_code = "MethodNotAllowed"


class TooLarge(HubError):
    default_code = "RequestEntityTooLarge"


class QueueFull(HubError):
    """A device's cloud-to-device queue holds its maximum (50) of messages."""

    default_code = "DeviceMaximumQueueDepthExceeded"


class ServiceUnavailable(HubError):
    """503: the hub cannot take the request now (its device gateway is stopping, or a store is down)."""

    default_code = "ServiceUnavailable"


def from_gateway(exc: GatewayError, *, connect_timeout: float = 0.0) -> HubError:
    """The IoT Hub error for a gateway error, by its type (same message and hint)."""
    if isinstance(exc, NotConnected):
        return DeviceNotOnline(exc.message, connect_timeout=connect_timeout, hint=exc.hint)
    if isinstance(exc, MethodTimeoutError):
        return MethodTimeout(exc.message, hint=exc.hint)
    kind = _FROM_GATEWAY.get(type(exc))
    if kind is None:
        kind = next((hub for gw, hub in _FROM_GATEWAY.items() if isinstance(exc, gw)), HubError)
    return kind(exc.message, hint=exc.hint)


_FROM_GATEWAY: dict[type[GatewayError], type[HubError]] = {
    InvalidRequest: InvalidArgument,
    Revoked: Unauthorized,
    NotPermitted: Unauthorized,
    GatewayUnavailable: ServiceUnavailable,
}
