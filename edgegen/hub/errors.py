"""Errors of the hub area (deploying, monitoring, talking to an IoT Hub or the local stand-in)."""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = ["HubClientError"]


class HubClientError(EdgegenError):
    """A hub call that failed: unreachable, refused (401), not found, conflicting, or a bad request."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 hint: str | None = None, location: Location | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.status = status
        self.code = code
