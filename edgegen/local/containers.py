"""The container runtime: each module runs its manifest image on a Docker-API engine, as edgeAgent runs it.

``prepare`` pulls the image (``imagePullPolicy`` ``on-create``, with the deployment's ``registryCredentials``
for the image's registry; ``never`` uses the engine's image as it is) and creates the container from the
module's ``createOptions`` merged as edgeAgent merges them (``containerspec.plan_container``). The agent starts
the same container again on restarts (edgeAgent's back-off, never the engine's restart policy) and removes it
when its settings change or the device stops, so a device that stops cleanly leaves no container behind.

Crashes: containers outlive the device process, as IoT Edge's modules outlive edgeAgent and edgeHub. A device
restarted with the same state directory (``find_leftovers``) reconciles with the containers labelled for it, as
edgeAgent does: a running container whose create body (its ``dev.edgegen.fingerprint`` label) is the one it
would create now is adopted (not created or started again; its exit code comes from the engine as usual); one
whose settings changed, or that no longer runs, is replaced; those of modules the deployment no longer runs are
removed (``stop_strays``). The adopted container's SDK reconnects to the same gateway address, signing through
its workload socket, bound again at the same path.

Pull failures: when the image is already in the engine's store the module runs from it and says so in its
status; otherwise the module is reported ``failed`` with "cannot pull …" and the engine's reason, and the rest of
the deployment runs.

Logs: ``read_logs`` serves the engine's log of the current container after the logs of the module's earlier
containers, which are kept in ``<logs>/<module>.log`` when a container is removed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.common.private import open_private_append, private_dir
from edgegen.errors import Location
from edgegen.images.errors import ImageError
from edgegen.local.agent import ModuleRun, ModuleUnavailable
from edgegen.local.containerengine import ContainerEngine, EngineFailure
from edgegen.local.containerspec import DEVICE_LABEL, FINGERPRINT_LABEL, ContainerFacts, auth_for, plan_container
from edgegen.local.deployment import DesiredModule, RegistryCredential
from edgegen.local.errors import DeviceError

__all__ = ["ContainerRun", "ContainerRuntime", "EngineChoice", "choose_engine", "device_label", "short_socket_dir"]

log = logging.getLogger(__name__)


def device_label(state_dir: Path) -> str:
    """A stable id of a device's state directory (containers carry it in ``dev.edgegen.device``)."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]


class ContainerRun:
    """One created container; ``start`` starts it again after it exited."""

    pid = None

    def __init__(self, runtime: ContainerRuntime, name: str, container_id: str, notes: tuple[str, ...],
                 adopt: bool = False) -> None:
        self.runtime = runtime
        self.name = name
        self.container_id: str | None = container_id
        self.notes = notes
        self.adopted = False  # the running container was left by an earlier run of the device
        self._adopt = adopt  # the first start only takes the running container over

    async def start(self) -> None:
        assert self.container_id is not None
        self.adopted, self._adopt = self._adopt, False
        if self.adopted:
            log.info("module %s: adopting container %s left running by an earlier run", self.name,
                     self.container_id[:12])
            return
        await self.runtime._io(self.runtime.engine.start, self.container_id)

    async def wait(self) -> int:
        assert self.container_id is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.runtime._waiters, self.runtime.engine.wait, self.container_id)

    async def stop(self, timeout: float) -> None:
        if self.container_id is not None:
            await self.runtime._io(self.runtime.engine.stop, self.container_id, timeout)

    async def discard(self) -> None:
        if self.container_id is None:
            return
        cid, self.container_id = self.container_id, None
        await self.runtime._io(self.runtime._archive_and_remove, self.name, cid)


class ContainerRuntime:
    kind = "docker"

    def __init__(self, engine: ContainerEngine, state_dir: Path, log_dir: Path,
                 workload_socket: Callable[[str], Awaitable[Path]], gateway_address: str,
                 credentials: Callable[[], Sequence[RegistryCredential]] = tuple,
                 allow_elevated: bool = False) -> None:
        self.engine = engine
        self.label = device_label(state_dir)
        self.log_dir = Path(log_dir)
        self.workload_socket = workload_socket
        self.gateway_address = gateway_address
        self.credentials = credentials
        self.allow_elevated = allow_elevated
        self._current: dict[str, str] = {}  # module -> container id
        self._leftovers: dict[str, dict[str, Any]] = {}  # module -> a container an earlier run left (engine's list)
        self._waiters = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="engine-wait")

    async def _io(self, fn: Callable[..., object], *args: object) -> object:
        return await asyncio.to_thread(fn, *args)

    async def find_leftovers(self) -> list[str]:
        """Note the containers an earlier run of this device's state directory left (a device that did not stop
        cleanly), for ``prepare`` to adopt or replace; returns their names."""
        found = await asyncio.to_thread(self.engine.containers, f"{DEVICE_LABEL}={self.label}")
        names = []
        for c in found:
            name = next((n.lstrip("/") for n in c.get("Names") or []), str(c["Id"])[:12])
            old = self._leftovers.get(name)
            if old is not None:  # two of one name cannot be; keep one, remove the other
                await asyncio.to_thread(self._archive_and_remove, name, str(old["Id"]))
            self._leftovers[name] = c
            names.append(name)
        return names

    async def stop_strays(self, running: Mapping[str, object] | None = None) -> list[str]:
        """Remove the containers an earlier run left that no module of the deployment adopted or replaced (those
        of modules it no longer runs, or runs stopped); returns their modules' names. (``running`` is the process
        runtime's; containers need no such check.)"""
        stray = []
        for name, c in list(self._leftovers.items()):
            del self._leftovers[name]
            await asyncio.to_thread(self._archive_and_remove, name, str(c["Id"]))
            stray.append(name)
        return stray

    def _adoptable(self, module: str, fingerprint: str) -> str | None:
        """The id of the container an earlier run left for ``module`` when it runs with the same create body."""
        c = self._leftovers.get(module)
        if c is None or c.get("State") != "running" or (c.get("Labels") or {}).get(FINGERPRINT_LABEL) != fingerprint:
            return None
        del self._leftovers[module]
        return str(c["Id"])

    def log_path(self, module: str) -> Path:
        return self.log_dir / f"{module}.log"

    async def prepare(self, module: DesiredModule, env: Mapping[str, str], source: str) -> ModuleRun:
        where = Location(file=source, json_path=f"modulesContent.$edgeAgent.properties.desired.modules.{module.name}")
        socket = await self.workload_socket(module.name)
        facts = ContainerFacts(self.label, self.gateway_address, str(socket.parent), self.allow_elevated)
        plan = plan_container(module, env, facts)
        adopted = self._adoptable(module.name, plan.fingerprint)
        if adopted is not None:  # edgeAgent neither pulls nor recreates a running container it would create as it is
            self._current[module.name] = adopted
            return ContainerRun(self, module.name, adopted, plan.notes, adopt=True)
        left = self._leftovers.pop(module.name, None)
        if left is not None:
            log.info("module %s: replacing container %s of an earlier run (its settings changed or it exited)",
                     module.name, str(left["Id"])[:12])
            await asyncio.to_thread(self._archive_and_remove, module.name, str(left["Id"]))
        notes: list[str] = []
        if module.image_pull_policy == "on-create":
            auth = auth_for(module.image, self.credentials())
            try:
                await asyncio.to_thread(self.engine.pull, module.image, auth)
            except EngineFailure as exc:
                if await asyncio.to_thread(self.engine.image, module.image) is None:
                    raise ModuleUnavailable(
                        f"cannot pull {module.image}: {exc.message}", location=where,
                        hint="push the image (edgegen push), give the registry's credentials in the deployment's "
                        "registryCredentials, or build it into the engine and set imagePullPolicy to never") from None
                notes.append(f"cannot pull {module.image} ({exc.message}); running the engine's local image")
                log.warning("module %s: %s", module.name, notes[-1])
        elif await asyncio.to_thread(self.engine.image, module.image) is None:
            raise ModuleUnavailable(f"image {module.image} is not in the engine and imagePullPolicy is never",
                                    location=where, hint="build or pull it into the engine first")
        notes.extend(plan.notes)
        stale = self._current.pop(module.name, None)
        if stale is not None:
            await asyncio.to_thread(self._archive_and_remove, module.name, stale)
        try:
            cid = await asyncio.to_thread(self.engine.create, module.name, plan.body)
        except EngineFailure as exc:
            if "already in use" not in exc.message and "already exists" not in exc.message:
                raise ModuleUnavailable(f"cannot create the container: {exc.message}", location=where) from None
            await asyncio.to_thread(self.engine.remove, module.name)  # a container of an earlier run, same name
            try:
                cid = await asyncio.to_thread(self.engine.create, module.name, plan.body)
            except EngineFailure as again:
                raise ModuleUnavailable(f"cannot create the container: {again.message}", location=where) from None
        self._current[module.name] = cid
        for note in plan.notes:
            log.info("module %s: %s", module.name, note)
        return ContainerRun(self, module.name, cid, tuple(notes))

    def _archive_and_remove(self, module: str, container_id: str) -> None:
        data = self.engine.logs(container_id)
        if data:
            private_dir(self.log_dir)
            with open_private_append(self.log_path(module)) as fh:
                fh.write(f"--- edgegen: container {container_id[:12]} of {module}\n".encode())
                fh.write(data)
        self.engine.remove(container_id)
        if self._current.get(module) == container_id:
            del self._current[module]

    def read_logs(self, module: str, offset: int, limit: int) -> bytes:
        path = self.log_path(module)
        archived = path.read_bytes() if path.exists() else b""
        cid = self._current.get(module)
        live = self.engine.logs(cid) if cid else b""
        return (archived + live)[offset:offset + limit]

    async def close(self) -> None:
        for module, cid in list(self._current.items()):
            await asyncio.to_thread(self._archive_and_remove, module, cid)
        self._waiters.shutdown(wait=False, cancel_futures=True)
        self.engine.close()


@dataclass(frozen=True)
class EngineChoice:
    kind: str  # "docker" or "process"
    engine: ContainerEngine | None
    reason: str  # one line for the user: which and why


ENGINES = ("auto", "docker", "process")


def choose_engine(wanted: str, env: Mapping[str, str] | None = None) -> EngineChoice:
    """``docker``: the engine at ``DOCKER_HOST`` (or the usual sockets) or an error; ``process``: processes;
    ``auto``: docker when an engine answers, else processes (blocking: a ping)."""
    if wanted not in ENGINES:
        raise DeviceError(f"unknown engine {wanted!r}", hint=" or ".join(ENGINES))
    if wanted == "process":
        return EngineChoice("process", None, "modules run as processes (--engine process)")
    try:
        engine = ContainerEngine.connect(env)
    except ImageError as exc:
        if wanted == "docker":
            raise DeviceError(f"--engine docker: {exc.message}", hint=exc.hint) from None
        return EngineChoice("process", None, f"modules run as processes: {exc.message}")
    how = "--engine docker" if wanted == "docker" else "an engine answers"
    return EngineChoice("docker", engine, f"modules run as containers on {engine.base_url} ({how})")


def short_socket_dir(preferred: Path) -> Path:
    """``preferred`` for the workload sockets, or a private temp folder when its paths would be too long for
    AF_UNIX (108 bytes). Both are the same for the same ``preferred`` (containers adopted after a crash keep
    their socket's path); a temp folder that is not this user's own 0700 folder is never used."""
    if len(str(preferred)) + 40 < 100:
        return private_dir(preferred)
    digest = hashlib.sha256(str(Path(preferred).resolve()).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"edgegen-workload-{os.getuid()}-{digest}"
    try:
        folder.mkdir(mode=0o700)
        return folder
    except FileExistsError:
        st = os.lstat(folder)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return folder
    log.warning("%s is not this user's private folder: the workload sockets go to a new temp folder (containers "
                "left by an earlier run are then replaced, not adopted)", folder)
    return Path(tempfile.mkdtemp(prefix="edgegen-workload-"))
