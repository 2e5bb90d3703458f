"""The scoring core: one ``ScoreRequest`` in, one ``Reply`` out, as azmlinfsrv 1.5.1 answers (``server/routes.py``).

Routes: ``GET /`` (liveness: ``Healthy``), ``/score`` (GET, POST, OPTIONS, HEAD → ``run()``; see ``inputs``),
``GET /swagger.json[?version=2|3|3.1]``. Everything else is a 404 (unknown path) or a 405 (known path, other
method) with azmlinfsrv's messages. ``run()`` raising (anything, ``SystemExit`` and ``KeyboardInterrupt``
included) is a 500 with ``x-ms-run-function-failed: True``; a bad request a 400/415.

Headers (on /, /score and /swagger.json; not on 404/405): ``x-ms-server-version`` (``HTTP_X_MS_SERVER_VERSION``, or
ours unless ``SERVER_VERSION_LOG_RESPONSE_ENABLED`` is not ``true``), ``x-request-id`` (the client's, or a new UUID;
over 100 characters → 431), ``x-ms-request-id`` (the client's legacy id, else its ``x-ms-client-request-id``, else
the request id), ``x-ms-client-request-id`` (echoed; over 100 characters → 431), ``TraceId`` (echoed); on /score
replies also ``x-ms-run-function-failed`` and, after a successful ``run()``, ``x-ms-run-fn-exec-ms``.

``handle()`` is synchronous and may call ``run()``: callers run it in a worker thread (``needs_run`` tells them).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from . import __version__
from .exchange import HeaderMap, Reply, ScoreRequest, message_reply
from .inputs import InputError, OptionsRequest, run_arguments
from .replies import encode_result, set_header
from .script import EntryScript
from .swagger import Swagger, SwaggerError
from .wsgi import header_dict

__all__ = ["SCRIPT_FAILED", "Scorer", "server_version"]

SCRIPT_FAILED = "An unexpected error occurred in scoring script. Check the logs for more info."
NOT_FOUND = ("The requested URL was not found on the server. If you entered the URL manually please check your "
             "spelling and try again.")
NOT_ALLOWED = "The method is not allowed for the requested URL."
HEADER_LIMIT = 100
HTML = ("Content-Type", "text/html; charset=utf-8")
# path → methods Flask routes there (HEAD comes with GET; OPTIONS is automatic except on /score)
ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD", "OPTIONS"),
    "/score": ("GET", "POST", "OPTIONS", "HEAD"),
    "/swagger.json": ("GET", "HEAD", "OPTIONS"),
}
SCORE_METHODS = frozenset(ROUTES["/score"])

log = logging.getLogger("amlhost")


def server_version(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    given = env.get("HTTP_X_MS_SERVER_VERSION")
    if env.get("SERVER_VERSION_LOG_RESPONSE_ENABLED", "true").lower() == "true":
        return given or f"edgegen-inference/{__version__}"
    return given or None


@dataclass(frozen=True, slots=True)
class _Ids:
    request: str = ""
    legacy: str = ""
    client: str = ""


def _ids(headers: HeaderMap) -> tuple[_Ids, Reply | None]:
    request_id = headers.get("x-request-id")
    if request_id is None:
        request_id = str(uuid.uuid4())
    if len(request_id) > HEADER_LIMIT:
        return _Ids(), message_reply(431, f"x-request-id must not exceed {HEADER_LIMIT} characters")
    legacy = headers.get("x-ms-request-id") or ""
    client = headers.get("x-ms-client-request-id") or ""
    if legacy:
        client = client or legacy
    else:
        legacy = client or request_id
    if len(legacy) > HEADER_LIMIT or len(client) > HEADER_LIMIT:
        return _Ids(request_id), message_reply(
            431, f"x-ms-request-id and x-ms-client-request-id must not exceed {HEADER_LIMIT} characters")
    return _Ids(request_id, legacy, client), None


class Scorer:
    def __init__(self, script: EntryScript, swagger: Swagger, version: str | None = None) -> None:
        self.script = script
        self.swagger = swagger
        self.version = version

    @staticmethod
    def needs_run(method: str, path: str) -> bool:
        """True when ``handle()`` may call ``run()`` (``path`` decoded): read the body, call it off the event loop."""
        return path == "/score" and method in SCORE_METHODS

    def handle(self, request: ScoreRequest) -> Reply:
        path = _route_path(request.path)
        methods = ROUTES.get(path)
        if methods is None:
            return message_reply(404, NOT_FOUND)
        if request.method not in methods:
            return message_reply(405, NOT_ALLOWED)
        ids, refused = _ids(request.headers)
        if refused is not None:
            return self.finish(refused, ids, request.headers)
        if path == "/score":
            reply = self.score(request)
        elif request.method == "OPTIONS":
            reply = Reply(200, [HTML, ("Allow", ", ".join(sorted(methods)))])
        elif path == "/":
            reply = Reply(200, [HTML], b"Healthy")
        else:
            reply = self._swagger(request.query_string)
        return self.finish(reply, ids, request.headers)

    def score(self, request: ScoreRequest) -> Reply:
        script = self.script
        try:
            arguments = run_arguments(script, request)
        except OptionsRequest:
            return Reply(200, [HTML, ("x-ms-run-function-failed", "False")])
        except InputError as exc:
            return message_reply(exc.status, exc.message, error=exc)
        started = time.perf_counter()
        try:
            result = script.call(arguments, lambda: header_dict(request.headers))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the host keeps serving
            log.error("run() raised %s", type(exc).__name__, exc_info=exc)
            reply = message_reply(500, SCRIPT_FAILED, run_failed=True, error=exc)
            reply.run_ms = (time.perf_counter() - started) * 1e3
            return reply
        run_ms = (time.perf_counter() - started) * 1e3
        reply, ok = encode_result(result)
        if ok:
            reply.headers.append(("x-ms-run-fn-exec-ms", f"{run_ms:.3f}"))
        else:
            log.error("run() returned a value that cannot be sent: %s", reply.error)
        reply.run_ms = run_ms
        return reply

    def timeout_reply(self, request: ScoreRequest, timeout_ms: int) -> Reply:
        return self.answer(message_reply(500, f"Scoring timeout after {timeout_ms} ms", run_failed=True,
                                         error=TimeoutError(f"run() took longer than {timeout_ms} ms")),
                           request.headers)

    def answer(self, reply: Reply, headers: HeaderMap) -> Reply:
        """``reply`` to a /score request answered before ``run()`` (refused or timed out), with its headers."""
        ids, _ = _ids(headers)
        return self.finish(reply, ids, headers)

    def finish(self, reply: Reply, ids: _Ids, headers: HeaderMap) -> Reply:
        """azmlinfsrv's ``after_request`` headers."""
        out = reply.headers
        if self.version:
            out.append(("x-ms-server-version", self.version))
        put = set_header if reply.from_script else _append  # only a script's response may hold these already
        if ids.request:
            put(out, "x-request-id", ids.request)
        if ids.legacy:
            put(out, "x-ms-request-id", ids.legacy)
        if ids.client:
            put(out, "x-ms-client-request-id", ids.client)
        trace = headers.get("TraceId")
        if trace is not None:
            out.append(("TraceId", trace))
        return reply

    def _swagger(self, query_string: str) -> Reply:
        version = next((v for k, v in parse_qsl(query_string, keep_blank_values=True) if k == "version"), None)
        try:
            body = self.swagger.get(version)
        except SwaggerError as exc:
            return message_reply(404, str(exc))
        return Reply(200, [("Content-Type", "application/json"), ("x-ms-run-function-failed", "False")], body)


def _append(headers: list[tuple[str, str]], name: str, value: str) -> None:
    headers.append((name, value))


def _route_path(raw_path: str) -> str:
    return unquote(raw_path) if "%" in raw_path else raw_path
