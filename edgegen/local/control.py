"""The running device's control API (HTTP on 127.0.0.1, port in ``<state>/device.json``) and its client.

Every request needs ``Authorization: Bearer <token>``, the token being what ``<state>/control.token`` holds (0600
in the 0700 state directory, new at each start): only the device's user can read it, so only that user can use
the API, although any local user can reach the port. Without it (or with another): 401 and a JSON error.

``GET /status`` · ``GET /logs/{module}?offset=N`` (bytes; ``X-Next-Offset``) · ``POST /methods/{module}/{method}``
``{"payload", "timeout", "connectTimeout"}`` → ``{"status", "payload"}`` (``$edgeAgent``: ping, RestartModule)
· ``GET /messages?after=N&limit=M`` (``$upstream`` events)
· ``GET /twins/{module}`` · ``POST /modules/{module}/stop|start``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from edgegen.common.private import write_private
from edgegen.errors import Location
from edgegen.local.errors import DeviceError
from edgegen.local.upstream import upstream_event

if TYPE_CHECKING:
    from edgegen.local.agent import Agent
    from edgegen.local.edgehub import EdgeHubHandler
    from edgegen.local.mqtt.gateway import MqttGateway
    from edgegen.local.upstream import LocalUpstream

__all__ = ["TOKEN_FILE", "WAITING_FILE", "ControlApi", "ControlClient", "ControlledDevice", "mark_waiting"]

TOKEN_FILE = "control.token"


class _DeviceSettings(Protocol):
    @property
    def device_id(self) -> str: ...


class ControlledDevice(Protocol):
    """What the control API uses of a running device (``edgegen.local.device.Device``, which starts it)."""

    agent: Agent
    gateway: MqttGateway | None
    local_upstream: LocalUpstream | None
    hub: EdgeHubHandler

    @property
    def config(self) -> _DeviceSettings: ...

    def status(self) -> dict[str, Any]: ...

    async def invoke_module_method(self, module: str, name: str, payload: Any, timeout: float = 30.0,
                                   connect_timeout: float = 0.0) -> tuple[int, Any]: ...


def _unauthorized(request: web.Request, token: str) -> web.Response | None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return web.json_response(
        {"message": "the control API needs the token in <state>/control.token (Authorization: Bearer <token>)",
         "hint": "run the edgegen device commands as the user that runs the device"},
        status=401, headers={"WWW-Authenticate": 'Bearer realm="edgegen-device"'})


class ControlApi:
    """Serves the device; ``token_path`` (when given) receives a new token, 0600, that every request must carry."""

    def __init__(self, device: ControlledDevice, host: str = "127.0.0.1", port: int = 0,
                 token_path: Path | None = None) -> None:
        self.device = device
        self.host = host
        self.port = port
        self.token_path = token_path
        self.token = secrets.token_urlsafe(32)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self.token_path is not None:
            write_private(self.token_path, self.token + "\n", fsync=False)
        token = self.token

        @web.middleware
        async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
            return _unauthorized(request, token) or await handler(request)

        app = web.Application(middlewares=[authenticate])
        app.router.add_get("/status", self._status)
        app.router.add_get("/logs/{module}", self._logs)
        app.router.add_post("/methods/{module}/{method}", self._invoke)
        app.router.add_get("/messages", self._messages)
        app.router.add_get("/twins/{module}", self._twin)
        app.router.add_post("/modules/{module}/{action}", self._module_action)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.token_path is not None:
            self.token_path.unlink(missing_ok=True)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.device.status())

    async def _logs(self, request: web.Request) -> web.Response:
        module = request.match_info["module"]
        if module not in self.device.agent.status():
            return web.json_response({"message": f"module {module!r} is not in the deployment"}, status=404)
        offset = int(request.query.get("offset", "0"))
        data = await asyncio.to_thread(self.device.agent.read_logs, module, offset, 1 << 20)
        return web.Response(body=data, headers={"X-Next-Offset": str(offset + len(data))},
                            content_type="application/octet-stream")

    async def _invoke(self, request: web.Request) -> web.Response:
        from edgegen.local.mqtt.gateway import GatewayError

        body = await request.json() if request.can_read_body else {}
        try:
            status, payload = await self.device.invoke_module_method(
                request.match_info["module"], request.match_info["method"], body.get("payload"),
                float(body.get("timeout", 30)), float(body.get("connectTimeout", 0)))
        except GatewayError as exc:
            return web.json_response({"message": exc.message, "hint": exc.hint}, status=exc.status)
        return web.json_response({"status": status, "payload": payload})

    async def _messages(self, request: web.Request) -> web.Response:
        upstream = self.device.local_upstream
        if upstream is None:
            return web.json_response({"message": "$upstream goes to a hub, not to the local store"}, status=404)
        after = int(request.query.get("after", "0"))
        limit = min(int(request.query.get("limit", "1000")), 10000)
        return web.json_response([upstream_event(seq, m) for seq, m in upstream.read(after, limit)])

    async def _twin(self, request: web.Request) -> web.Response:
        return web.json_response(self.device.hub.twins.get(request.match_info["module"]).document())

    async def _module_action(self, request: web.Request) -> web.Response:
        module, action = request.match_info["module"], request.match_info["action"]
        try:
            if action == "stop":
                await self.device.agent.stop_module(module)
            elif action == "start":
                await self.device.agent.start_module(module)
            else:
                return web.json_response({"message": f"unknown action {action!r}"}, status=404)
        except DeviceError as exc:
            return web.json_response({"message": exc.message}, status=404)
        return web.json_response(self.device.agent.status().get(module, {}))


WAITING_FILE = "waiting.json"  # a hub-joined device that has no deployment yet (no control API until it has)


def mark_waiting(state_dir: Path, device_id: str, hub: str) -> Path:
    """Say that a device joined to ``hub`` runs and waits for its first deployment (removed once it starts)."""
    return write_private(Path(state_dir) / WAITING_FILE,
                         json.dumps({"deviceId": device_id, "hub": hub, "pid": os.getpid()}), fsync=False)


def _waiting(state: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((state / WAITING_FILE).read_text())
        os.kill(int(info["pid"]), 0)  # a leftover of a process that is gone is not a waiting device
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def _read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except PermissionError:
        raise DeviceError("cannot read the device's control token: the device runs as another user",
                          location=Location(file=str(path)),
                          hint="run this command as the user that runs 'edgegen device run'") from None
    except FileNotFoundError:
        raise DeviceError("the device's control token is missing (a device of an older edgegen, or stopping)",
                          location=Location(file=str(path)), hint="restart 'edgegen device run'") from None


class ControlClient:
    """Talks to a running device found through ``<state>/device.json`` (blocking; for the CLI)."""

    def __init__(self, state_dir: Path, timeout: float = 10.0) -> None:
        self.state = Path(state_dir)
        info = self.state / "device.json"
        try:
            self.info = json.loads(info.read_text())
        except FileNotFoundError:
            waiting = _waiting(self.state)
            if waiting is not None:
                raise DeviceError(
                    f"device {waiting.get('deviceId')!r} is joined to {waiting.get('hub')} and waiting for its first "
                    f"deployment (pid {waiting.get('pid')}); it has no modules to show yet",
                    location=Location(file=str(self.state / WAITING_FILE)),
                    hint=f"deploy to it: edgegen deploy -d {waiting.get('deviceId')} -f <manifest>") from None
            raise DeviceError("no device is running with this state directory", location=Location(file=str(info)),
                              hint="start one with 'edgegen device run --manifest FILE' (same --state-dir)") from None
        self.base = f"http://127.0.0.1:{self.info['controlPort']}"
        self.timeout = timeout
        self.token = _read_token(self.state / TOKEN_FILE)

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[bytes, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout or self.timeout) as resp:
                return resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("message", "")
            except ValueError:
                detail = ""
            raise DeviceError(f"the device answered {exc.code}: {detail}".rstrip(": "),
                              hint="edgegen device status shows the modules and their state") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise DeviceError(f"cannot reach the device's control API at {self.base}: {exc}",
                              location=Location(file=str(self.state / "device.json")),
                              hint="is 'edgegen device run' still running?") from None

    def json(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        return json.loads(self._call(method, path, body, timeout)[0])

    def status(self) -> dict[str, Any]:
        return self.json("GET", "/status")

    def logs(self, module: str, offset: int = 0) -> tuple[bytes, int]:
        data, headers = self._call("GET", f"/logs/{urllib.parse.quote(module)}?offset={offset}")
        return data, int(headers.get("X-Next-Offset", offset + len(data)))

    def invoke(self, module: str, method: str, payload: Any, timeout: float = 30) -> dict[str, Any]:
        return self.json("POST", f"/methods/{urllib.parse.quote(module)}/{urllib.parse.quote(method)}",
                         {"payload": payload, "timeout": timeout}, timeout=timeout + 5)

    def messages(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self.json("GET", f"/messages?after={after}&limit={limit}")

    def module_action(self, module: str, action: str) -> dict[str, Any]:
        return self.json("POST", f"/modules/{urllib.parse.quote(module)}/{action}")
