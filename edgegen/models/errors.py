"""The models area's error type."""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = ["Location", "ModelError"]


class ModelError(EdgegenError):
    """A model could not be registered, found, laid out, converted or profiled."""
