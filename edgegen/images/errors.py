"""The images area's one error type."""

from __future__ import annotations

from edgegen.errors import EdgegenError

__all__ = ["ImageError"]


class ImageError(EdgegenError):
    """Build, push, registry, engine or digest problem; messages never contain a password (see Masker)."""
