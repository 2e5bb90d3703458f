"""Run the stand-in in the foreground until Ctrl-C / SIGTERM or a duration (what ``edgegen hub serve`` does)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from edgegen.local.hubstandin.server import (
    DEFAULT_RETENTION_BYTES,
    DEFAULT_RETENTION_DAYS,
    HubInfo,
    HubStandIn,
)

__all__ = ["run_hub"]


async def run_hub(state_dir: Path, address: str, port: int | None, *, mqtt: bool = True, amqp: bool = True,
                  duration: float | None = None, retention_days: float = DEFAULT_RETENTION_DAYS,
                  retention_bytes: int = DEFAULT_RETENTION_BYTES,
                  on_ready: Callable[[HubInfo], None] | None = None,
                  on_note: Callable[[str], None] | None = None) -> None:
    """``port`` None: 443, or 8443 when 443 cannot be bound (``on_note`` gets the why)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with HubStandIn(state_dir, address, port, mqtt=mqtt, amqp=amqp, retention_days=retention_days,
                              retention_bytes=retention_bytes) as standin:
            assert standin.info is not None
            if standin.port_note and on_note is not None:
                on_note(standin.port_note)
            if on_ready is not None:
                on_ready(standin.info)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
