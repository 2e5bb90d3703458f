"""edgeHub's HTTPS endpoint (port 443 of the gateway address): module → module direct methods.

What the device SDKs call for ``invoke_method`` (Python) / ``ModuleClient.invokeMethod`` (Node.js):
``POST /twins/{deviceId}/modules/{moduleId}/methods`` (or ``/twins/{deviceId}/methods``) with
``{"methodName", "payload", "responseTimeoutInSeconds", "connectTimeoutInSeconds"}``, the header
``x-ms-edge-moduleId: {deviceId}/{moduleId}`` naming the caller, and ``Authorization`` the caller's own SAS token
(audience ``{hub host}/devices/{d}/modules/{m}``). The call is forwarded over the target's method topic.

Answers are edgeHub's (its TwinsController, MethodRequestValidator and ExceptionFilter):

- 200 ``{"status": s, "payload": p}`` — the target's answer, whatever its status.
- 400 — a bad body: ``methodName`` missing or over 100 characters, ``responseTimeoutInSeconds`` outside 5..300,
  ``connectTimeoutInSeconds`` outside 0..300, payload over 128 KB (plain-text message, like ASP.NET's string
  result); or ``{"message": "Invalid header value for x-ms-edge-moduleId"}``.
- 401 ``{"message": …}`` — a caller of another device, or a token that does not verify.
- 404 ``{"message": "Client {id} not found"}`` — the target is not connected with methods subscribed after
  ``connectTimeoutInSeconds`` (default 0).
- 504 ``{"message": "Timed out waiting for device to respond to method request {rid}"}``.
"""

from __future__ import annotations

import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from edgegen.local.mqtt.auth import AuthError
from edgegen.local.mqtt.handler import GatewayError, MethodTimeoutError
from edgegen.local.mqtt.topics import Identity, TopicError

__all__ = ["EDGE_MODULE_HEADER", "HTTPS_PORT", "BadMethodCall", "EdgeHubHttp", "MethodCall", "TokenCheck",
           "parse_method_call"]

log = logging.getLogger(__name__)

HTTPS_PORT = 443
EDGE_MODULE_HEADER = "x-ms-edge-moduleId"
MAX_METHOD_NAME = 100
MAX_PAYLOAD = 128 * 1024
MIN_RESPONSE_TIMEOUT, MAX_RESPONSE_TIMEOUT, MAX_CONNECT_TIMEOUT = 5, 300, 300

#: (target, method name, payload, response timeout, connect timeout) -> (status, payload); raises GatewayError
Invoker = Callable[[Identity, str, Any, float, float], Awaitable[tuple[int, Any]]]


class TokenCheck(Protocol):
    def verify_token(self, identity: Identity, token: str, host: str | None = None) -> Any: ...


class BadMethodCall(ValueError):
    """A method request edgeHub's validator refuses (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class MethodCall:
    name: str
    payload: Any
    response_timeout: float
    connect_timeout: float


def _seconds(body: dict[str, Any], key: str, default: int, low: int, high: int) -> float:
    value = body.get(key)
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadMethodCall(f"{key} must be a number of seconds")
    if not low <= value <= high:
        raise BadMethodCall(f"{key} has to be between {low} and {high} seconds.")
    return float(value)


def parse_method_call(raw: bytes) -> MethodCall:
    """The body of a method request, checked as edgeHub's MethodRequestValidator checks it (pure)."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadMethodCall("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadMethodCall("the body must be a JSON object with methodName")
    name = body.get("methodName")
    if not isinstance(name, str) or not name.strip():
        raise BadMethodCall("MethodName is required")
    if len(name) > MAX_METHOD_NAME:
        raise BadMethodCall(f"MethodName cannot be longer than {MAX_METHOD_NAME}")
    payload = body.get("payload")
    if payload is not None and len(json.dumps(payload).encode()) > MAX_PAYLOAD:
        raise BadMethodCall(f"Payload should not be greater than {MAX_PAYLOAD} bytes.")
    response = _seconds(body, "responseTimeoutInSeconds", 30, MIN_RESPONSE_TIMEOUT, MAX_RESPONSE_TIMEOUT)
    connect = _seconds(body, "connectTimeoutInSeconds", 0, 0, MAX_CONNECT_TIMEOUT)
    return MethodCall(name, payload, response, connect)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", charset="utf-8")


def _message(status: int, text: str) -> web.Response:
    return _json(status, {"message": text})


class EdgeHubHttp:
    """``async with EdgeHubHttp(...)`` serves the endpoint until the block ends."""

    def __init__(self, device_id: str, hub_host: str, tokens: TokenCheck, invoke: Invoker, *, host: str,
                 port: int = HTTPS_PORT, ssl_context: ssl.SSLContext | None = None) -> None:
        self.device_id = device_id
        self.hub_host = hub_host
        self.tokens = tokens
        self.invoke = invoke
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PAYLOAD + 4096)
        app.router.add_post("/twins/{device}/modules/{module}/methods", self._module_method)
        app.router.add_post("/twins/{device}/methods", self._device_method)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EdgeHubHttp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _module_method(self, request: web.Request) -> web.Response:
        return await self._call(request, request.match_info["device"], request.match_info["module"])

    async def _device_method(self, request: web.Request) -> web.Response:
        return await self._call(request, request.match_info["device"], None)

    async def _call(self, request: web.Request, device: str, module: str | None) -> web.Response:
        try:
            call = parse_method_call(await request.read())
            target = Identity(device, module)
        except (BadMethodCall, TopicError) as exc:
            return web.Response(status=400, text=str(exc) if isinstance(exc, BadMethodCall) else exc.message)
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        rid = uuid.uuid4().hex
        try:
            status, payload = await self.invoke(target, call.name, call.payload, call.response_timeout,
                                                call.connect_timeout)
        except MethodTimeoutError:
            return _message(504, f"Timed out waiting for device to respond to method request {rid}")
        except GatewayError as exc:
            if exc.status == 404:
                return _message(404, f"Client {target.client_id} not found")
            return _message(exc.status, exc.message)
        except Exception as exc:  # edgeHub's exception filter: 500
            log.exception("method %s on %s failed", call.name, target)
            return _message(500, str(exc))
        return _json(200, {"status": status, "payload": payload})

    def _authenticate(self, request: web.Request) -> web.Response | None:
        actor = request.headers.get(EDGE_MODULE_HEADER, "")
        device, sep, module = actor.partition("/")
        if not sep or not device or not module or "/" in module:
            return _message(400, f"Invalid header value for {EDGE_MODULE_HEADER}")
        if device != self.device_id:
            return _message(401, "Only modules on the same device can invoke DirectMethods")
        token = request.headers.get("Authorization", "")
        try:
            self.tokens.verify_token(Identity(device, module), token.strip(), self.hub_host)
        except (AuthError, TopicError) as exc:
            log.info("method call by %s refused: %s", actor, exc.message)
            return _message(401, f"Unable to authenticate device with Id {actor}")
        return None
