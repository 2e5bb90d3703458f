"""The process runtime: each module is ``python -u main.py`` from its solution folder, in its own venv.

The code comes from the folder whose ``module.json`` builds the module's image (``ModuleResolver``); a module with
no such folder (for example Microsoft's simulated temperature sensor that ``edgegen new`` puts in a solution) is
skipped with a warning. ``createOptions`` do not apply to processes. Each module runs in its own session and
process group, so stopping it (SIGTERM, then SIGKILL after the stop timeout) leaves no orphans; its output is
appended to ``<logs>/<module>.log``.

Modules outlive the device process, as IoT Edge's containers outlive edgeAgent and edgeHub: when the device
process dies (``kill -9``, a crash), its modules keep running, keep what they have taken and reconnect when the
edge hub is back. A run record per module (``pidfiles``: pid, start time, fingerprint) lets the restarted device
adopt a module still running with the same command and environment instead of starting a second one; a process
it cannot adopt (changed settings, or a module no longer deployed: ``stop_strays``) is stopped. An adopted
process is not this process's child: its end is seen through a pidfd, and its exit code is unknown
(``UNKNOWN_EXIT``, treated as a failure by the restart policy). A clean stop of the device stops its modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from edgegen.common.private import open_private_append, private_dir
from edgegen.local import pidfiles
from edgegen.local.agent import ModuleRun, ModuleUnavailable
from edgegen.local.deployment import DesiredModule
from edgegen.local.errors import DeviceError
from edgegen.local.modulecode import ModuleCode, ModuleResolver, VenvCache

log = logging.getLogger(__name__)
__all__ = ["UNKNOWN_EXIT", "ProcessRun", "ProcessRuntime", "base_environment", "read_log_file"]

UNKNOWN_EXIT = -1  # the exit code of an adopted process (only its parent could read it)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
                 notes: tuple[str, ...] = (), run_dir: Path | None = None) -> None:
        self.name = name
        self.code = code
        self.python = python
        self.env = dict(env)
        self.log_path = log_path
        self.notes = notes
        self.run_dir = run_dir
        self.pid: int | None = None
        self.adopted = False  # the running process was left by an earlier run of the device
        self._proc: asyncio.subprocess.Process | None = None
        self._argv = [str(python), "-u", str(code.entry)]
        self.fingerprint = pidfiles.fingerprint(self._argv, str(code.folder), self.env)

    async def start(self) -> None:
        self.adopted = False
        if self.run_dir is not None:
            record = pidfiles.live_record(self.run_dir, self.name)
            if record is not None and record.fingerprint == self.fingerprint:
                self.pid, self.adopted, self._proc = record.pid, True, None
                log.info("module %s: adopting process %s left running by an earlier run", self.name, record.pid)
                return
            if record is not None:  # started with other settings: replaced, as edgeAgent recreates a container
                log.info("module %s: stopping process %s of an earlier run (its settings changed)", self.name,
                         record.pid)
                await _stop_group(record.pid, None, 10.0)
        private_dir(self.log_path.parent)
        with open_private_append(self.log_path) as out:
            out.write(f"--- edgegen: starting {self.name} at {_utc_now()}\n".encode())
            out.flush()
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv, cwd=str(self.code.folder), env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own session: it outlives a crash of the device process
            )
        self.pid = self._proc.pid
        started = pidfiles.process_start(self.pid)
        if self.run_dir is not None and started is not None:
            pidfiles.write_record(self.run_dir, self.name, pidfiles.RunRecord(self.pid, started, self.fingerprint))

    async def wait(self) -> int:
        if self._proc is None:  # adopted: not our child
            assert self.pid is not None
            await _exited(self.pid)
            code = UNKNOWN_EXIT
        else:
            code = await self._proc.wait()
        self._forget()
        return code

    def _forget(self) -> None:
        if self.run_dir is not None and self.pid is not None:
            record = pidfiles.read_record(self.run_dir, self.name)
            if record is not None and record.pid == self.pid:
                pidfiles.remove_record(self.run_dir, self.name)
        self.pid = None

    async def stop(self, timeout: float) -> None:
        if self.pid is not None:
            await _stop_group(self.pid, self._proc, timeout)
        self._forget()

    async def discard(self) -> None:
        return None


async def _exited(pid: int) -> None:
    """Until ``pid`` (not our child) has exited: through a pidfd when the kernel has them, else by polling."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while pidfiles.process_start(pid) is not None:
            await asyncio.sleep(0.2)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        if pidfiles.process_start(pid) is not None:  # a zombie counts as exited (its parent reaps it)
            await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def _stop_group(pid: int, proc: asyncio.subprocess.Process | None, timeout: float) -> None:
    """SIGTERM the module's group, SIGKILL after ``timeout``, then whatever it left behind in its group."""
    alive = proc.returncode is None if proc is not None else pidfiles.process_start(pid) is not None
    if alive:
        _signal_group(pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait() if proc is not None else _exited(pid), timeout)
        except TimeoutError:
            _signal_group(pid, signal.SIGKILL)
            if proc is not None:
                await proc.wait()
    _signal_group(pid, signal.SIGKILL)
    await _group_gone(pid)


class ProcessRuntime:
    kind = "process"

    def __init__(self, resolver: ModuleResolver, venvs: VenvCache, log_dir: Path,
                 base_env: Mapping[str, str] | None = None, run_dir: Path | None = None) -> None:
        self.resolver = resolver
        self.venvs = venvs
        self.log_dir = Path(log_dir)
        self.run_dir = run_dir  # None: no run records (modules are neither found nor adopted after a crash)
        self._base_env = dict(base_env) if base_env is not None else base_environment()

    async def stop_strays(self, running: dict[str, int | None]) -> list[str]:
        """Stop module processes an earlier run left that no current module adopted (``running``: module ->
        its pid now); returns their module names."""
        if self.run_dir is None:
            return []
        stray = []
        for module in pidfiles.recorded_modules(self.run_dir):
            record = pidfiles.live_record(self.run_dir, module)
            if record is not None and running.get(module) == record.pid:
                continue
            if record is not None:
                await _stop_group(record.pid, None, 10.0)
                stray.append(module)
            pidfiles.remove_record(self.run_dir, module)
        return stray

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
        return ProcessRun(module.name, code, python, {**self._base_env, **env}, self.log_path(module.name), notes,
                          self.run_dir)

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
