"""Retention of message logs: by age and by size, one policy for every store that keeps messages.

The IoT Hub stand-in's device-to-cloud store and the device's ``$upstream`` log both keep ``Retention``: a store
implements ``prune(older_than_ms, max_bytes)`` (drop what was enqueued before the cut-off, then the oldest until
what is left fits ``max_bytes`` of bodies and properties) and the runner calls it at start and every
``INTERVAL`` seconds, then gives the freed pages back (``edgegen.common.sqlitespace``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["DEFAULT_RETENTION_BYTES", "DEFAULT_RETENTION_DAYS", "INTERVAL", "Retention"]

DEFAULT_RETENTION_DAYS = 1.0  # IoT Hub's default for the built-in endpoint
DEFAULT_RETENTION_BYTES = 256 * 1024 * 1024
INTERVAL = 60.0


@dataclass(frozen=True)
class Retention:
    days: float = DEFAULT_RETENTION_DAYS
    max_bytes: int = DEFAULT_RETENTION_BYTES

    def __post_init__(self) -> None:
        if self.days <= 0 or self.max_bytes <= 0:
            raise ValueError("retention needs a positive age and size")

    def cutoff_ms(self, now: float | None = None) -> int:
        """Messages enqueued before this (epoch milliseconds) are past the age limit."""
        return int(((time.time() if now is None else now) - self.days * 86400) * 1000)

    def describe(self) -> str:
        return f"{self.days:g} days, {self.max_bytes / 1024 / 1024:g} MB"
