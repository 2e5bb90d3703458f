"""Domain errors of the IoT Hub stand-in; the HTTP layer maps each class to a status and Azure error code."""

from __future__ import annotations

from edgegen.errors import EdgegenError

__all__ = [
    "AlreadyExists",
    "DeviceNotOnline",
    "HubError",
    "InvalidArgument",
    "MethodTimeout",
    "NotFound",
    "PreconditionFailed",
    "Unauthorized",
]


class HubError(EdgegenError):
    """Base of the stand-in's errors; ``code`` is the Azure error code (``iothub-errorcode``)."""

    default_code = "ServerError"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code or self.default_code


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
    default_code = "DeviceNotOnline"


class MethodTimeout(HubError):
    default_code = "GatewayTimeout"
