"""The local device's one error type (agent, router, store, workload API, control API)."""

from __future__ import annotations

from edgegen.errors import EdgegenError

__all__ = ["DeviceError"]


class DeviceError(EdgegenError):
    """Something about the local edge device: a bad manifest, a module without code, a device not running."""
