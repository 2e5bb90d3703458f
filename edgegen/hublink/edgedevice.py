"""Run the local edge device runtime joined to an IoT Hub: deployment from the twins, ``$upstream`` to the hub.

This is what ``edgegen device run --connection-string …`` needs from the hub side: it builds the device
(``edgegen.local.device``) with an ``EdgeLink`` as its deployment source and upstream sink, relays direct
methods from the hub to its modules and ``$edgeAgent`` (``MethodRelay``), and reports the agent's module status
to ``$edgeAgent`` reported properties every ``report_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.hublink.edgelink import EdgeLink
from edgegen.hublink.methods import MethodRelay

__all__ = ["HubDeviceOptions", "run_device_on_hub"]


@dataclass
class HubDeviceOptions:
    connection_string: str
    state_dir: Path
    solution_dir: Path
    ca_file: str | None = None
    rest_host: str | None = None  # where the hub's REST API listens when not HostName:443 (the stand-in's 127.x:port)
    address: str | None = None
    share_site_packages: bool = True
    venv_dir: Path | None = None
    report_interval: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)  # more DeviceConfig fields (e.g. backoff)


async def run_device_on_hub(options: HubDeviceOptions, stop: asyncio.Event,
                            on_ready: Callable[[Any], None] | None = None) -> None:
    """Connect, wait for a deployment, run it, follow changes, until ``stop`` is set; then stop everything."""
    from edgegen.local.device import Device, DeviceConfig

    async with EdgeLink(options.connection_string, options.ca_file, state_dir=options.state_dir,
                        rest_host=options.rest_host) as link:
        config = DeviceConfig(
            state_dir=options.state_dir, source=link.source, upstream=link.upstream,
            solution_dir=options.solution_dir, address=options.address, device_id=link.device_id,
            hub_hostname=link.host, share_site_packages=options.share_site_packages,
            venv_dir=options.venv_dir, **options.extra)
        device = Device(config)
        relay = MethodRelay(link, device)
        device.hub.listeners.append(relay)
        await relay.start()
        try:
            await _run(device, options, link, stop, on_ready)
        finally:
            await relay.close()


async def _run(device: Any, options: HubDeviceOptions, link: EdgeLink, stop: asyncio.Event,
               on_ready: Callable[[Any], None] | None) -> None:
    """Start the device (it waits for the first deployment), report its status until ``stop``, then stop it."""
    from edgegen.local.control import mark_waiting

    waiting = mark_waiting(options.state_dir, link.device_id, link.host)  # `device status` says so meanwhile
    start = asyncio.create_task(device.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({start, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        with contextlib.suppress(FileNotFoundError):
            waiting.unlink()
    if not start.done():  # stopped while waiting for the first deployment
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        with contextlib.suppress(Exception):
            await device.stop()
        return
    stopping.cancel()
    start.result()
    if on_ready is not None:
        on_ready(device)
    try:
        while not stop.is_set():
            await link.report(device.agent.status())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.report_interval)
    finally:
        await device.stop()
