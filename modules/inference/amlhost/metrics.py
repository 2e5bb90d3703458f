"""Prometheus counters for ``GET /metrics``: HTTP requests by path and status, ``run()`` latency, and the module's
message and direct-method outcomes. Touched only from the event loop."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

__all__ = ["Metrics"]

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
