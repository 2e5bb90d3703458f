"""The thin HTTPS layer: IoT Hub's REST paths (api-version 2021-04-12) onto ``HubBackend`` calls.

Parsing and serializing only. Every request's SAS token is checked first (a service policy's, whose rights must
include the one ``rights.REST_RIGHTS`` names for the operation; or, on an edge device's own module identities —
list, get, create/update, delete — a device-scoped token signed with that device's key); domain errors map to
a status and Azure error code through ``ERROR_STATUS``, the one table of them.
Every error answer, unknown paths and methods included, is IoT Hub's JSON:
``{"Message": "ErrorCode:<code>;<text>", "ExceptionMessage": "Tracking ID:…"}`` with ``iothub-errorcode``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from edgegen.common.sas import SasError, parse_sas_token
from edgegen.local.hubstandin.auth import DeviceScopeAuthenticator, ServiceAuthenticator
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.bodies import (
    APPLY_CONTENT,
    CONFIGURATION,
    DEVICE,
    MODULE,
    QUERY,
    TEST_QUERIES,
    TWIN,
    check_id,
    check_shape,
    check_twin_patch,
    parse_json,
)
from edgegen.local.hubstandin.bulk import run_bulk
from edgegen.local.hubstandin.deployments import Configuration
from edgegen.local.hubstandin.errors import (
    AlreadyExists,
    DeviceNotOnline,
    HubError,
    InvalidArgument,
    MethodNotAllowed,
    MethodTimeout,
    NotFound,
    PreconditionFailed,
    QueueFull,
    ServiceUnavailable,
    TooLarge,
    Unauthorized,
)
from edgegen.local.hubstandin.rights import require_right, rest_right

__all__ = ["ERROR_STATUS", "make_app"]

ERROR_STATUS: dict[type[HubError], int] = {
    InvalidArgument: 400,
    Unauthorized: 401,
    QueueFull: 403,
    NotFound: 404,
    DeviceNotOnline: 404,
    MethodNotAllowed: 405,
    AlreadyExists: 409,
    PreconditionFailed: 412,
    TooLarge: 413,
    ServiceUnavailable: 503,
    MethodTimeout: 504,
}
log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BACKEND = web.AppKey("backend", HubBackend)
AUTH = web.AppKey("auth", ServiceAuthenticator)
DEVICE_AUTH = web.AppKey("device_auth", DeviceScopeAuthenticator)
STATUS = web.AppKey("status", Callable[[], dict[str, Any]])


def status_of(exc: HubError) -> int:
    return next((s for cls, s in ERROR_STATUS.items() if isinstance(exc, cls)), 500)


def _error_response(exc: HubError) -> web.Response:
    return web.json_response(exc.body(), status=status_of(exc), headers={"iothub-errorcode": exc.code})


def _from_aiohttp(request: web.Request, exc: web.HTTPException) -> HubError:
    """aiohttp's own answers (no route, wrong method, body too large) as domain errors."""
    what = f"{request.method} {request.path}"
    if exc.status == 404:
        return NotFound(f"no such resource: {what}", hint="see IoT Hub's REST API reference for the paths")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed: {what}")
    if exc.status == 413:
        return TooLarge(f"request body too large: {what}")
    return InvalidArgument(f"{what}: {exc.reason}")


@web.middleware
async def _pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        _authorize(request)
        _check_ids(request)
        response = await handler(request)
    except HubError as exc:
        return _error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(_from_aiohttp(request, exc))
    except Exception:  # a bug: still IoT Hub's shape, never a traceback to the client
        log.exception("stand-in REST handler failed on %s %s", request.method, request.path)
        return _error_response(HubError(f"internal error while handling {request.method} {request.path}"))
    return response


def _is_device_scoped(header: str | None) -> bool:
    """A token without a policy name (``skn``) is a device's (or module's) own, not a service policy's."""
    if not header:
        return False
    try:
        return parse_sas_token(header.strip())[0].key_name is None
    except SasError:
        return False


def _route(request: web.Request) -> str | None:
    """The route template the request matched (``/devices/{id}``), None when none did (404/405 follow)."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


def _authorize(request: web.Request) -> None:
    """Who is calling (a policy's token, or an edge device's own on its module identities), then whether the
    policy has the right ``REST_RIGHTS`` names for this operation."""
    header = request.headers.get("Authorization")
    scoped = request.app.get(DEVICE_AUTH)
    if scoped is not None and request.match_info.handler in DEVICE_SCOPED and _is_device_scoped(header):
        scoped.verify(header or "", request.match_info["id"])
        return
    caller = request.app[AUTH].verify(header)
    route = _route(request)
    if route is None:
        return
    method = "GET" if request.method == "HEAD" else request.method
    what = f"{method} {request.path}"
    right = rest_right(method, route)
    if right is None:  # a route served without a table entry: refuse rather than guess
        raise Unauthorized(f"{what}: no right is defined for this operation")
    require_right([(caller.policy, caller.rights)], right, what)


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    return parse_json(await request.read())


async def _object(request: web.Request, shape: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The body as a JSON object whose fields have the types ``shape`` names (400 otherwise)."""
    return check_shape(await _body(request), shape, what)


def _check_ids(request: web.Request) -> None:
    """Device and module ids in the path as IoT Hub validates them (400), before anything is looked up."""
    route = _route(request) or ""
    if route.startswith(("/devices/{id}", "/twins/{id}")):
        check_id(request.match_info["id"], "device id")
        if "mid" in request.match_info:
            check_id(request.match_info["mid"], "module id")


def _if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match")


def _top(request: web.Request) -> int | None:
    raw = request.query.get("top") or request.query.get("$top")
    return int(raw) if raw and raw.isdigit() else None


def _max_items(request: web.Request) -> int | None:
    raw = request.headers.get("x-ms-max-item-count")
    if raw is None or raw.strip() == "":
        return None
    if not raw.strip().isdigit() or int(raw) <= 0:
        raise InvalidArgument(f"x-ms-max-item-count must be a positive whole number, not {raw!r}")
    return int(raw)


def _backend(request: web.Request) -> HubBackend:
    return request.app[BACKEND]


def _mid(request: web.Request) -> str | None:
    return request.match_info.get("mid")


async def list_devices(request: web.Request) -> web.Response:
    return web.json_response(_backend(request).list_devices(_top(request)))


async def bulk_devices(request: web.Request) -> web.Response:
    result = run_bulk(_backend(request), await _body(request), status_of)
    return web.json_response(result, status=200 if result["isSuccessful"] else 400)


async def get_device(request: web.Request) -> web.Response:
    return web.json_response(_backend(request).get_device(request.match_info["id"]))


async def put_device(request: web.Request) -> web.Response:
    body = await _object(request, DEVICE, "device")
    return web.json_response(_backend(request).put_device(request.match_info["id"], body, _if_match(request)))


async def delete_device(request: web.Request) -> web.Response:
    _backend(request).delete_device(request.match_info["id"], _if_match(request))
    return web.Response(status=204)


async def list_modules(request: web.Request) -> web.Response:
    return web.json_response(_backend(request).list_modules(request.match_info["id"]))


async def get_module(request: web.Request) -> web.Response:
    return web.json_response(_backend(request).get_module(request.match_info["id"], request.match_info["mid"]))


async def put_module(request: web.Request) -> web.Response:
    backend, body = _backend(request), await _object(request, MODULE, "module")
    existed = f"{request.match_info['id']}/{request.match_info['mid']}" in backend.modules
    module = backend.put_module(request.match_info["id"], request.match_info["mid"], body, _if_match(request))
    return web.json_response(module, status=200 if existed else 201)


async def delete_module(request: web.Request) -> web.Response:
    _backend(request).delete_module(request.match_info["id"], request.match_info["mid"], _if_match(request))
    return web.Response(status=204)


async def get_twin(request: web.Request) -> web.Response:
    return web.json_response(_backend(request).get_twin(request.match_info["id"], _mid(request)))


async def patch_twin(request: web.Request) -> web.Response:
    body = await _object(request, TWIN, "twin")
    check_twin_patch(body)
    twin = _backend(request).update_twin(request.match_info["id"], _mid(request), body, _if_match(request),
                                         replace=request.method == "PUT")
    return web.json_response(twin)


def _seconds(body: dict[str, Any], key: str, default: int, low: int, high: int) -> float:
    value = body.get(key)
    if value is None:
        return float(default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # the Azure CLI sends "30": IoT Hub's JSON reader converts numeric strings
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidArgument(f"{key} must be a number of seconds from {low} to {high}")
    return float(value)


async def invoke_method(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object with methodName")
    name = body.get("methodName")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("methodName is required")
    timeout = _seconds(body, "responseTimeoutInSeconds", 30, 5, 300)
    connect_timeout = _seconds(body, "connectTimeoutInSeconds", 0, 0, 300)
    status, payload = await _backend(request).invoke_method(
        request.match_info["id"], _mid(request), name, body.get("payload"), timeout, connect_timeout)
    return web.json_response({"status": status, "payload": payload})


async def apply_configuration(request: web.Request) -> web.Response:
    _backend(request).apply_configuration(request.match_info["id"],
                                          await _object(request, APPLY_CONTENT, "configuration content"))
    return web.Response(status=204)


async def list_configurations(request: web.Request) -> web.Response:
    backend = _backend(request)
    return web.json_response([backend.configuration_view(c) for c in backend.list_configurations(_top(request))])


async def get_configuration(request: web.Request) -> web.Response:
    backend = _backend(request)
    return web.json_response(backend.configuration_view(backend.get_configuration(request.match_info["id"])))


async def put_configuration(request: web.Request) -> web.Response:
    backend = _backend(request)
    body = await _object(request, CONFIGURATION, "configuration")
    cfg, created = backend.put_configuration(request.match_info["id"], body, _if_match(request), defer=True)
    await backend.recompute_in_chunks()  # a chunk at a time: devices' packets go on meanwhile
    return web.json_response(backend.configuration_view(cfg), status=201 if created else 200)


async def delete_configuration(request: web.Request) -> web.Response:
    backend = _backend(request)
    module_twins = backend.delete_configuration(request.match_info["id"], _if_match(request), defer=True)
    await backend.recompute_in_chunks(module_twins=module_twins)
    return web.Response(status=204)


async def test_queries(request: web.Request) -> web.Response:
    backend, body = _backend(request), await _object(request, TEST_QUERIES, "testQueries")
    out: dict[str, Any] = {"targetConditionError": "", "customMetricQueryErrors": {}}
    try:
        Configuration.from_dict({"id": "test", "targetCondition": body.get("targetCondition") or ""}).target.matches({})
    except InvalidArgument as exc:
        out["targetConditionError"] = exc.message
    for name, query in (body.get("customMetricQueries") or {}).items():
        try:
            backend.compile_query(query)
        except InvalidArgument as exc:
            out["customMetricQueryErrors"][name] = exc.message
    return web.json_response(out)


async def query_twins(request: web.Request) -> web.Response:
    """``POST /devices/query`` with ``{"query": …}``; pages with ``x-ms-continuation``/``x-ms-max-item-count``."""
    body = await _object(request, QUERY, "query")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("the body needs a 'query' string", hint='send {"query": "SELECT * FROM devices"}')
    result = _backend(request).query(query, request.headers.get("x-ms-continuation") or None, _max_items(request))
    headers = {"x-ms-item-type": result.item_type}
    if result.continuation:
        headers["x-ms-continuation"] = result.continuation
    return web.json_response(result.items, headers=headers)


async def statistics_devices(request: web.Request) -> web.Response:
    stats = _backend(request).statistics()
    return web.json_response({k: stats[k] for k in ("totalDeviceCount", "enabledDeviceCount", "disabledDeviceCount")})


async def statistics_service(request: web.Request) -> web.Response:
    return web.json_response({"connectedDeviceCount": _backend(request).statistics()["connectedDeviceCount"]})


# what a device-scoped token may call (for its own device only): edgeAgent's module identity management
DEVICE_SCOPED: frozenset[Handler] = frozenset({list_modules, get_module, put_module, delete_module})


async def edgegen_status(request: web.Request) -> web.Response:
    """The stand-in's own status (not an IoT Hub API): connections and capacity, store sizes, monitors."""
    status = request.app.get(STATUS)
    backend = _backend(request)
    body = {"devices": len(backend.devices), **(status() if status is not None else {})}
    return web.json_response(body)


def make_app(backend: HubBackend, authenticator: ServiceAuthenticator,
             device_scope: DeviceScopeAuthenticator | None = None,
             status: Callable[[], dict[str, Any]] | None = None) -> web.Application:
    app = web.Application(middlewares=[_pipeline])
    if status is not None:
        app[STATUS] = status
    app[BACKEND] = backend
    app[AUTH] = authenticator
    if device_scope is not None:
        app[DEVICE_AUTH] = device_scope
    r = app.router
    r.add_get("/devices", list_devices)
    r.add_get("/devices/", list_devices)  # Node's Registry.list asks with the slash
    r.add_post("/devices", bulk_devices)
    r.add_post("/devices/query", query_twins)
    r.add_get("/devices/{id}", get_device)
    r.add_put("/devices/{id}", put_device)
    r.add_delete("/devices/{id}", delete_device)
    r.add_post("/devices/{id}/applyConfigurationContent", apply_configuration)
    r.add_get("/devices/{id}/modules", list_modules)
    r.add_get("/devices/{id}/modules/{mid}", get_module)
    r.add_put("/devices/{id}/modules/{mid}", put_module)
    r.add_delete("/devices/{id}/modules/{mid}", delete_module)
    for path in ("/twins/{id}", "/twins/{id}/modules/{mid}"):
        r.add_get(path, get_twin)
        r.add_patch(path, patch_twin)
        r.add_put(path, patch_twin)
        r.add_post(path + "/methods", invoke_method)
    r.add_get("/configurations", list_configurations)
    r.add_post("/configurations/testQueries", test_queries)
    r.add_get("/configurations/{id}", get_configuration)
    r.add_put("/configurations/{id}", put_configuration)
    r.add_delete("/configurations/{id}", delete_configuration)
    r.add_get("/statistics/devices", statistics_devices)
    r.add_get("/statistics/service", statistics_service)
    # the built-in endpoint's consumer groups (ARM in Azure; here, on the stand-in's own REST API)
    r.add_get("/eventHubEndpoints/events/ConsumerGroups", list_consumer_groups)
    r.add_put("/eventHubEndpoints/events/ConsumerGroups/{name}", put_consumer_group)
    r.add_delete("/eventHubEndpoints/events/ConsumerGroups/{name}", delete_consumer_group)
    r.add_get("/edgegen/status", edgegen_status)
    return app


async def list_consumer_groups(request: web.Request) -> web.Response:
    return web.json_response({"value": [{"name": n} for n in _backend(request).consumer_groups]})


async def put_consumer_group(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _backend(request).create_consumer_group(name)
    return web.json_response({"name": name}, status=201)


async def delete_consumer_group(request: web.Request) -> web.Response:
    _backend(request).delete_consumer_group(request.match_info["name"])
    return web.Response(status=204)
