"""The agent: runs each module of ``$edgeAgent`` desired on a module runtime and keeps it running.

Like edgeAgent: modules start in ``startupOrder`` (lowest first, each group started before the next), ``status``
running/stopped is honoured, and an exited module is restarted according to ``restartPolicy`` (never, on-failure,
on-unhealthy, always) after a cool-off of ``unit * 2**restartCount`` seconds (capped at 300 s), the count
resetting once a module has stayed up for ``healthy_secs`` (edgeAgent's ``RestartPolicyManager``). Applying a new
deployment stops, starts or recreates only the modules whose settings changed.

Where a module runs is the runtime's business (a Protocol owned here): ``ProcessRuntime`` (``processes.py``) runs
``main.py`` from the module's folder in a venv; ``ContainerRuntime`` (``containers.py``) runs the module's image
on a Docker-API engine. A module the runtime cannot prepare (no code for it in process mode, an image that cannot
be pulled) is reported with its reason and skipped; the rest of the deployment runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgegen.local.deployment import DesiredModule
from edgegen.local.errors import DeviceError

__all__ = [
    "Agent",
    "BackoffPolicy",
    "ModuleRun",
    "ModuleRuntime",
    "ModuleStatus",
    "ModuleUnavailable",
    "should_restart",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackoffPolicy:
    unit_secs: float = 10.0  # edgeAgent's coolOffTimeUnitInSeconds
    max_secs: float = 300.0  # edgeAgent's longest cool-off
    healthy_secs: float = 600.0  # edgeAgent's intensiveCareTime: up this long resets restartCount
    stop_timeout: float = 10.0

    def delay(self, restart_count: int) -> float:
        return float(min(self.unit_secs * (2 ** min(restart_count, 30)), self.max_secs))


def should_restart(policy: str, exit_code: int) -> bool:
    """edgeAgent's rule: 'always' restarts any exit, 'on-failure'/'on-unhealthy' a non-zero exit, 'never' none.

    (There are no health checks here, so on-unhealthy behaves as on-failure.)
    """
    if policy == "always":
        return True
    if policy in ("on-failure", "on-unhealthy"):
        return exit_code != 0
    return False


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ModuleUnavailable(DeviceError):
    """The runtime cannot run this module (no code for it, an image that cannot be pulled); others still run."""


class ModuleRun(Protocol):
    """One prepared instance of a module: a process command, or a created container. Started again on restarts."""

    pid: int | None
    container_id: str | None
    notes: tuple[str, ...]  # adjustments and fallbacks the runtime made (shown in the status)

    async def start(self) -> None: ...

    async def wait(self) -> int:
        """Until the running instance exits; its exit code."""
        ...

    async def stop(self, timeout: float) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout``); returns once it is gone."""
        ...

    async def discard(self) -> None:
        """Remove what ``prepare`` created (the container); after ``stop``."""
        ...


class ModuleRuntime(Protocol):
    kind: str  # "process" or "docker"

    def log_path(self, module: str) -> Path:
        """The module's log file (process mode: its output; engine mode: its removed containers' logs)."""
        ...

    async def prepare(self, module: DesiredModule, env: Mapping[str, str], source: str) -> ModuleRun:
        """Make ``module`` ready to start with ``env`` (raises ModuleUnavailable with the reason)."""
        ...

    def read_logs(self, module: str, offset: int, limit: int) -> bytes:
        """The module's output from byte ``offset`` (blocking)."""
        ...

    async def close(self) -> None: ...


@dataclass
class ModuleStatus:
    runtime_status: str = "unknown"  # running, stopped, failed, backoff, unknown
    exit_code: int | None = None
    restart_count: int = 0
    last_start: float | None = None
    last_exit: float | None = None
    last_restart: float | None = None
    description: str = ""
    pid: int | None = None
    container_id: str | None = None
    notes: tuple[str, ...] = ()

    def reported(self) -> dict[str, Any]:
        """Shaped like edgeAgent's reported properties for a module."""
        out: dict[str, Any] = {
            "runtimeStatus": self.runtime_status,
            "exitCode": self.exit_code,
            "restartCount": self.restart_count,
            "lastStartTimeUtc": _utc(self.last_start),
            "lastExitTimeUtc": _utc(self.last_exit),
            "lastRestartTimeUtc": _utc(self.last_restart),
            "statusDescription": self.description,
            "pid": self.pid,
        }
        if self.container_id is not None:
            out["containerId"] = self.container_id
        if self.notes:
            out["notes"] = list(self.notes)
        return out


class _Supervisor:
    """One module: start, watch, restart per policy, stop."""

    def __init__(self, desired: DesiredModule, run: ModuleRun, policy: BackoffPolicy, notify: Callable[[], None],
                 on_start: Callable[[str], None] | None = None,
                 on_adopted: Callable[[str], None] | None = None) -> None:
        self.desired = desired
        self.run = run
        self.policy = policy
        self.status = ModuleStatus(notes=run.notes)
        self._notify = notify
        self._on_start = on_start or (lambda name: None)
        self._on_adopted = on_adopted or (lambda name: None)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._alive = False
        self.started = asyncio.Event()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"module-{self.desired.name}")

    async def _run(self) -> None:
        st = self.status
        while not self._stopping:
            self._on_start(self.desired.name)
            try:
                await self.run.start()
            except (OSError, DeviceError) as exc:
                reason = exc.message if isinstance(exc, DeviceError) else str(exc)
                st.runtime_status, st.description = "failed", f"cannot start: {reason}"
                log.warning("module %s cannot start: %s", self.desired.name, reason)
                self._notify()
                self.started.set()
                return
            self._alive = True
            now = time.time()
            if st.last_start is not None:
                st.last_restart = now
            st.last_start, st.runtime_status, st.description = now, "running", ""
            st.pid, st.container_id = self.run.pid, self.run.container_id
            if getattr(self.run, "adopted", False):  # still running from before the device process restarted
                st.description = "adopted: left running by an earlier run of the device"
                self._on_adopted(self.desired.name)
            self._notify()
            self.started.set()
            code = await self.run.wait()
            self._alive = False
            st.last_exit, st.exit_code, st.pid = time.time(), code, None
            if self._stopping:
                break
            st.runtime_status = "failed" if code != 0 else "stopped"
            st.description = f"exited with {code}"
            if not should_restart(self.desired.restart_policy, code):
                self._notify()
                return
            if st.last_exit - (st.last_start or 0) >= self.policy.healthy_secs:
                st.restart_count = 0
            delay = self.policy.delay(st.restart_count)
            st.runtime_status = "backoff"
            st.description = f"exited with {code}; restarting in {delay:g}s ({self.desired.restart_policy})"
            self._notify()
            await asyncio.sleep(delay)
            st.restart_count += 1
        st.runtime_status, st.description = "stopped", "stopped by the agent"
        self._notify()

    async def stop(self) -> None:
        self._stopping = True
        self._on_start(self.desired.name)  # inputs are held from now on (a stopping module takes no new work)
        await self.run.stop(self.policy.stop_timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._alive = False
        self.status.runtime_status, self.status.pid = "stopped", None
        self.status.description = "stopped by the agent"
        self._notify()


class Agent:
    """Runs a deployment's modules on ``runtime``. ``env_for(module)`` gives each module's runtime variables
    (IOTEDGE_*). ``stage(module)``, when given, runs for every module about to be (re)started before any module
    is stopped and returns more variables for it (process mode: the models the module pins, laid out as in its
    image); a ``DeviceError`` from it refuses the whole deployment with nothing stopped."""

    def __init__(self, runtime: ModuleRuntime, env_for: Callable[[DesiredModule], Mapping[str, str]], *,
                 policy: BackoffPolicy | None = None, on_change: Callable[[], None] | None = None,
                 on_process_start: Callable[[str], None] | None = None,  # also called on a stop
                 on_adopted: Callable[[str], None] | None = None,  # a module process found still running
                 stage: Callable[[DesiredModule], Mapping[str, str]] | None = None) -> None:
        self.runtime = runtime
        self.stage = stage
        self.env_for = env_for
        self.policy = policy or BackoffPolicy()
        self._on_change = on_change or (lambda: None)
        self._on_process_start = on_process_start or (lambda name: None)
        self._on_adopted = on_adopted or (lambda name: None)
        self._running: dict[str, _Supervisor] = {}
        self._desired: dict[str, DesiredModule] = {}
        self._stopped_status: dict[str, ModuleStatus] = {}

    def log_path(self, module: str) -> Path:
        return self.runtime.log_path(module)

    def read_logs(self, module: str, offset: int = 0, limit: int = 1 << 20) -> bytes:
        return self.runtime.read_logs(module, offset, limit)

    async def apply(self, modules: Mapping[str, DesiredModule], source: str = "manifest") -> list[str]:
        """Bring the running modules in line with ``modules``; return the names started or restarted."""
        changed = [n for n, m in modules.items()
                   if n not in self._desired or self._desired[n].fingerprint() != m.fingerprint()
                   or self._desired[n].status != m.status]
        removed = [n for n in self._desired if n not in modules]
        staged: dict[str, Mapping[str, str]] = {}  # before anything stops: a DeviceError refuses the deployment
        if self.stage is not None:
            for name in changed:
                if modules[name].status == "running":
                    staged[name] = await asyncio.to_thread(self.stage, modules[name])
        for name in sorted(removed + changed, key=lambda n: -self._desired.get(n, modules.get(n)).startup_order):  # type: ignore[union-attr]
            sup = self._running.pop(name, None)
            if sup is not None:
                await sup.stop()
                await sup.run.discard()
                self._stopped_status[name] = sup.status
        for name in removed:
            self._desired.pop(name, None)
            self._stopped_status.pop(name, None)
        to_start = [n for n in changed if modules[n].status == "running"]
        for name in changed:
            self._desired[name] = modules[name]
            if modules[name].status == "stopped":
                st = self._stopped_status.setdefault(name, ModuleStatus())
                st.runtime_status, st.description = "stopped", "status is 'stopped' in the deployment"
        runs: dict[str, ModuleRun] = {}
        for name in to_start:
            m = modules[name]
            try:
                runs[name] = await self.runtime.prepare(m, {**m.env, **self.env_for(m), **staged.get(name, {})},
                                                        source)
            except ModuleUnavailable as exc:
                old = self._stopped_status.get(name)
                st = ModuleStatus(restart_count=old.restart_count if old else 0)
                st.runtime_status = "failed" if self.runtime.kind == "docker" else "unknown"
                st.description = exc.message
                self._stopped_status[name] = st
                log.warning("module %s is not started: %s", name, exc.render())
        started = []
        for order in sorted({modules[n].startup_order for n in runs}):
            group = [n for n in runs if modules[n].startup_order == order]
            for name in group:
                sup = _Supervisor(modules[name], runs[name], self.policy, self._on_change, self._on_process_start,
                                  self._on_adopted)
                old = self._stopped_status.pop(name, None)
                if old is not None:
                    sup.status.restart_count = old.restart_count
                self._running[name] = sup
                sup.start()
                started.append(name)
            await asyncio.gather(*(self._running[n].started.wait() for n in group))
        self._on_change()
        return started

    def status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in sorted(self._desired):
            sup = self._running.get(name)
            st = sup.status if sup else self._stopped_status.get(name, ModuleStatus("stopped"))
            out[name] = {**st.reported(), "restartPolicy": self._desired[name].restart_policy,
                         "status": self._desired[name].status, "image": self._desired[name].image}
        return out

    def pid(self, module: str) -> int | None:
        sup = self._running.get(module)
        return sup.status.pid if sup else None

    def container_id(self, module: str) -> str | None:
        sup = self._running.get(module)
        return sup.run.container_id if sup else None

    async def stop_module(self, module: str) -> None:
        """Stop one module until the next apply that changes it (``edgegen device`` tests use this)."""
        sup = self._running.get(module)
        if sup is None:
            raise DeviceError(f"module {module!r} is not running")
        await sup.stop()

    async def start_module(self, module: str) -> None:
        sup = self._running.get(module)
        if sup is None:
            raise DeviceError(f"module {module!r} is not in the deployment")
        if not sup._alive:
            sup.started.clear()
            sup.start()
            await sup.started.wait()

    async def stop_all(self) -> None:
        order = sorted(self._running, key=lambda n: -self._desired[n].startup_order)
        for name in order:
            await self._running[name].stop()
        for name in order:
            sup = self._running.pop(name)
            await sup.run.discard()
            self._stopped_status[name] = sup.status
        await self.runtime.close()
