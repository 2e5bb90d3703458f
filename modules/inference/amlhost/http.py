"""The HTTP face: aiohttp's low-level server around a ``Scorer``, plus what only this host adds.

``run()`` goes to the caller's ``RunThreads``, so a slow model never holds up ``GET /``, ``/metrics`` or other
connections. What azmlinfsrv does not have, all off by default where it could refuse a request
azmlinfsrv accepts:

- ``key``: ``/score`` needs ``Authorization: Bearer <key>`` (401 otherwise); compared in constant time, as bytes;
- ``max_body``: a larger body is a 413, checked against ``Content-Length`` and while reading (0: no limit, as
  azmlinfsrv);
- ``client_timeout``: a client gets this long to send a request's headers, again to send its body (then 408), and
  this long idle between keep-alive requests, so a slow client cannot hold a connection forever;
- ``timeout_ms``: ``run()`` taking longer (counted from the start of the call, not the wait for a free thread) is
  answered 500 ``Scoring timeout after N ms`` (azmlinfsrv's ``SCORING_TIMEOUT_MS``, default one hour); the call
  itself cannot be stopped and finishes in its thread;
- ``GET /metrics``: Prometheus text (counters, ``run()`` latency histogram).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .exchange import Reply, ScoreRequest, message_reply
from .metrics import Metrics
from .replies import INTERNAL_ERROR
from .scorer import Scorer
from .script import InputKind
from .workers import Job, RunThreads

__all__ = ["HttpHost", "HttpOptions", "SettingError"]

log = logging.getLogger("amlhost.http")
KNOWN_PATHS = frozenset({"/", "/score", "/swagger.json", "/metrics"})


class SettingError(ValueError):
    """An environment setting that cannot be used (named in the message)."""


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class HttpOptions:
    key: str | None = None  # SCORING_KEY
    max_body: int = 0  # MAX_REQUEST_BYTES; 0: no limit
    timeout_ms: int = 3_600_000  # SCORING_TIMEOUT_MS
    client_timeout: float = 60.0  # CLIENT_TIMEOUT_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HttpOptions:
        env = os.environ if environ is None else environ
        return cls(key=env.get("SCORING_KEY") or None,
                   max_body=int(_number(env, "MAX_REQUEST_BYTES", 0)),
                   timeout_ms=int(_number(env, "SCORING_TIMEOUT_MS", 3_600_000, minimum=1)),
                   client_timeout=_number(env, "CLIENT_TIMEOUT_SECONDS", 60.0, minimum=0.1))


_TIMED_OUT: Any = object()


def _check_timeout(loop: asyncio.AbstractEventLoop, job: Job[Reply], timeout_s: float) -> None:
    """Give up on ``run()`` ``timeout_s`` after it started (azmlinfsrv times the call, not the wait for a worker)."""
    if job.future.done():
        return
    left = timeout_s if job.started is None else job.started + timeout_s - time.monotonic()
    if left > 0:
        loop.call_later(left, _check_timeout, loop, job, timeout_s)
    else:
        job.future.set_result(_TIMED_OUT)


class _BodyError(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


class HttpHost:
    """``await start(host, port)`` … ``await close()``; ``handle`` is the aiohttp request handler."""

    def __init__(self, scorer: Scorer, executor: RunThreads, options: HttpOptions | None = None,
                 metrics: Metrics | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.scorer = scorer
        self.executor = executor
        self.options = options or HttpOptions()
        self.metrics = metrics or Metrics()
        self.on_error = on_error
        self._expected = f"Bearer {self.options.key}".encode() if self.options.key else None
        self._raw = scorer.script.kind is InputKind.RAW
        self._server: web.Server | None = None
        self._listener: asyncio.base_events.Server | None = None
        self.address: tuple[str, int] | None = None

    # -- lifetime -----------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = web.Server(self.handle, access_log=None, keepalive_timeout=self.options.client_timeout)
        self._listener = await loop.create_server(self._server, host, port, backlog=1024, reuse_address=True)
        sock = self._listener.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        return self.address

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        if self._server is not None:
            await self._server.shutdown(2.0)

    # -- requests -----------------------------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        path = request.path
        try:
            if path == "/metrics" and request.method in ("GET", "HEAD"):
                response = web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8",
                                        headers={"X-Prometheus-Format": "0.0.4"})
                self.metrics.observe(path, 200, None)
                return response
            if not self.scorer.needs_run(request.method, path):
                reply = self.scorer.handle(self._score_request(request, b""))
            else:
                reply = await self._score(request)
        except Exception as exc:  # a bug of ours must not leave the client with aiohttp's bare 500 page
            log.exception("failed to answer %s %s", request.method, path)
            reply = message_reply(500, INTERNAL_ERROR, error=exc)
        label = path if path in KNOWN_PATHS else "other"
        self.metrics.observe(label, reply.status, reply.run_ms / 1e3 if reply.run_ms is not None else None)
        if reply.error is not None and reply.status >= 500 and self.on_error is not None:
            self.on_error(reply.error)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %d %.3fms %d", request.method, request.path_qs, reply.status,
                      (time.perf_counter() - started) * 1e3, len(reply.body))
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    async def _score(self, request: web.BaseRequest) -> Reply:
        if self._expected is not None:
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, self._expected):
                refused = message_reply(401, "send the scoring key as 'Authorization: Bearer <key>' (SCORING_KEY)")
                refused.headers.append(("WWW-Authenticate", "Bearer"))
                return self.scorer.answer(refused, request.headers)
        try:
            body = await self._read(request)
        except _BodyError as exc:
            return self.scorer.answer(exc.reply, request.headers)
        score_request = self._score_request(request, body)
        loop = asyncio.get_running_loop()
        job = self.executor.call_soon(loop, self.scorer.handle, score_request)
        timeout_s = self.options.timeout_ms / 1e3
        timer = loop.call_later(timeout_s, _check_timeout, loop, job, timeout_s)
        try:
            reply = await job.future
        finally:
            timer.cancel()  # a re-armed timer finds the future done and does nothing
        if reply is _TIMED_OUT:
            log.error("run() is still busy after %d ms; answered 500, the call goes on in its thread",
                      self.options.timeout_ms)
            return self.scorer.timeout_reply(score_request, self.options.timeout_ms)
        return reply

    async def _read(self, request: web.BaseRequest) -> bytes:
        limit = self.options.max_body
        if limit and request.content_length is not None and request.content_length > limit:
            raise _BodyError(message_reply(413, f"the body of {request.content_length} bytes is over the "
                                                f"{limit}-byte limit (MAX_REQUEST_BYTES)"))
        content = request.content
        if content.is_eof():  # the whole body arrived with the headers (most requests): no waiting, no timer
            body = content.read_nowait(-1)
            if limit and len(body) > limit:
                raise _BodyError(message_reply(413, f"the body is over the {limit}-byte limit (MAX_REQUEST_BYTES)"))
            return body
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.options.client_timeout):
                if not limit:
                    return await request.content.read()
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        raise _BodyError(message_reply(413, f"the body is over the {limit}-byte limit "
                                                            "(MAX_REQUEST_BYTES)"))
                    chunks.append(chunk)
        except TimeoutError:
            raise _BodyError(message_reply(408, f"the body did not arrive within {self.options.client_timeout:g} s "
                                                "(CLIENT_TIMEOUT_SECONDS)")) from None
        return b"".join(chunks)

    def _score_request(self, request: web.BaseRequest, body: bytes) -> ScoreRequest:
        raw_path = request.raw_path
        cut = raw_path.find("?")
        score_request = ScoreRequest(request.method, raw_path if cut < 0 else raw_path[:cut],
                                     request.rel_url.raw_query_string, request.headers, body)
        transport = request.transport
        if self._raw and transport is not None:  # only a @rawhttp script's request shows the addresses
            peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
            score_request.remote = (peer[0], peer[1]) if peer else None
            score_request.server = (local[0], local[1]) if local else score_request.server
        return score_request
