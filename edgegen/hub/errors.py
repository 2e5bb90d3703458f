"""Errors of the hub area (deploying, monitoring, talking to an IoT Hub or the local stand-in).

A refused call raises the subclass for the hub's HTTP status (``hub_error``), so callers branch on the type
(``except HubNotFound``); ``status`` and ``code`` keep what the hub answered (``code`` is ``iothub-errorcode``).
"""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = [
    "HubBadRequest",
    "HubClientError",
    "HubConflict",
    "HubNotFound",
    "HubPreconditionFailed",
    "HubThrottled",
    "HubUnauthorized",
    "HubUnavailable",
    "hub_error",
]


class HubClientError(EdgegenError):
    """A hub call that failed: unreachable, refused, not found, conflicting, or a bad request.

    Raised as such when the hub cannot be reached or the file that drives the call is wrong (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 hint: str | None = None, location: Location | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.status = status
        self.code = code


class HubBadRequest(HubClientError):
    """400: the hub rejected the request's content."""


class HubUnauthorized(HubClientError):
    """401 or 403: the credentials are wrong, expired, or lack the right."""


class HubNotFound(HubClientError):
    """404: no such device, module or deployment (or the device is not online for a method)."""


class HubConflict(HubClientError):
    """409: it exists already."""


class HubPreconditionFailed(HubClientError):
    """412: the ETag did not match (someone else changed it)."""


class HubThrottled(HubClientError):
    """429: too many requests; try again later."""


class HubUnavailable(HubClientError):
    """5xx: the hub failed or is busy."""


_BY_STATUS: dict[int, type[HubClientError]] = {
    400: HubBadRequest, 401: HubUnauthorized, 403: HubUnauthorized, 404: HubNotFound, 409: HubConflict,
    412: HubPreconditionFailed, 429: HubThrottled,
}


def hub_error(message: str, status: int, *, code: str | None = None, hint: str | None = None) -> HubClientError:
    """The error for a hub's HTTP answer ``status``: its subclass, or HubClientError for a status not listed."""
    kind = _BY_STATUS.get(status) or (HubUnavailable if status >= 500 else HubClientError)
    return kind(message, status=status, code=code, hint=hint)
