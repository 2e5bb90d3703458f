"""The HTTP face of the model host, compatible with Azure ML's inference server (azmlinfsrv).

``GET /`` → ``Healthy``; ``POST /score`` → ``run()``; ``GET /metrics`` → Prometheus text. aiohttp serves it on the
same asyncio loop as the IoT Hub client, and ``run()`` goes to the shared thread pool, so a slow model never
holds up other requests for longer than its own call.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from entry import InvalidInput, encode_result, prepare_input

__all__ = ["Metrics", "make_app"]

log = logging.getLogger("inference.http")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters and a latency histogram, touched only from the event loop."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency_counts = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.messages: Counter[str] = Counter()  # received / scored / failed (MQTT)
        self.methods: Counter[str] = Counter()

    def observe(self, path: str, status: int, seconds: float | None) -> None:
        self.requests[(path, status)] += 1
        if seconds is not None:
            self.latency_counts[bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def render(self) -> str:
        lines = ["# HELP inference_http_requests_total HTTP requests by path and status code.",
                 "# TYPE inference_http_requests_total counter"]
        for (path, status), n in sorted(self.requests.items()):
            lines.append(f'inference_http_requests_total{{path="{path}",code="{status}"}} {n}')
        errors = sum(n for (path, status), n in self.requests.items() if path == "/score" and status >= 400)
        lines += ["# HELP inference_http_errors_total /score requests answered with an error status.",
                  "# TYPE inference_http_errors_total counter", f"inference_http_errors_total {errors}",
                  "# HELP inference_score_seconds Time spent in run() for /score, including queueing.",
                  "# TYPE inference_score_seconds histogram"]
        cumulative = 0
        for bound, n in zip((*BUCKETS, float("inf")), self.latency_counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'inference_score_seconds_bucket{{le="{le}"}} {cumulative}')
        lines += [f"inference_score_seconds_sum {self.latency_sum:.6f}", f"inference_score_seconds_count {cumulative}",
                  "# HELP inference_messages_total Module messages by outcome (received, scored, failed).",
                  "# TYPE inference_messages_total counter"]
        for outcome in ("received", "scored", "failed"):
            lines.append(f'inference_messages_total{{outcome="{outcome}"}} {self.messages[outcome]}')
        lines += ["# HELP inference_method_calls_total Direct method calls by outcome.",
                  "# TYPE inference_method_calls_total counter"]
        for outcome in ("ok", "failed"):
            lines.append(f'inference_method_calls_total{{outcome="{outcome}"}} {self.methods[outcome]}')
        return "\n".join(lines) + "\n"


def _error(status: int, kind: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": kind, "message": message}, status=status, headers=headers or None)


def make_app(score: Callable[[Any], Awaitable[Any]], metrics: Metrics, *, max_body: int,
             key: str | None, on_error: Callable[[BaseException], None]) -> web.Application:
    """``score`` runs ``run()`` off the loop; ``on_error`` records the last error for the twin."""
    expected = f"Bearer {key}".encode() if key else None

    async def health(_request: web.Request) -> web.Response:
        metrics.observe("/", 200, None)
        return web.Response(text="Healthy")

    async def metrics_route(_request: web.Request) -> web.Response:
        metrics.observe("/metrics", 200, None)
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def score_route(request: web.Request) -> web.Response:
        response, seconds = await _score(request)
        metrics.observe("/score", response.status, seconds)
        return response

    async def _score(request: web.Request) -> tuple[web.Response, float | None]:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(401, "Unauthorized", "send the scoring key as 'Authorization: Bearer <key>'",
                              **{"WWW-Authenticate": "Bearer"}), None
        if request.content_length is not None and request.content_length > max_body:
            return _error(413, "PayloadTooLarge", f"body of {request.content_length} bytes is over the "
                          f"{max_body}-byte limit (MAX_REQUEST_BYTES)"), None
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "PayloadTooLarge", f"body is over the {max_body}-byte limit (MAX_REQUEST_BYTES)"), None
        try:
            data = prepare_input(body, request.headers.get("Content-Type"))
        except InvalidInput as exc:
            return _error(400, "InvalidInput", str(exc)), None
        started = time.perf_counter()
        try:
            result = await score(data)
            payload, content_type = encode_result(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run() failed for /score")
            on_error(exc)
            response = _error(500, type(exc).__name__, str(exc))
        else:
            response = web.Response(body=payload, content_type=content_type)
        return response, time.perf_counter() - started

    app = web.Application(client_max_size=max_body)
    app.router.add_get("/", health)
    app.router.add_get("/metrics", metrics_route)
    app.router.add_post("/score", score_route)
    return app
