"""Run a local Device on its own event loop thread, and build manifests of the repo's solution for tests."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from edgegen.generator.modulejson import load_module_json
from edgegen.local.device import Device, DeviceConfig
from tests.support.loopthread import LoopThread
from tests.support.waits import DEVICE_START, DEVICE_STOP

T = TypeVar("T")


class DeviceThread:
    """``with DeviceThread(config) as dev:`` — the device runs on a private loop; ``call``/``run`` reach into it."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self._loop_thread = LoopThread("device-loop")
        self.loop = self._loop_thread.loop
        self.device: Device | None = None

    def __enter__(self) -> DeviceThread:
        self._loop_thread.start()

        async def start() -> Device:
            dev = Device(self.config)
            await dev.start()
            return dev

        self.device = self.run(start, timeout=DEVICE_START)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.device is not None:
                self.run(self.device.stop, timeout=DEVICE_STOP)
        finally:
            self._loop_thread.stop()

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
        return self._loop_thread.run(coro_fn(), timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        return self._loop_thread.call(fn, timeout=timeout)

    def reported(self, module: str) -> dict[str, Any]:
        assert self.device is not None
        dev = self.device
        return self.call(lambda: dev.hub.twins.get(module).document()["reported"])

    def upstream(self) -> list[dict[str, Any]]:
        from edgegen.local.upstream import upstream_event

        assert self.device is not None and self.device.local_upstream is not None
        up = self.device.local_upstream
        return self.call(lambda: [upstream_event(s, m) for s, m in up.read(0, 100000)])


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def solution_manifest(repo: Path) -> dict[str, Any]:
    """The repo's deployment.template.json rendered for amd64 (with the generator when it can, else by hand)."""
    try:
        from edgegen.models.registry import SolutionModels
        from edgegen.pipeline import genconfig

        result = genconfig(cwd=repo, platform="amd64", write=False, validate=False, environ={},
                           models=SolutionModels(repo, {}))
        return json.loads(result.text)  # type: ignore[no-any-return]
    except Exception:  # the generator's own tests cover it; here only the manifest matters
        text = (repo / "deployment.template.json").read_text()
        for folder in (repo / "modules").iterdir():
            if (folder / "module.json").exists():
                text = text.replace(f"${{MODULES.{folder.name}}}", load_module_json(folder).image("amd64"))
        data = json.loads(text)
        data.pop("$schema-template", None)
        return data  # type: ignore[no-any-return]


def fast_solution(repo: Path, *, count: int, interval: float, route_ttl: int | None = None) -> dict[str, Any]:
    """The solution tuned for tests: a fixed number of sensor messages, fast reports, no HTTP port, no heartbeat."""
    m = copy.deepcopy(solution_manifest(repo))
    mc = m["modulesContent"]
    mods = mc["$edgeAgent"]["properties.desired"]["modules"]
    mods["sensor"]["env"].update({"SEND_INTERVAL": {"value": str(interval)}, "MESSAGE_COUNT": {"value": str(count)},
                                  "SEED": {"value": "7"}})
    mods["inference"]["env"].update({"SCORING_PORT": {"value": "off"}, "REPORT_INTERVAL": {"value": "0.5"}})
    mods["monitor"].setdefault("env", {}).update({"REPORT_INTERVAL": {"value": "0.5"},
                                                  "HEARTBEAT_SECONDS": {"value": "0"}})
    mc["sensor"]["properties.desired"]["SendInterval"] = interval
    mc["monitor"]["properties.desired"]["heartbeatSeconds"] = 0
    if route_ttl is not None:
        mc["$edgeHub"]["properties.desired"]["routes"]["inferenceToMonitor"]["timeToLiveSecs"] = route_ttl
    return m


def write_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(path)
    return path


def module_environment(device: Any, module: str) -> dict[str, str]:
    """What the agent gives a module process: the IOTEDGE_* workload variables for ``module`` of a running device
    (so a test's own client can run as that module, signing through the workload API)."""
    from edgegen.local.device import API_VERSION

    key = device.identities.get(module)
    assert key is not None, f"{module} has no identity on the device"
    return {"IOTEDGE_IOTHUBHOSTNAME": device.config.hub_hostname, "IOTEDGE_DEVICEID": device.config.device_id,
            "IOTEDGE_MODULEID": module, "IOTEDGE_GATEWAYHOSTNAME": device.address,
            "IOTEDGE_MODULEGENERATIONID": key.generation_id, "IOTEDGE_WORKLOADURI": device.workload.uri,
            "IOTEDGE_APIVERSION": API_VERSION, "IOTEDGE_AUTHSCHEME": "sasToken"}
