"""Route evaluation throughput: 20 routes (property and $body conditions) over 100k varied messages.

Prints messages routed per second on one core and the per-message cost split (build Message, parse body,
evaluate routes), side by side with its peer: hand-written Python predicates for the same 20 routes (the
floor any compiled route language in Python can reach). Not a test; run:

    .venv/bin/python bench/routing.py [--messages 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

from edgegen.routing import Message, RouteTable, message_source

MODULES = ["sensor", "filter", "inference", "monitor", "gateway"]
OUTPUTS = ["out1", "out2", "alerts"]
BI = "BrokeredEndpoint('/modules/{}/inputs/{}')"

ROUTES: dict[str, Any] = {
    "r01": "FROM /messages/modules/sensor/outputs/out1 WHERE as_number(temp) > 30 INTO " + BI.format("filter", "hot"),
    "r02": "FROM /messages/modules/sensor/outputs/* WHERE $body.temperature > 25 INTO " + BI.format("inference", "in"),
    "r03": "FROM /messages/modules/sensor/* WHERE level = 'critical' INTO $upstream",
    "r04": {"route": "FROM /messages/modules/filter/outputs/out1 WHERE $body.machine.status = 'fault' "
                     "INTO $upstream", "priority": 0, "timeToLiveSecs": 60},
    "r05": "FROM /messages/modules/filter/* WHERE starts_with(site, 'eu-') INTO " + BI.format("monitor", "eu"),
    "r06": "FROM /messages/modules/inference/outputs/out2 WHERE $body.score >= 0.9 AND kind = 'anomaly' INTO "
           + BI.format("monitor", "anomalies"),
    "r07": "FROM /messages/modules/inference/* WHERE $body.error <> null INTO " + BI.format("monitor", "errors"),
    "r08": {"route": "FROM /messages/modules/monitor/outputs/* INTO $upstream", "priority": 2},
    "r09": "FROM /messages/modules/gateway/outputs/out1 WHERE as_number(seq) % 10 = 0 INTO "
           + BI.format("monitor", "s"),
    "r10": "FROM /messages/modules/gateway/* WHERE lower(site) = 'us-west' OR level = 'warn' INTO $upstream",
    "r11": "FROM /messages WHERE $body.temperature < 0 INTO " + BI.format("monitor", "frost"),
    "r12": "FROM /messages/modules/sensor/outputs/alerts INTO " + BI.format("monitor", "alerts"),
    "r13": "FROM /messages/modules/sensor/outputs/out2 WHERE NOT (level = 'debug') AND $body.humidity > 80 INTO "
           + BI.format("filter", "humid"),
    "r14": "FROM /messages/modules/filter/outputs/out2 WHERE length(site) > 5 AND contains(site, 'west') INTO "
           + BI.format("inference", "west"),
    "r15": "FROM /messages/modules/inference/outputs/out1 WHERE $body.score < 0.1 OR $body.score > 0.95 INTO "
           + BI.format("gateway", "extremes"),
    "r16": "FROM /messages/modules/monitor/outputs/out1 WHERE (as_number(temp) ?? 0) > 40 INTO "
           + BI.format("gateway", "hot"),
    "r17": "FROM /messages/modules/gateway/outputs/out2 WHERE $body.machine.id = 'm-7' INTO "
           + BI.format("filter", "m7"),
    "r18": "FROM /messages/modules/sensor/outputs/out1 WHERE kind = 'reading' AND site <> 'lab' INTO "
           + BI.format("monitor", "readings"),
    "r19": {"route": "FROM /messages/modules/filter/outputs/* WHERE is_null(site) OR site = 'hq' INTO $upstream",
            "priority": 1},
    "r20": "FROM /messages/modules/inference/outputs/out1 WHERE abs($body.temperature - 20) < 5 INTO "
           + BI.format("monitor", "nominal"),
}


def make_messages(n: int, seed: int = 7) -> list[tuple[dict[str, str | None], dict[str, str | None], bytes]]:
    rnd = random.Random(seed)
    sites = ["eu-north", "eu-west", "us-west", "US-WEST", "lab", "hq", None]
    levels = ["debug", "info", "warn", "critical"]
    out = []
    for i in range(n):
        module = rnd.choice(MODULES)
        sysp: dict[str, str | None] = {"connectionDeviceId": "dev1", "connectionModuleId": module,
                                        "messageId": str(i)}
        if rnd.random() < 0.9:
            sysp["outputName"] = rnd.choice(OUTPUTS)
        props: dict[str, str | None] = {"level": rnd.choice(levels), "kind": rnd.choice(["reading", "anomaly"]),
                                        "seq": str(i), "site": rnd.choice(sites)}
        if rnd.random() < 0.8:
            props["temp"] = f"{rnd.uniform(-10, 50):.1f}"
        body_obj: dict[str, Any] = {"temperature": round(rnd.uniform(-10, 50), 2), "humidity": rnd.randint(0, 100),
                                    "score": round(rnd.random(), 3),
                                    "machine": {"id": f"m-{rnd.randint(1, 9)}", "status": rnd.choice(["ok", "fault"])}}
        if rnd.random() < 0.05:
            body_obj["error"] = "sensor timeout"
        if rnd.random() < 0.85:
            sysp["contentType"] = "application/json"
            sysp["contentEncoding"] = "utf-8"
            body = json.dumps(body_obj).encode()
        else:
            sysp["contentType"] = "text/plain"
            sysp["contentEncoding"] = "utf-8"
            body = b"temperature=%d" % rnd.randint(0, 40)
        out.append((props, sysp, body))
    return out


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def peer_predicates() -> list[tuple[str, Callable[[dict, dict, Callable[[], Any]], bool], str, int]]:
    """The same 20 routes as hand-written Python (source prefix, predicate, endpoint, priority)."""
    def b(body: Callable[[], Any], *path: str) -> Any:
        cur = body()
        for p in path:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
        return cur

    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    low = 2_000_000_000
    return [
        ("/messages/modules/sensor/outputs/out1/", lambda p, s, bd: _num(p.get("temp")) > 30, "filter/hot", low),
        ("/messages/modules/sensor/outputs/", lambda p, s, bd: num(v := b(bd, "temperature")) and v > 25,
         "inference/in", low),
        ("/messages/modules/sensor/", lambda p, s, bd: p.get("level") == "critical", "$upstream", low),
        ("/messages/modules/filter/outputs/out1/", lambda p, s, bd: b(bd, "machine", "status") == "fault",
         "$upstream", 0),
        ("/messages/modules/filter/", lambda p, s, bd: isinstance(p.get("site"), str) and p["site"].startswith("eu-"),
         "monitor/eu", low),
        ("/messages/modules/inference/outputs/out2/",
         lambda p, s, bd: num(v := b(bd, "score")) and v >= 0.9 and p.get("kind") == "anomaly", "monitor/anomalies",
         low),
        ("/messages/modules/inference/",
         lambda p, s, bd: isinstance(bd(), dict) and bd().get("error") is not None, "monitor/errors", low),
        ("/messages/modules/monitor/outputs/", lambda p, s, bd: True, "$upstream", 2),
        ("/messages/modules/gateway/outputs/out1/", lambda p, s, bd: _num(p.get("seq")) % 10 == 0, "monitor/s", low),
        ("/messages/modules/gateway/",
         lambda p, s, bd: (isinstance(p.get("site"), str) and p["site"].lower() == "us-west")
         or p.get("level") == "warn",
         "$upstream", low),
        ("/messages/", lambda p, s, bd: num(v := b(bd, "temperature")) and v < 0, "monitor/frost", low),
        ("/messages/modules/sensor/outputs/alerts/", lambda p, s, bd: True, "monitor/alerts", low),
        ("/messages/modules/sensor/outputs/out2/",
         lambda p, s, bd: p.get("level") != "debug" and num(v := b(bd, "humidity")) and v > 80, "filter/humid", low),
        ("/messages/modules/filter/outputs/out2/",
         lambda p, s, bd: isinstance(p.get("site"), str) and len(p["site"]) > 5 and "west" in p["site"],
         "inference/west", low),
        ("/messages/modules/inference/outputs/out1/",
         lambda p, s, bd: num(v := b(bd, "score")) and (v < 0.1 or v > 0.95), "gateway/extremes", low),
        ("/messages/modules/monitor/outputs/out1/",
         lambda p, s, bd: (0.0 if math.isnan(t := _num(p.get("temp"))) else t) > 40, "gateway/hot", low),
        ("/messages/modules/gateway/outputs/out2/", lambda p, s, bd: b(bd, "machine", "id") == "m-7", "filter/m7", low),
        ("/messages/modules/sensor/outputs/out1/",
         lambda p, s, bd: p.get("kind") == "reading" and isinstance(p.get("site"), str) and p["site"] != "lab",
         "monitor/readings", low),
        ("/messages/modules/filter/outputs/", lambda p, s, bd: p.get("site") is None or p.get("site") == "hq",
         "$upstream", 1),
        ("/messages/modules/inference/outputs/out1/",
         lambda p, s, bd: num(v := b(bd, "temperature")) and abs(v - 20) < 5, "monitor/nominal", low),
    ]


def run_peer(raw: list[tuple[dict, dict, bytes]]) -> int:
    preds = peer_predicates()
    delivered = 0
    for props, sysp, body in raw:
        src = message_source(sysp).lower() + "/"
        cache: list[Any] = []

        def bd(body: bytes = body, sysp: dict = sysp, cache: list[Any] = cache) -> Any:
            if not cache:
                ok = sysp.get("contentType") == "application/json"
                cache.append(json.loads(body) if ok else None)
            return cache[0]

        best: dict[str, int] = {}
        for prefix, pred, endpoint, prio in preds:
            if src.startswith(prefix.lower()) and pred(props, sysp, bd) and prio < best.get(endpoint, 1 << 62):
                best[endpoint] = prio
        delivered += len(best)
    return delivered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.messages
    raw = make_messages(n)
    table = RouteTable.from_routes(ROUTES, "1.1")
    assert len(table.routes) == 20

    best: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        best[name] = min(best.get(name, math.inf), time.perf_counter() - t0)
        return result

    for _ in range(args.repeat):
        msgs = timed("build", lambda: [Message(p, s, b) for p, s, b in raw])
        delivered = timed("route (lazy body parse)", lambda msgs=msgs: sum(len(table.match(m)) for m in msgs))
        fresh = [Message(p, s, b) for p, s, b in raw]
        timed("parse body", lambda fresh=fresh: [m.json_body() for m in fresh])
        timed("evaluate (body pre-parsed)", lambda fresh=fresh: sum(len(table.match(m)) for m in fresh))
        peer_delivered = timed("peer: hand-written predicates", lambda: run_peer(raw))
        parsed = sum(m.body_parse_count for m in msgs)

    if delivered != peer_delivered:
        raise SystemExit(f"peer disagrees: {delivered} deliveries vs {peer_delivered}; the comparison is void")
    per = {k: v / n * 1e6 for k, v in best.items()}
    total = best["build"] + best["route (lazy body parse)"]
    print(f"routing bench: {len(table.routes)} routes, {n} messages, best of {args.repeat}, one core")
    json_msgs = sum(1 for _p, s, _b in raw if s.get("contentType") == "application/json")
    print(f"  deliveries: {delivered} (peer: {peer_delivered}, must be equal); body parse attempts: {parsed} "
          f"(at most one per message; {json_msgs} messages are JSON)")
    print(f"  {'stage':34s} {'µs/msg':>8s} {'msgs/s':>10s}")
    for k in ("build", "parse body", "evaluate (body pre-parsed)", "route (lazy body parse)",
              "peer: hand-written predicates"):
        print(f"  {k:34s} {per[k]:8.2f} {n / best[k]:10.0f}")
    print(f"  {'edgegen end to end (build + route)':34s} {total / n * 1e6:8.2f} {n / total:10.0f}")
    ratio = best["route (lazy body parse)"] / best["peer: hand-written predicates"]
    print(f"  ratio edgegen route / peer: {ratio:.2f}")


if __name__ == "__main__":
    main()
