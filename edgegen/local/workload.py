"""The local workload API: what iotedged gives modules, over HTTP on 127.0.0.1.

``GET /trust-bundle?api-version=…`` → ``{"certificate": PEM}`` (the CA that signed the edge hub's server cert).
``POST /modules/{m}/genid/{gen}/sign?api-version=…`` with ``{"keyId": "primary", "algo": "HMACSHA256",
"data": b64}`` → ``{"digest": b64(HMAC-SHA256(key, data))}``. The module's key never leaves this process, which is
why modules get ``IOTEDGE_WORKLOADURI`` instead of a key in their environment (azure-contracts.md §1).

Containers reach it as iotedged's modules do: one unix socket per module (``module_socket(name)``:
``<folder>/<module>/workload.sock``, the folder 0700), whose folder is bound into the container at
``/var/run/iotedge`` (a folder, not the socket file: a device restarted after a crash binds a new socket at the same
path, which a container it adopts sees only through a folder mount). A request on a module's socket may only
sign for that module (403 otherwise), so one container cannot get another module's tokens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from edgegen.common.private import private_dir

log = logging.getLogger(__name__)

__all__ = ["ModuleKey", "WorkloadApi", "sign_digest"]


@dataclass(frozen=True)
class ModuleKey:
    key: str  # base64 symmetric key
    generation_id: str


def sign_digest(key_b64: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(key_b64), data, hashlib.sha256).digest()).decode()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class WorkloadApi:
    """An aiohttp server; ``keys(module)`` returns the module's key and generation id, or None."""

    def __init__(self, keys: Callable[[str], ModuleKey | None], trust_bundle: Callable[[], str],
                 host: str = "127.0.0.1", port: int = 0, socket_dir: Path | None = None,
                 any_port_if_taken: bool = False) -> None:
        self._keys = keys
        self._trust_bundle = trust_bundle
        self.host = host
        self.port = port
        self.socket_dir = socket_dir
        self.any_port_if_taken = any_port_if_taken  # ``port`` is busy: take a free one (and say so)
        self._runner: web.AppRunner | None = None
        self._sockets: dict[str, Path] = {}
        self._socket_modules: dict[str, str] = {}  # socket path -> module
        self.sign_count = 0

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/trust-bundle", self._trust)
        app.router.add_post("/modules/{module}/genid/{genid}/sign", self._sign)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            if not (self.any_port_if_taken and self.port):
                raise
            log.warning("workload API: %s:%s is taken (%s); using a free port (modules left running by an earlier "
                        "run are restarted, since their IOTEDGE_WORKLOADURI changes)", self.host, self.port,
                        exc.strerror)
            self.port = 0
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
        server = site._server  # the bound socket tells the port when 0 was asked for
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def module_socket(self, module: str) -> Path:
        """The unix socket serving ``module``: ``<socket_dir>/<module>/workload.sock``, created on first use. The
        socket is world-connectable and its folder world-traversable (0711), since the module's user in its
        container is not ours; ``socket_dir`` (0700) keeps the host's other users out."""
        if module in self._sockets:
            return self._sockets[module]
        if self._runner is None or self.socket_dir is None:
            raise RuntimeError("the workload API is not started with a socket folder")
        folder = private_dir(self.socket_dir) / module
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o711)
        path = folder / "workload.sock"
        path.unlink(missing_ok=True)
        site = web.UnixSite(self._runner, str(path))
        await site.start()
        os.chmod(path, 0o666)
        self._sockets[module] = path
        self._socket_modules[str(path)] = module
        return path

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for path in self._sockets.values():
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        self._sockets.clear()
        self._socket_modules.clear()

    async def __aenter__(self) -> WorkloadApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _trust(self, request: web.Request) -> web.Response:
        if "api-version" not in request.query:
            return _error(400, "api-version is required")
        return web.json_response({"certificate": self._trust_bundle()})

    async def _sign(self, request: web.Request) -> web.Response:
        if "api-version" not in request.query:
            return _error(400, "api-version is required")
        module = request.match_info["module"]
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        owner = self._socket_modules.get(sockname) if isinstance(sockname, str) else None
        if owner is not None and owner != module:
            return _error(403, f"this socket serves module {owner!r}, not {module!r}")
        known = self._keys(module)
        if known is None:
            return _error(404, f"module {module!r} not found")
        if request.match_info["genid"] != known.generation_id:
            return _error(404, f"module {module!r} has another generation id")
        try:
            body: Any = json.loads(await request.read())
            data = base64.b64decode(body["data"], validate=True)
            key_id, algo = body.get("keyId"), body.get("algo")
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _error(400, "expected {keyId, algo, data (base64)}")
        if key_id != "primary" or algo != "HMACSHA256":
            return _error(400, "only keyId 'primary' and algo 'HMACSHA256' are supported")
        self.sign_count += 1
        return web.json_response({"digest": sign_digest(known.key, data)})
