"""Edge hub vs Mosquitto: the same paho publisher and subscriber, QoS 1, 100-byte messages, TLS on 127.x:8883.

Mosquitto carries plain pub/sub (``bench/x`` → ``bench/x``). The edge hub (``edgegen device run`` in its own
process) carries module ``a``'s output ``out`` through the route ``FROM /messages/modules/a/outputs/out INTO
BrokeredEndpoint("/modules/b/inputs/in")`` to module ``b``'s input, authenticated with SAS tokens as the SDK does.
Runs alternate (mosquitto, edge hub, mosquitto, …). Two measurements per run:

* throughput: N messages published as fast as paho allows (100 in flight); msgs/s = N / (first publish → last
  delivery);
* latency at a fixed 1,000 msgs/s: per-message publish → delivery time (one process, one clock); p50 / p99.

Usage: ``.venv/bin/python bench/edgehub.py [--rounds 3] [--count 20000] [--rate-secs 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from edgegen.common.sas import generate_sas_token, parse_connection_string  # noqa: E402
from tests.support.mosquitto import run_mosquitto  # noqa: E402
from tests.support.net import free_loopback_address, wait_for_port  # noqa: E402
from tests.support.proc import cpu_seconds, pid_of  # noqa: E402

PAYLOAD = 100
HEAD = struct.Struct("!qq")  # send time (ns), sequence


@dataclass
class Endpoint:
    name: str
    host: str
    ca_file: Path
    pub_topic: str
    sub_topic: str
    pub_auth: tuple[str, str, str] | None = None  # client id, username, password
    sub_auth: tuple[str, str, str] | None = None
    pid: int | None = None  # the server process, for its CPU time


def _client(ep: Endpoint, auth: tuple[str, str, str] | None, client_id: str) -> mqtt.Client:
    cid = auth[0] if auth else client_id
    c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
    if auth:
        c.username_pw_set(auth[1], auth[2])
    c.tls_set(ca_certs=str(ep.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    return c


class Pair:
    """A connected publisher and subscriber; ``on_delivery(seq, latency_ns)`` per received message."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.received = 0
        self.latencies: list[int] = []
        self.done = threading.Event()
        self.expect = 0
        self.last_at = 0
        self.sub = _client(ep, ep.sub_auth, "bench-sub")
        self.pub = _client(ep, ep.pub_auth, "bench-pub")
        subscribed = threading.Event()
        self.sub.on_message = self._on_message
        self.sub.on_subscribe = lambda *a: subscribed.set()
        for c in (self.sub, self.pub):
            rc = c.connect(ep.host, 8883, keepalive=60)
            if rc != 0:
                raise RuntimeError(f"{ep.name}: connect failed rc={rc}")
            c.loop_start()
        self.sub.subscribe(ep.sub_topic, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError(f"{ep.name}: no SUBACK")
        time.sleep(0.2)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter_ns()
        sent, _seq = HEAD.unpack_from(msg.payload)
        self.latencies.append(now - sent)
        self.received += 1
        self.last_at = now
        if self.received >= self.expect:
            self.done.set()

    def reset(self, expect: int) -> None:
        self.received, self.latencies, self.expect = 0, [], expect
        self.done.clear()

    def publish(self, seq: int) -> mqtt.MQTTMessageInfo:
        body = HEAD.pack(time.perf_counter_ns(), seq).ljust(PAYLOAD, b"x")
        return self.pub.publish(self.ep.pub_topic, body, qos=1)

    def close(self) -> None:
        for c in (self.pub, self.sub):
            c.disconnect()
            c.loop_stop()


def throughput(pair: Pair, n: int) -> tuple[float, float]:
    """msgs/s, and the server's CPU microseconds per message."""
    pair.reset(n)
    cpu0 = cpu_seconds(pair.ep.pid)
    start = time.perf_counter_ns()
    for i in range(n):
        while True:
            info = pair.publish(i)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                break
            time.sleep(0.0005)  # paho's own in-flight window is full
    if not pair.done.wait(120):
        raise RuntimeError(f"{pair.ep.name}: only {pair.received}/{n} delivered")
    return n / ((pair.last_at - start) / 1e9), (cpu_seconds(pair.ep.pid) - cpu0) / n * 1e6


def latency(pair: Pair, rate: int, secs: float) -> tuple[float, float, float]:
    n = int(rate * secs)
    pair.reset(n)
    t0 = time.perf_counter()
    for i in range(n):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pair.publish(i)
    if not pair.done.wait(60):
        raise RuntimeError(f"{pair.ep.name}: only {pair.received}/{n} delivered at {rate}/s")
    lat = sorted(pair.latencies)
    achieved = n / (time.perf_counter() - t0)
    return lat[len(lat) // 2] / 1e6, lat[int(len(lat) * 0.99)] / 1e6, achieved


def _manifest(path: Path) -> Path:
    image = json.loads((REPO / "modules" / "monitor" / "module.json").read_text())["image"]
    img = f"{image['repository']}:{image['tag']['version']}-amd64"
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never", "settings": {"image": img}}
    manifest = {"modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {}},
                                              "systemModules": {}, "modules": {"a": stopped, "b": stopped}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {"ab": {
            "route": 'FROM /messages/modules/a/outputs/out INTO BrokeredEndpoint("/modules/b/inputs/in")',
            "priority": 0, "timeToLiveSecs": 60}}, "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
    }}
    path.write_text(json.dumps(manifest))
    return path


def _auth(cred: dict[str, str]) -> tuple[str, str, str]:
    cs = parse_connection_string(cred["EdgeHubConnectionString"])
    host, dev, mod = cs["HostName"], cs["DeviceId"], cs["ModuleId"]
    token = generate_sas_token(f"{host}/devices/{dev}/modules/{mod}", cs["SharedAccessKey"])
    return f"{dev}/{mod}", f"{host}/{dev}/{mod}/?api-version=2019-10-01", token


def run_edgehub(work: Path, fast_ack: bool = False) -> tuple[subprocess.Popen[bytes], Endpoint]:
    from edgegen.local.device import module_credentials

    work = work / ("fast" if fast_ack else "durable")
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state"
    address = free_loopback_address(8883)
    log = open(work / "device.log", "wb")  # noqa: SIM115 - lives as long as the device
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "device", "run", "--manifest",
                             str(_manifest(work / "bench.json")), "--state-dir", str(state), "--address", address,
                             "--solution", str(REPO), *(["--fast-ack"] if fast_ack else [])],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (state / "device.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"edge hub did not start; see {work / 'device.log'}")
        time.sleep(0.1)
    wait_for_port(address, 8883)
    a, b = _auth(module_credentials(state, "a")), _auth(module_credentials(state, "b"))
    dev = a[0].split("/")[0]
    ep = Endpoint("hub fast" if fast_ack else "edge hub", address, state / "certs" / "ca.pem",
                  f"devices/{dev}/modules/a/messages/events/%24.on=out", f"devices/{dev}/modules/b/inputs/#", a, b,
                  proc.pid)
    return proc, ep


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=20000, help="messages per throughput run")
    ap.add_argument("--rate", type=int, default=1000, help="msgs/s for the latency run")
    ap.add_argument("--rate-secs", type=float, default=5.0)
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-edgehub-") as tmp, run_mosquitto(tls=True) as mosq:
        hub_proc, hub_ep = run_edgehub(Path(tmp))
        fast_proc, fast_ep = run_edgehub(Path(tmp), fast_ack=True)
        try:
            assert mosq.ca_file is not None
            eps = [Endpoint("mosquitto", mosq.host, mosq.ca_file, "bench/x", "bench/x",
                            pid=pid_of(str(mosq.directory / "mosquitto.conf"))), hub_ep, fast_ep]
            pairs = {ep.name: Pair(ep) for ep in eps}
            for pair in pairs.values():  # warm up
                throughput(pair, 500)
            for r in range(args.rounds):
                for name, pair in pairs.items():
                    res = results.setdefault(name, {"tput": [], "cpu": [], "p50": [], "p99": [], "rate": []})
                    tput, cpu = throughput(pair, args.count)
                    res["tput"].append(tput)
                    res["cpu"].append(cpu)
                    p50, p99, rate = latency(pair, args.rate, args.rate_secs)
                    res["p50"].append(p50)
                    res["p99"].append(p99)
                    res["rate"].append(rate)
                    print(f"round {r + 1} {name:9s} {tput:7.0f} msgs/s ({cpu:5.1f} server CPU µs/msg)   "
                          f"p50 {p50:6.2f} ms   "
                          f"p99 {p99:6.2f} ms at {rate:.0f} msgs/s", flush=True)
            for pair in pairs.values():
                pair.close()
        finally:
            for proc in (hub_proc, fast_proc):
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    _print(args, results["mosquitto"], results["edge hub"], results["hub fast"])
    return 0


def _print(args: argparse.Namespace, m: dict[str, list[float]], h: dict[str, list[float]],
           fast: dict[str, list[float]]) -> None:
    f: Callable[[list[float]], float] = _median
    print()
    print(f"QoS 1, {PAYLOAD}-byte messages, TLS, paho publisher+subscriber, medians of {args.rounds} alternating runs "
          f"(cpu count {os.cpu_count()})")
    print("edge hub = commit before PUBACK (default); hub fast = --fast-ack (grouped commit every 20 ms)")
    print(f"{'':24s}{'mosquitto':>12s}{'edge hub':>12s}{'ratio':>8s}{'hub fast':>12s}{'ratio':>8s}")
    print(f"{'throughput (msgs/s)':24s}{f(m['tput']):12.0f}{f(h['tput']):12.0f}{f(h['tput']) / f(m['tput']):8.0%}"
          f"{f(fast['tput']):12.0f}{f(fast['tput']) / f(m['tput']):8.0%}")
    print(f"{'server CPU (µs/msg)':24s}{f(m['cpu']):12.1f}{f(h['cpu']):12.1f}{'':8s}{f(fast['cpu']):12.1f}")
    for key in ("p50", "p99"):
        print(f"{f'{key} at {args.rate}/s (ms)':24s}{f(m[key]):12.2f}{f(h[key]):12.2f}{'':8s}{f(fast[key]):12.2f}")
    print(f"p99 added by the edge hub: {f(h['p99']) - f(m['p99']):.2f} ms (fast: {f(fast['p99']) - f(m['p99']):.2f} ms;"
          " target <= 5 ms); throughput target >= 50% of mosquitto")


if __name__ == "__main__":
    sys.exit(main())
