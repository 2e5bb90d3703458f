"""The process runtime: each module is ``python -u main.py`` from its solution folder, in its own venv.

The code comes from the folder whose ``module.json`` builds the module's image (``ModuleResolver``); a module with
no such folder (for example Microsoft's simulated temperature sensor that ``edgegen new`` puts in a solution) is
skipped with a warning. ``createOptions`` do not apply to processes. Each module runs in its own process group,
so stopping it (SIGTERM, then SIGKILL after the stop timeout) leaves no orphans; its output is appended to
``<logs>/<module>.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from edgegen.local.agent import ModuleRun, ModuleUnavailable
from edgegen.local.deployment import DesiredModule
from edgegen.local.errors import DeviceError
from edgegen.local.modulecode import ModuleCode, ModuleResolver, VenvCache

__all__ = ["ProcessRun", "ProcessRuntime", "base_environment", "read_log_file"]


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def read_log_file(path: Path, offset: int, limit: int) -> bytes:
    if not path.exists():
        return b""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(limit)


class ProcessRun:
    """``python -u main.py`` of one module; each ``start`` spawns a new process."""

    container_id = None
    notes: tuple[str, ...] = ()

    def __init__(self, name: str, code: ModuleCode, python: Path, env: Mapping[str, str], log_path: Path,
                 notes: tuple[str, ...] = ()) -> None:
        self.name = name
        self.code = code
        self.python = python
        self.env = dict(env)
        self.log_path = log_path
        self.notes = notes
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- edgegen: starting {self.name} at {_utc_now()}\n".encode())
            log.flush()
            self._proc = await asyncio.create_subprocess_exec(
                str(self.python), "-u", str(self.code.entry), cwd=str(self.code.folder), env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        self.pid = self._proc.pid

    async def wait(self) -> int:
        assert self._proc is not None
        code = await self._proc.wait()
        self.pid = None
        return code

    async def stop(self, timeout: float) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:
            _signal_group(proc.pid, signal.SIGKILL)  # whatever the module left behind in its group
            await _group_gone(proc.pid)
        self.pid = None

    async def discard(self) -> None:
        return None


class ProcessRuntime:
    kind = "process"

    def __init__(self, resolver: ModuleResolver, venvs: VenvCache, log_dir: Path,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.resolver = resolver
        self.venvs = venvs
        self.log_dir = Path(log_dir)
        self._base_env = dict(base_env) if base_env is not None else base_environment()

    def log_path(self, module: str) -> Path:
        return self.log_dir / f"{module}.log"

    async def prepare(self, module: DesiredModule, env: Mapping[str, str], source: str) -> ModuleRun:
        path = f"modulesContent.$edgeAgent.properties.desired.modules.{module.name}.settings.image"
        try:
            code = self.resolver.resolve(module.name, module.image, path, source)
        except DeviceError as exc:
            raise ModuleUnavailable(f"skipped: {exc.message}", location=exc.location, hint=(
                (exc.hint or "") + "; or run the deployment with --engine docker, which runs the image itself"
            ).lstrip("; ")) from None
        python = await asyncio.to_thread(self.venvs.ensure, code.folder, self.log_path(module.name))
        notes = ("createOptions are not applied to processes (use --engine docker)",) if module.create_options \
            else ()
        return ProcessRun(module.name, code, python, {**self._base_env, **env}, self.log_path(module.name), notes)

    def read_logs(self, module: str, offset: int, limit: int) -> bytes:
        return read_log_file(self.log_path(module), offset, limit)

    async def close(self) -> None:
        return None


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


def base_environment() -> dict[str, str]:
    """What a module process inherits: not this process's environment (no keys or connection strings leak)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
