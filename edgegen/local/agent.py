"""The process agent: runs each module of ``$edgeAgent`` desired as a local process and keeps it running.

Like edgeAgent: modules start in ``startupOrder`` (lowest first, each group started before the next), ``status``
running/stopped is honoured, and an exited module is restarted according to ``restartPolicy`` (never, on-failure,
on-unhealthy, always) after a cool-off of ``unit * 2**restartCount`` seconds (capped), the count resetting once a
module has stayed up for ``healthy_secs``. Applying a new deployment stops, starts or restarts only the modules
whose settings changed. Each module runs in its own process group, so stopping it (SIGTERM, then SIGKILL after
``stop_timeout``) leaves no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.local.deployment import DesiredModule
from edgegen.local.errors import DeviceError
from edgegen.local.modulecode import ModuleCode, ModuleResolver, VenvCache

__all__ = ["Agent", "BackoffPolicy", "ModuleStatus", "should_restart"]


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

    (Processes have no health checks here, so on-unhealthy behaves as on-failure.)
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

    def reported(self) -> dict[str, Any]:
        """Shaped like edgeAgent's reported properties for a module."""
        return {
            "runtimeStatus": self.runtime_status,
            "exitCode": self.exit_code,
            "restartCount": self.restart_count,
            "lastStartTimeUtc": _utc(self.last_start),
            "lastExitTimeUtc": _utc(self.last_exit),
            "lastRestartTimeUtc": _utc(self.last_restart),
            "statusDescription": self.description,
            "pid": self.pid,
        }


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Supervisor:
    """One module: start, watch, restart per policy, stop."""

    def __init__(self, desired: DesiredModule, code: ModuleCode, python: Path, env: Mapping[str, str],
                 log_path: Path, policy: BackoffPolicy, notify: Callable[[], None],
                 on_start: Callable[[str], None] | None = None) -> None:
        self.desired = desired
        self.code = code
        self.python = python
        self.env = dict(env)
        self.log_path = log_path
        self.policy = policy
        self.status = ModuleStatus()
        self._notify = notify
        self._on_start = on_start or (lambda name: None)
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.started = asyncio.Event()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"module-{self.desired.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        self._on_start(self.desired.name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- edgegen: starting {self.desired.name} at {_utc(time.time())}\n".encode())
            log.flush()
            return await asyncio.create_subprocess_exec(
                str(self.python), "-u", str(self.code.entry), cwd=str(self.code.folder), env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )

    async def _run(self) -> None:
        st = self.status
        while not self._stopping:
            try:
                self._proc = await self._spawn()
            except OSError as exc:
                st.runtime_status, st.description = "failed", f"cannot start: {exc}"
                self._notify()
                self.started.set()
                return
            now = time.time()
            if st.last_start is not None:
                st.last_restart = now
            st.last_start, st.pid, st.runtime_status, st.description = now, self._proc.pid, "running", ""
            self._notify()
            self.started.set()
            code = await self._proc.wait()
            st.last_exit, st.exit_code, st.pid = time.time(), code, None
            self._proc = None
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
        proc = self._proc
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.policy.stop_timeout)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:
            _signal_group(proc.pid, signal.SIGKILL)  # whatever the module left behind in its group
            await _group_gone(proc.pid)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.status.runtime_status, self.status.pid = "stopped", None
        self.status.description = "stopped by the agent"
        self._notify()


async def _group_gone(pgid: int, timeout: float = 2.0) -> None:
    """Wait until no live process is left in the group (zombies waiting for their reaper do not count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _live_members(pgid):
            return
        await asyncio.sleep(0.02)


def _live_members(pgid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Agent:
    """Runs a deployment's modules. ``env_for(module)`` gives each module's runtime variables (IOTEDGE_*)."""

    def __init__(self, resolver: ModuleResolver, venvs: VenvCache, log_dir: Path,
                 env_for: Callable[[DesiredModule], Mapping[str, str]], *,
                 policy: BackoffPolicy | None = None, on_change: Callable[[], None] | None = None,
                 on_process_start: Callable[[str], None] | None = None,  # also called when one is stopped
                 base_env: Mapping[str, str] | None = None) -> None:
        self.resolver = resolver
        self.venvs = venvs
        self.log_dir = Path(log_dir)
        self.env_for = env_for
        self.policy = policy or BackoffPolicy()
        self._on_change = on_change or (lambda: None)
        self._on_process_start = on_process_start or (lambda name: None)
        self._base_env = dict(base_env) if base_env is not None else _base_environment()
        self._running: dict[str, _Supervisor] = {}
        self._desired: dict[str, DesiredModule] = {}
        self._stopped_status: dict[str, ModuleStatus] = {}

    def log_path(self, module: str) -> Path:
        return self.log_dir / f"{module}.log"

    async def apply(self, modules: Mapping[str, DesiredModule], source: str = "manifest") -> list[str]:
        """Bring the running modules in line with ``modules``; return the names started or restarted."""
        codes = {
            name: self.resolver.resolve(
                name, m.image, f"modulesContent.$edgeAgent.properties.desired.modules.{name}.settings.image", source)
            for name, m in modules.items()
        }
        changed = [n for n, m in modules.items()
                   if n not in self._desired or self._desired[n].fingerprint() != m.fingerprint()
                   or self._desired[n].status != m.status]
        removed = [n for n in self._desired if n not in modules]
        for name in sorted(removed + changed, key=lambda n: -self._desired.get(n, modules.get(n)).startup_order):  # type: ignore[union-attr]
            sup = self._running.pop(name, None)
            if sup is not None:
                await sup.stop()
                self._stopped_status[name] = sup.status
        for name in removed:
            self._desired.pop(name, None)
            self._stopped_status.pop(name, None)
        to_start = [n for n in changed if modules[n].status == "running"]
        pythons: dict[str, Path] = {}
        for name in to_start:
            folder = codes[name].folder
            pythons[name] = await asyncio.to_thread(self.venvs.ensure, folder, self.log_path(name))
        for name in changed:
            self._desired[name] = modules[name]
            if modules[name].status == "stopped":
                st = self._stopped_status.setdefault(name, ModuleStatus())
                st.runtime_status, st.description = "stopped", "status is 'stopped' in the deployment"
        started = []
        for order in sorted({modules[n].startup_order for n in to_start}):
            group = [n for n in to_start if modules[n].startup_order == order]
            for name in group:
                m = modules[name]
                env = {**self._base_env, **m.env, **self.env_for(m)}
                sup = _Supervisor(m, codes[name], pythons[name], env, self.log_path(name), self.policy,
                                  self._on_change, self._on_process_start)
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
        if sup.status.pid is None:
            sup.started.clear()
            sup.start()
            await sup.started.wait()

    async def stop_all(self) -> None:
        order = sorted(self._running, key=lambda n: -self._desired[n].startup_order)
        for name in order:
            await self._running[name].stop()
        for name in order:
            self._stopped_status[name] = self._running.pop(name).status


def _base_environment() -> dict[str, str]:
    """What a module process inherits: not this process's environment (no keys or connection strings leak)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
