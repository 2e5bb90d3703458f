"""``edgegen up``: the whole demo in one process — render, hub stand-in, edge device, deploy, live results.

1. render the solution's deployment template (``edgegen genconfig``) and validate it offline;
2. start the local IoT Hub stand-in (REST + MQTT) on a free 127.x address;
3. register an edge device and deploy the manifest to it (the real service SDK, as ``edgegen deploy -d``);
4. run the local edge device joined to the hub (``$upstream`` to the hub), its modules as processes or, with
   ``engine`` docker (or auto and an engine answers), as containers of the module images, which are built and
   pushed (to the registries ``.env`` names) before the deployment;
5. stream what arrives at the hub (the live feed, as ``edgegen monitor``) with a running summary,
   until ``stop`` is set (Ctrl-C) or ``duration`` passes; then stop the device, its modules and the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.loopback import first_free_address
from edgegen.hub.errors import HubClientError

__all__ = ["UpOptions", "UpSummary", "format_result", "pick_hub_address", "run_up"]


@dataclass
class UpOptions:
    solution_dir: Path
    state_dir: Path
    device_id: str = "edgegen-demo"
    duration: float | None = None
    platform: str | None = None
    hub_port: int | None = None  # None: IoT Hub's 443 (8443 when 443 cannot be bound)
    summary_interval: float = 5.0
    engine: str = "auto"  # "auto", "docker" or "process"
    engine_env: dict[str, str] | None = None  # DOCKER_HOST…; default: the environment


@dataclass
class UpSummary:
    started: float = field(default_factory=time.monotonic)
    total: int = 0
    by_module: Counter[str] = field(default_factory=Counter)
    anomalies: int = 0
    modules: dict[str, str] = field(default_factory=dict)  # module -> runtimeStatus
    manifest: str = ""
    hub: str = ""
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def add(self, module: str | None, payload: Any) -> None:
        self.total += 1
        self.by_module[module or "-"] += 1
        self._recent.append(time.monotonic())
        if isinstance(payload, dict) and payload.get("anomaly") is True:
            self.anomalies += 1

    def rate(self, window: float = 5.0) -> float:
        now = time.monotonic()
        span = min(window, max(now - self.started, 1e-6))
        return sum(1 for t in self._recent if t >= now - span) / span

    def overall_rate(self) -> float:
        """Results per second from the first result to the last (0 before two results)."""
        if len(self._recent) < 2:
            return 0.0
        return (len(self._recent) - 1) / max(self._recent[-1] - self._recent[0], 1e-6)

    def line(self, final: bool = False) -> str:
        mods = ", ".join(f"{m}={s}" for m, s in sorted(self.modules.items())) or "starting"
        label, rate = ("[done]", self.overall_rate()) if final else ("[summary]", self.rate())
        return (f"{label} {self.total} results at the hub, {rate:.1f} msg/s, {self.anomalies} anomalies"
                f" | modules: {mods}")

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "byModule": dict(self.by_module), "anomalies": self.anomalies,
                "modules": self.modules, "manifest": self.manifest, "hub": self.hub}


def pick_hub_address(https_port: int | None = None) -> str:
    """127.0.0.1 when the hub's ports are free (MQTT 8883, AMQP 5671, HTTPS ``https_port`` — by default 443,
    or 8443 where 443 cannot be bound), else another 127.x address."""
    candidates = ["127.0.0.1"] + [f"127.0.{n // 250}.{n % 250 + 2}" for n in range(1, 400)]
    for https in [https_port] if https_port is not None else [443, 8443]:
        addr = first_free_address(candidates, 8883, 5671, https)
        if addr is not None:
            return addr
    raise HubClientError("no free 127.x address for the local hub", hint="stop other local hubs and retry")


def format_result(device_id: str, module_id: str | None, payload: Any) -> str:
    text = json.dumps(payload, separators=(",", ":")) if not isinstance(payload, str) else payload
    if len(text) > 140:
        text = text[:137] + "..."
    return f"{time.strftime('%H:%M:%S')} {device_id}/{module_id or '-'}: {text}"


def _render(options: UpOptions, registry_credentials: bool = False) -> tuple[Path, dict[str, Any]]:
    from edgegen.hub.manifest import load_manifest
    from edgegen.models.registry import SolutionModels
    from edgegen.pipeline import genconfig

    result = genconfig(cwd=options.solution_dir, platform=options.platform, validate=True,
                       fail_on_validation_error=True, models=SolutionModels(options.solution_dir),
                       registry_credentials=registry_credentials)
    path = Path(result.output_path)
    if not path.is_absolute():
        path = options.solution_dir / path
    return path, load_manifest(path, validate=True).modules_content


async def run_up(options: UpOptions, stop: asyncio.Event, echo: Callable[[str], None],
                 on_tick: Callable[[UpSummary], None] | None = None) -> UpSummary:
    """Run the demo; ``echo`` gets each line, ``on_tick`` (when given) the summary ~5 times a second instead of
    the periodic summary lines."""
    from edgegen.hub.client import HubClient
    from edgegen.hub.connection import HubTarget
    from edgegen.hub.monitor import LocalFeed, MonitorFilter, format_event
    from edgegen.hublink.edgedevice import HubDeviceOptions, run_device_on_hub
    from edgegen.local.containers import choose_engine
    from edgegen.local.hubstandin.server import HubStandIn

    summary = UpSummary()
    choice = await asyncio.to_thread(choose_engine, options.engine, options.engine_env)
    if choice.engine is not None:
        choice.engine.close()
    echo(choice.reason)
    # containers pull the images up pushes, with the .env registry credentials (genconfig --registry-credentials)
    manifest, content = await asyncio.to_thread(_render, options, choice.kind == "docker")
    summary.manifest = str(manifest)
    echo(f"rendered {manifest}")
    if choice.kind == "docker":
        from edgegen.images.publish import build_and_push

        await asyncio.to_thread(build_and_push, options.solution_dir, options.platform, options.engine_env, echo)
    address = pick_hub_address(options.hub_port)
    hub_state = options.state_dir / "hub"
    async with HubStandIn(hub_state, address, options.hub_port, mqtt=True) as hub:
        info = hub.info
        assert info is not None
        if hub.port_note:
            echo(f"note: {hub.port_note}")
        summary.hub = info.host_name
        echo(f"local IoT Hub on https://{info.host_name} (devices: mqtts://{info.address}:8883)")
        target = HubTarget(info.connection_string, info.host_name, info.ca_file, "local stand-in", hub_state)
        client = HubClient(target)
        identity = await asyncio.to_thread(client.create_device, options.device_id, edge=True, exist_ok=True)
        echo(f"edge device {options.device_id!r} registered")
        feed = LocalFeed(target)
        await asyncio.to_thread(feed.__enter__)
        try:
            await asyncio.to_thread(feed.wait_ready)
            await asyncio.to_thread(client.deploy_to_device, options.device_id, content)
            modules = sorted(((content.get("$edgeAgent") or {}).get("properties.desired") or {}).get("modules") or {})
            echo(f"deployed {manifest.name} to {options.device_id}: modules {', '.join(modules) or 'none'}")
            device_stop = asyncio.Event()
            holder: dict[str, Any] = {}
            dev_options = HubDeviceOptions(identity.connection_string, options.state_dir / "device",
                                           options.solution_dir, ca_file=info.ca_file, rest_host=info.host_name,
                                           extra={"engine": choice.kind, "engine_env": options.engine_env})
            device_task = asyncio.create_task(
                run_device_on_hub(dev_options, device_stop, on_ready=lambda d: holder.setdefault("device", d)))
            echo("starting the edge device runtime and its modules; results arriving at the hub:")
            deadline = None if options.duration is None else time.monotonic() + options.duration
            next_summary = time.monotonic() + options.summary_interval
            filt = MonitorFilter()
            try:
                while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    if device_task.done():
                        device_task.result()  # raises what stopped it
                        raise HubClientError("the edge device runtime stopped unexpectedly")
                    for message in feed.messages(timeout=0):
                        payload = format_event(message, filt)["event"]["payload"]
                        summary.add(message.module_id, payload)
                        echo(format_result(message.device_id, message.module_id, payload))
                    if "device" in holder:
                        summary.modules = {name: str(s.get("runtimeStatus", "?"))
                                           for name, s in holder["device"].agent.status().items()}
                    if on_tick is not None:
                        on_tick(summary)
                    elif time.monotonic() >= next_summary:
                        echo(summary.line())
                        next_summary += options.summary_interval
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.2)
            finally:
                echo("stopping the edge device, its modules and the hub…")
                device_stop.set()
                try:
                    await asyncio.wait_for(device_task, 60)
                except (TimeoutError, asyncio.CancelledError):
                    device_task.cancel()
                for message in feed.messages(timeout=0):
                    summary.add(message.module_id, format_event(message, filt)["event"]["payload"])
        finally:
            await asyncio.to_thread(feed.__exit__, None, None, None)
    return summary
