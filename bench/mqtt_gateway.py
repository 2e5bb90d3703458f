"""Raw paho pub/sub through our MQTT gateway vs through Mosquitto, alternating, QoS 1, 100-byte messages, TLS.

    .venv/bin/python bench/mqtt_gateway.py [--count 20000] [--rounds 2] [--rate 1000] [--seconds 3]

Mosquitto: the publisher publishes to a topic the subscriber subscribed. Gateway (its own process, like
Mosquitto): the publisher is module ``bench/pub`` sending telemetry; the bench handler hands each message to
``deliver_input`` of module ``bench/sub``, i.e. the gateway's full path (auth'd identities, property bags,
sessions, PUBACK after the handler). Both listeners are TLS on a fresh 127.x:8883.

Throughput: ``count`` messages published as fast as paho's inflight window (100) allows; msgs/s = received
count / time from first publish to last receipt. Latency: ``rate`` msgs/s for ``seconds``; publish→receive,
both clients in this process (same clock). Figures are printed side by side with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgegen.common.certs import ensure_ca, ensure_server_cert
from edgegen.common.sas import generate_key, generate_sas_token
from tests.support.mosquitto import run_mosquitto
from tests.support.net import free_loopback_address, wait_for_port
from tests.support.proc import cpu_seconds, pid_of

HUB = "benchhub.local"
PAYLOAD_SIZE = 100
STAMP = struct.Struct("!Qd")  # sequence number, send time (perf_counter)


# ----------------------------------------------------------------------------------------------- gateway process


def serve_gateway(host: str, cert: str, key: str, keys: dict[str, str], ready: mp.synchronize.Event,
                  stop: mp.synchronize.Event, use_uvloop: bool, sqlite_path: str | None) -> None:
    from edgegen.local.mqtt import (
        BaseGatewayHandler,
        Identity,
        MemorySessionStore,
        MqttGateway,
        SasAuthenticator,
        SqliteSessionStore,
        TelemetryMessage,
        server_ssl_context,
    )

    sub = Identity("bench", "sub")

    class Forward(BaseGatewayHandler):
        gateway: MqttGateway

        async def on_telemetry(self, identity: Identity, message: TelemetryMessage) -> None:
            props = dict(message.system_properties)
            props.update(message.properties)
            self.gateway.deliver_input(sub, "input1", props, message.payload, 1)

        async def on_twin_get(self, identity: Identity) -> tuple[int, dict[str, object]]:
            return 200, {"desired": {"$version": 1}, "reported": {"$version": 1}}

        async def on_twin_reported(self, identity: Identity, patch: dict[str, object]) -> tuple[int, int | None]:
            return 204, 2

    async def main() -> None:
        handler = Forward()
        auth = SasAuthenticator(lambda ident: keys.get(ident.client_id), host=HUB)
        store = SqliteSessionStore(sqlite_path) if sqlite_path else MemorySessionStore()
        gateway = MqttGateway(auth, handler, store)
        handler.gateway = gateway
        async with gateway:
            await gateway.start(host, 8883, server_ssl_context(cert, key))
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.2)

    profile_to = os.environ.get("BENCH_PROFILE")  # write cProfile stats of the gateway process there
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    if profiler is not None and profile_to:
        profiler.disable()
        profiler.dump_stats(profile_to)


# ----------------------------------------------------------------------------------------------- clients


class Endpoint:
    """How to reach one broker: address, CA, server pid, and per-role (client id, username, password, topics)."""

    def __init__(self, name: str, host: str, ca: Path, pid: int, pub: tuple[str, str | None, str | None],
                 sub: tuple[str, str | None, str | None], pub_topic: str, sub_filter: str) -> None:
        self.name, self.host, self.ca, self.pid = name, host, ca, pid
        self.pub, self.sub, self.pub_topic, self.sub_filter = pub, sub, pub_topic, sub_filter


PERSISTENT = False  # --persistent: clients use clean_session=False like the device SDK


def _client(endpoint: Endpoint, who: tuple[str, str | None, str | None]) -> paho.Client:
    client_id, user, password = who
    client = paho.Client(client_id=client_id, clean_session=not PERSISTENT, protocol=paho.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    client.tls_set(ca_certs=str(endpoint.ca))
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc: connected.set() if rc == 0 else None
    client.connect(endpoint.host, 8883, keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"{endpoint.name}: {client_id} could not connect")
    return client


class Run:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.received = 0
        self.latencies: list[float] = []
        self.last_at = 0.0
        self.done = threading.Event()
        self.expect = 0
        self.lock = threading.Lock()
        self.sub = _client(endpoint, endpoint.sub)
        subscribed = threading.Event()
        self.sub.on_subscribe = lambda *a: subscribed.set()
        self.sub.on_message = self._on_message
        self.sub.subscribe(endpoint.sub_filter, qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("subscribe timed out")
        self.pub = _client(endpoint, endpoint.pub)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        _, sent = STAMP.unpack_from(message.payload)
        with self.lock:
            self.received += 1
            self.latencies.append(now - sent)
            self.last_at = now
            if self.received >= self.expect:
                self.done.set()

    def reset(self, expect: int) -> None:
        with self.lock:
            self.received = 0
            self.latencies = []
            self.expect = expect
            self.done.clear()

    def throughput(self, count: int) -> tuple[float, float]:
        """(msgs/s, server CPU µs per message)."""
        self.reset(count)
        cpu0 = cpu_seconds(self.endpoint.pid)
        pad = b"x" * (PAYLOAD_SIZE - STAMP.size)
        start = time.perf_counter()
        for i in range(count):
            info = self.pub.publish(self.endpoint.pub_topic, STAMP.pack(i, time.perf_counter()) + pad, qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {info.rc}")
        if not self.done.wait(120):
            raise RuntimeError(f"{self.endpoint.name}: only {self.received}/{count} arrived")
        cpu = cpu_seconds(self.endpoint.pid) - cpu0
        return count / (self.last_at - start), cpu / count * 1e6

    def latency(self, rate: int, seconds: float) -> tuple[float, float]:
        count = int(rate * seconds)
        self.reset(count)
        pad = b"x" * (PAYLOAD_SIZE - STAMP.size)
        start = time.perf_counter()
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.pub.publish(self.endpoint.pub_topic, STAMP.pack(i, time.perf_counter()) + pad, qos=1)
        if not self.done.wait(60):
            raise RuntimeError(f"{self.endpoint.name}: only {self.received}/{count} arrived")
        lat = sorted(self.latencies)
        return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99) - 1] * 1000

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--uvloop", action="store_true", help="run the gateway on uvloop (if installed)")
    parser.add_argument("--persistent", action="store_true",
                        help="clean_session=False for both brokers (as the SDK); the gateway then uses --store")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory",
                        help="the gateway's session store (matters with --persistent)")
    args = parser.parse_args()
    global PERSISTENT
    PERSISTENT = args.persistent

    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    host = free_loopback_address(8883)
    ca = ensure_ca(tmp / "certs")
    pair = ensure_server_cert(ca, tmp / "certs", "gw", ["localhost", host])
    keys = {"bench/pub": generate_key(), "bench/sub": generate_key()}

    def creds(cid: str) -> tuple[str, str, str]:
        token = generate_sas_token(f"{HUB}/devices/bench/modules/{cid.split('/')[1]}", keys[cid], ttl=3600)
        return cid, f"{HUB}/{cid}/?api-version=2019-10-01", token

    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    sqlite_path = str(tmp / "sessions.db") if args.store == "sqlite" else None
    proc = ctx.Process(target=serve_gateway, args=(host, str(pair.cert_path), str(pair.key_path), keys, ready, stop,
                                                   args.uvloop, sqlite_path), daemon=True)
    proc.start()
    results: dict[str, dict[str, list[float]]] = {"mosquitto": {}, "gateway": {}}
    try:
        if not ready.wait(30):
            raise RuntimeError("gateway did not start")
        wait_for_port(host, 8883)
        gateway = Endpoint("gateway", host, ca.cert_path, proc.pid, creds("bench/pub"), creds("bench/sub"),
                           "devices/bench/modules/pub/messages/events/", "devices/bench/modules/sub/inputs/#")
        with run_mosquitto(tls=True, persistence=False) as broker:
            assert broker.ca_file is not None
            conf = str(broker.directory / "mosquitto.conf")
            mosq_pid = pid_of(conf)
            if mosq_pid is None:
                raise RuntimeError(f"no process with {conf!r} in its command line")
            mosq = Endpoint("mosquitto", broker.host, broker.ca_file, mosq_pid, ("pub", None, None),
                            ("sub", None, None), "bench/t", "bench/t")
            runs = {"mosquitto": Run(mosq), "gateway": Run(gateway)}
            for run in runs.values():  # warm up TLS sessions, caches, SQLite-less paths
                run.throughput(min(2000, args.count))
            for _ in range(args.rounds):
                for name, run in runs.items():
                    r = results[name]
                    tput, cpu = run.throughput(args.count)
                    r.setdefault("tput", []).append(tput)
                    r.setdefault("cpu", []).append(cpu)
                    p50, p99 = run.latency(args.rate, args.seconds)
                    r.setdefault("p50", []).append(p50)
                    r.setdefault("p99", []).append(p99)
            for run in runs.values():
                run.close()
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()

    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"QoS 1, {PAYLOAD_SIZE}-byte messages, TLS, {args.count} msgs x {args.rounds} rounds (median), "
          f"latency at {args.rate} msg/s for {args.seconds}s; gateway loop: {loop}, store: {args.store}, "
          f"sessions: {'persistent' if args.persistent else 'clean'}")
    print(f"{'':12}{'msgs/s':>10}{'server CPU µs/msg':>19}{'p50 ms':>9}{'p99 ms':>9}")
    for name in ("mosquitto", "gateway"):
        m = med[name]
        print(f"{name:12}{m['tput']:>10.0f}{m['cpu']:>19.1f}{m['p50']:>9.2f}{m['p99']:>9.2f}")
    print(f"throughput ratio gateway/mosquitto: {med['gateway']['tput'] / med['mosquitto']['tput']:.2f}")
    print(f"p99 added latency: {med['gateway']['p99'] - med['mosquitto']['p99']:+.2f} ms")


if __name__ == "__main__":
    main()
