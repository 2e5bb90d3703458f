"""Watching device-to-cloud messages (placeholder until the stand-in's device side lands)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgegen.hub.errors import HubClientError

__all__ = ["MonitorFilter", "run_monitor"]


@dataclass(frozen=True)
class MonitorFilter:
    device: str | None = None
    module: str | None = None
    properties: set[str] = field(default_factory=set)
    content_type: str | None = None


def run_monitor(target: Any, filt: MonitorFilter, *, timeout: float | None, count: int | None,
                from_start: bool, output_format: str, echo: Callable[[str], None]) -> int:
    raise HubClientError("'edgegen monitor' is not implemented yet", hint="the hub's device side is in progress")
