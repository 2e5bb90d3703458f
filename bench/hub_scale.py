"""The local IoT Hub stand-in vs Mosquitto 2.0 at 100 / 1,000 / 10,000 devices, the same paho clients on both.

    .venv/bin/python bench/hub_scale.py [--sizes 100,1000,10000] [--seconds 20] [--max-seconds 10] [--workers 4]
                                        [--servers edgegen,mosquitto]

Each device is one paho 1.6 client (TLS, SAS token as the password, ``clean_session=False``, QoS 1, a C2D
subscription as the device SDKs have) publishing 100-byte JSON telemetry to ``devices/{id}/messages/events/``.
The clients are spread over ``--workers`` processes, each driving its clients from one selector loop (paho's
external-loop API: ``loop_read``/``loop_write``/``loop_misc``), at ``nice`` 10 (``--nice``): the clients stand for
devices that in reality have their own CPUs, and on two cores thousands of paho clients would otherwise take the
CPU the server needs (the server's latency would then measure the clients' backlog). ``--clients lean``: raw TLS
sockets and edgegen's codec instead of paho, a third of the client CPU (for 10,000 devices on two cores).
Mosquitto (TLS listener, anonymous, the same client bytes) is the reference; the stand-in is ``edgegen hub serve``
with the devices created beforehand.

Per size and server:
- connect: wall time until every client has its CONNACK (and SUBACK); per-client p99;
- RSS per connection: (server RSS with every client connected − RSS before) / devices;
- CPU µs/message at 1 msg/s per device (``--seconds``) and at the highest rate the clients reach
  (``--max-seconds``, every client with up to 10 publishes in flight): server user+system CPU / messages;
- publish→PUBACK p50/p99 (client clock), and publish→store p99: the stand-in's enqueued time minus the send time
  carried in the payload (one clock: same machine); for Mosquitto, which stores nothing, publish→subscriber
  (a ``#`` subscriber in the driver) stands in its place.
Ratios (stand-in / Mosquitto) are printed per size. The machine is shared and small: figures move between runs,
ratios less so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgegen.common.sas import generate_sas_token
from tests.support.mosquitto import run_mosquitto
from tests.support.net import free_loopback_address, free_port, wait_for_port
from tests.support.proc import cpu_seconds, stop_process

REPO = Path(__file__).resolve().parent.parent
PAD = "x" * 40


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float] | array, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------------------------------ client workers


@dataclass
class Target:
    host: str
    port: int
    ca_file: str
    hub_host: str  # what the SAS token and user name name


class Fleet:
    """Some devices' paho clients, driven from one selector loop in this process."""

    def __init__(self, target: Target, devices: list[tuple[str, str]]) -> None:
        self.target = target
        self.devices = devices
        self.clients: list[paho.Client] = []
        self.sel = selectors.DefaultSelector()
        self.connected = 0
        self.connect_times = array("d")
        self.sent_at: list[dict[int, float]] = []
        self.latencies = array("d")
        self.acked = 0

    def connect(self) -> None:
        ctx = ssl.create_default_context(cafile=self.target.ca_file)
        host = self.target.hub_host
        for i, (device_id, key) in enumerate(self.devices):
            client = paho.Client(client_id=device_id, clean_session=False, protocol=paho.MQTTv311)
            client.username_pw_set(f"{host}/{device_id}/?api-version=2021-04-12",
                                   generate_sas_token(f"{host}/devices/{device_id}", key, ttl=3600 * 6))
            client.tls_set_context(ctx)
            client.user_data_set(i)
            sent: dict[int, float] = {}
            self.sent_at.append(sent)
            client.on_connect = self._on_connect
            client.on_subscribe = self._on_subscribe
            client.on_publish = self._on_publish
            start = time.perf_counter()
            client._bench_start = start  # type: ignore[attr-defined]
            for attempt in range(50):
                try:
                    client.connect(self.target.host, self.target.port, keepalive=120)
                    break
                except OSError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            self.clients.append(client)
            self.sel.register(client.socket(), selectors.EVENT_READ, client)
            self.poll(0)
        deadline = time.monotonic() + 120
        while self.connected < len(self.clients) and time.monotonic() < deadline:
            self.poll(0.05)

    def _on_connect(self, client: paho.Client, userdata: int, flags: Any, rc: int) -> None:
        if rc != 0:
            raise SystemExit(f"{self.devices[userdata][0]}: CONNACK {rc}")
        client.subscribe(f"devices/{self.devices[userdata][0]}/messages/devicebound/#", qos=1)

    def _on_subscribe(self, client: paho.Client, userdata: int, mid: int, granted: Any) -> None:
        self.connected += 1
        self.connect_times.append(time.perf_counter() - client._bench_start)  # type: ignore[attr-defined]

    def _on_publish(self, client: paho.Client, userdata: int, mid: int) -> None:
        sent = self.sent_at[userdata].pop(mid, None)
        if sent is not None:
            self.acked += 1
            if self.recording:
                self.latencies.append(time.perf_counter() - sent)

    recording = False

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            client = key.data
            client.loop_read(100)
            sock = client.socket()
            while sock is not None and getattr(sock, "pending", lambda: 0)():
                client.loop_read(100)
            if client.want_write():
                client.loop_write()

    def publish(self, index: int) -> None:
        client = self.clients[index]
        device_id = self.devices[index][0]
        body = json.dumps({"t": time.time(), "d": device_id, "pad": PAD}).encode()
        info = client.publish(f"devices/{device_id}/messages/events/", body, qos=1)
        self.sent_at[index][info.mid] = time.perf_counter()
        if client.want_write():
            client.loop_write()

    def misc(self) -> None:
        for client in self.clients:
            client.loop_misc()

    def run_rate(self, seconds: float) -> int:
        """Every client once a second, spread evenly over the second."""
        n = len(self.clients)
        start = time.perf_counter()
        sent = 0
        last_misc = start
        while True:
            now = time.perf_counter()
            elapsed = now - start
            if elapsed >= seconds:
                break
            due = int(elapsed * n)  # publishes due by now
            while sent < due:
                self.publish(sent % n)
                sent += 1
            if now - last_misc > 5:
                self.misc()
                last_misc = now
            next_due = start + (sent + 1) / n
            self.poll(max(0.0, min(0.005, next_due - time.perf_counter())))
        return sent

    def run_max(self, seconds: float, window: int = 10) -> int:
        start = time.perf_counter()
        sent = 0
        while time.perf_counter() - start < seconds:
            for i in range(len(self.clients)):
                if len(self.sent_at[i]) < window:
                    self.publish(i)
                    sent += 1
            self.poll(0.001)
        return sent

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(self.sent_at) and time.monotonic() < deadline:
            self.poll(0.05)

    def close(self) -> None:
        for client in self.clients:
            try:
                client.disconnect()
                client.loop_write()
            except Exception:
                pass


class LeanFleet(Fleet):
    """The same devices and schedule with a lean client: raw TLS sockets and edgegen's MQTT codec (about a third
    of paho's CPU per message), so that 10,000 devices leave the server its share of two cores."""

    def connect(self) -> None:
        from edgegen.local.mqtt.codec import Connect, PacketReader, Subscribe, encode

        ctx = ssl.create_default_context(cafile=self.target.ca_file)
        host = self.target.hub_host
        self.socks: list[ssl.SSLSocket] = []
        self.readers: list[PacketReader] = []
        self.topics: list[bytes] = []
        self.pids: list[int] = []
        for i, (device_id, key) in enumerate(self.devices):
            start = time.perf_counter()
            raw = socket.create_connection((self.target.host, self.target.port), timeout=30)
            sock = ctx.wrap_socket(raw, server_hostname=self.target.host)
            password = generate_sas_token(f"{host}/devices/{device_id}", key, ttl=3600 * 6).encode()
            sock.sendall(encode(Connect(device_id, False, 120, f"{host}/{device_id}/?api-version=2021-04-12",
                                        password))
                         + encode(Subscribe(1, [(f"devices/{device_id}/messages/devicebound/#", 1)])))
            sock.setblocking(False)
            self.socks.append(sock)
            self.readers.append(PacketReader())
            self.topics.append(f"devices/{device_id}/messages/events/".encode())
            self.pids.append(1)
            self.sent_at.append({})
            self.clients.append(start)  # type: ignore[arg-type]  # connect start, for connect_times
            self.sel.register(sock, selectors.EVENT_READ, i)
            self.poll(0)
        deadline = time.monotonic() + 120
        while self.connected < len(self.socks) and time.monotonic() < deadline:
            self.poll(0.05)

    def poll(self, timeout: float) -> None:
        from edgegen.local.mqtt.codec import Connack, Puback, Suback

        for key, _ in self.sel.select(timeout):
            i = key.data
            sock = self.socks[i]
            data = b""
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if not sock.pending():
                        break
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            for packet in self.readers[i].feed(data) if data else ():
                if isinstance(packet, Puback):
                    sent = self.sent_at[i].pop(packet.packet_id, None)
                    if sent is not None:
                        self.acked += 1
                        if self.recording:
                            self.latencies.append(time.perf_counter() - sent)
                elif isinstance(packet, Suback):
                    self.connected += 1
                    self.connect_times.append(time.perf_counter() - self.clients[i])  # type: ignore[operator]
                elif isinstance(packet, Connack) and packet.return_code:
                    raise SystemExit(f"{self.devices[i][0]}: CONNACK {packet.return_code}")

    def publish(self, index: int) -> None:
        from edgegen.local.mqtt.codec import encode_publish

        pid = self.pids[index]
        self.pids[index] = pid % 65535 + 1
        body = json.dumps({"t": time.time(), "d": self.devices[index][0], "pad": PAD}).encode()
        self.sent_at[index][pid] = time.perf_counter()
        self.socks[index].sendall(encode_publish(self.topics[index], body, 1, pid))

    def misc(self) -> None:
        pass  # keepalive 120 s: the runs are shorter, and every client publishes meanwhile

    def close(self) -> None:
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT
                sock.close()


def fleet_worker(target: Target, devices: list[tuple[str, str]], conn: Any, nice: int = 10,
                 lean: bool = False) -> None:
    os.nice(nice)  # the clients stand for devices elsewhere: the server gets the CPU first when it needs it
    fleet = LeanFleet(target, devices) if lean else Fleet(target, devices)
    fleet.connect()
    conn.send(("connected", fleet.connected, list(fleet.connect_times)))
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            fleet.close()
            conn.send(("stopped",))
            return
        fleet.latencies = array("d")
        fleet.acked = 0
        fleet.recording = True
        t0 = time.perf_counter()
        sent = fleet.run_rate(arg) if cmd == "rate" else fleet.run_max(arg)
        fleet.drain(10)
        fleet.recording = False
        conn.send(("done", sent, fleet.acked, time.perf_counter() - t0, list(fleet.latencies)))


# ------------------------------------------------------------------------------------------------ servers


class Server:
    name = ""
    pid = 0
    target: Target

    def store_latencies(self, since: float, until: float) -> list[float]:
        return []

    def close(self) -> None: ...


class StandIn(Server):
    name = "edgegen"

    def __init__(self, devices: int, workdir: Path) -> None:
        from edgegen.local.hubstandin.backend import HubBackend
        from edgegen.local.hubstandin.store import SqliteHubStore

        self.address = free_loopback_address(8883)
        self.port = free_port(self.address)
        self.state = workdir / "hub"
        self.state.mkdir(parents=True)
        store = SqliteHubStore(self.state / "hub.sqlite")
        backend = HubBackend(store, f"{self.address}:{self.port}")
        self.keys = []
        for i in range(devices):
            device_id = f"dev{i:05d}"
            device = backend.put_device(device_id, {})
            self.keys.append((device_id, device["authentication"]["symmetricKey"]["primaryKey"]))
        store.close()
        self.log = open(workdir / "hub.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(REPO / ".venv/bin/edgegen"), "hub", "serve", "--state-dir", str(self.state), "--address",
             self.address, "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.address, 8883, timeout=60)
        self.pid = self.proc.pid
        self.target = Target(self.address, 8883, str(self.state / "ca.pem"), self.address)

    def store_latencies(self, since: float, until: float) -> list[float]:
        import datetime as dt

        db = sqlite3.connect(f"file:{self.state / 'hub.sqlite'}?mode=ro", uri=True)
        out = []
        for enqueued, body in db.execute("SELECT enqueued_time, body FROM messages"):
            sent = json.loads(body)["t"]
            if since <= sent <= until:
                stored = dt.datetime.fromisoformat(enqueued.replace("Z", "+00:00")).timestamp()
                out.append(stored - sent)
        db.close()
        return out

    def close(self) -> None:
        stop_process(self.proc, 20)
        self.log.close()


class Mosquitto(Server):
    name = "mosquitto"

    def __init__(self, devices: int, workdir: Path) -> None:
        self._cm = run_mosquitto(workdir=workdir / "mosq", persistence=False)
        broker = self._cm.__enter__()
        from tests.support.proc import pid_of

        self.pid = pid_of(str(broker.directory / "mosquitto.conf")) or 0
        self.keys = [(f"dev{i:05d}", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=") for i in range(devices)]
        self.target = Target(broker.host, broker.port, str(broker.ca_file), broker.host)
        self.received = array("d")
        self._sub = paho.Client(client_id="bench-sub", protocol=paho.MQTTv311)
        self._sub.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
        self._sub.on_message = lambda c, u, m: self.received.append(time.time() - json.loads(m.payload)["t"])
        self._sub.connect(broker.host, broker.port)
        self._sub.subscribe("devices/+/messages/events/#", qos=0)
        self._sub.loop_start()
        self.window = (0.0, 0.0)

    def store_latencies(self, since: float, until: float) -> list[float]:
        return list(self.received)

    def close(self) -> None:
        self._sub.loop_stop()
        self._sub.disconnect()
        self._cm.__exit__(None, None, None)


# ------------------------------------------------------------------------------------------------ one run


@dataclass
class Result:
    connect_s: float = 0.0
    connect_p99_ms: float = 0.0
    rss_per_conn_kib: float = 0.0
    rate_msgs: int = 0
    rate_cpu_us: float = 0.0
    rate_ack_p50_ms: float = 0.0
    rate_ack_p99_ms: float = 0.0
    store_p99_ms: float = 0.0
    max_rate: float = 0.0
    max_cpu_us: float = 0.0
    max_ack_p99_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_one(kind: str, devices: int, args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"hubscale-{kind}-"))
    result = Result()
    server: Server = StandIn(devices, workdir) if kind == "edgegen" else Mosquitto(devices, workdir)
    try:
        time.sleep(1)
        rss0 = rss_kib(server.pid)
        workers = max(1, min(args.workers, devices // 50 or 1))
        shares = [server.keys[i::workers] for i in range(workers)]
        ctx = mp.get_context("fork")
        pipes, procs = [], []
        t0 = time.perf_counter()
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=fleet_worker, args=(server.target, share, child, args.nice,
                                                                 args.clients == "lean"), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        times: list[float] = []
        connected = 0
        for pipe in pipes:
            _, n, ts = pipe.recv()
            connected += n
            times += ts
        result.connect_s = time.perf_counter() - t0
        result.connect_p99_ms = pct(times, 0.99) * 1000
        if connected != devices:
            result.notes.append(f"only {connected} of {devices} connected")
        time.sleep(2)
        result.rss_per_conn_kib = (rss_kib(server.pid) - rss0) / max(1, connected)

        def phase(cmd: str, seconds: float) -> tuple[int, float, float, list[float]]:
            cpu0 = cpu_seconds(server.pid)
            wall0 = time.time()
            for pipe in pipes:
                pipe.send((cmd, seconds))
            sent = acked = 0
            lat: list[float] = []
            wall = 0.0
            for pipe in pipes:
                _, s, a, w, ls = pipe.recv()
                sent += s
                acked += a
                wall = max(wall, w)
                lat += ls
            cpu = cpu_seconds(server.pid) - cpu0
            if acked < sent:
                result.notes.append(f"{cmd}: {sent - acked} of {sent} publishes not acknowledged")
            del wall0
            return acked, cpu, wall, lat

        since = time.time()
        if isinstance(server, Mosquitto):
            server.received = array("d")
        acked, cpu, _wall, lat = phase("rate", args.seconds)
        until = time.time()
        result.rate_msgs = acked
        result.rate_cpu_us = cpu / max(1, acked) * 1e6
        result.rate_ack_p50_ms = pct(lat, 0.5) * 1000
        result.rate_ack_p99_ms = pct(lat, 0.99) * 1000
        result.store_p99_ms = pct(server.store_latencies(since, until), 0.99) * 1000
        if args.max_seconds > 0:
            acked, cpu, wall, lat = phase("max", args.max_seconds)
            result.max_rate = acked / wall if wall else 0.0
            result.max_cpu_us = cpu / max(1, acked) * 1e6
            result.max_ack_p99_ms = pct(lat, 0.99) * 1000
        for pipe in pipes:
            pipe.send(("stop", None))
        for pipe, proc in zip(pipes, procs, strict=True):
            if pipe.poll(30):
                pipe.recv()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


ROWS = [
    ("connect all (s)", "connect_s", "{:.2f}"),
    ("connect p99 (ms)", "connect_p99_ms", "{:.1f}"),
    ("RSS per connection (KiB)", "rss_per_conn_kib", "{:.1f}"),
    ("1 msg/s/device: messages", "rate_msgs", "{:d}"),
    ("1 msg/s/device: CPU µs/msg", "rate_cpu_us", "{:.1f}"),
    ("1 msg/s/device: pub→PUBACK p50 (ms)", "rate_ack_p50_ms", "{:.2f}"),
    ("1 msg/s/device: pub→PUBACK p99 (ms)", "rate_ack_p99_ms", "{:.2f}"),
    ("1 msg/s/device: pub→store p99 (ms)*", "store_p99_ms", "{:.2f}"),
    ("max rate (msg/s)", "max_rate", "{:.0f}"),
    ("max rate: CPU µs/msg", "max_cpu_us", "{:.1f}"),
    ("max rate: pub→PUBACK p99 (ms)", "max_ack_p99_ms", "{:.1f}"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds at 1 msg/s per device")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="seconds at the highest rate (0: skip)")
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--servers", default="edgegen,mosquitto")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the client processes")
    parser.add_argument("--clients", choices=["paho", "lean"], default="paho",
                        help="paho (the comparison) or lean (raw TLS + edgegen's codec: less client CPU)")
    args = parser.parse_args()
    if not (REPO / ".venv/bin/edgegen").exists():
        print("run make venv first", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.servers.split(",")
    print(f"hub_scale: {os.cpu_count()} CPUs, sizes {sizes}, {args.seconds:g} s at 1 msg/s/device, "
          f"{args.max_seconds:g} s at max rate, {args.workers} {args.clients} client processes at nice {args.nice}",
          flush=True)
    for devices in sizes:
        results = {kind: run_one(kind, devices, args) for kind in kinds}
        print(f"\n{devices} devices")
        head = f"{'':40}" + "".join(f"{k:>12}" for k in kinds) + ("     ratio" if len(kinds) == 2 else "")
        print(head)
        for label, attr, fmt in ROWS:
            values = [getattr(results[k], attr) for k in kinds]
            line = f"{label:40}" + "".join(f"{fmt.format(v):>12}" for v in values)
            if len(kinds) == 2 and values[1]:
                line += f"{values[0] / values[1]:>9.2f}x"
            print(line)
        for kind in kinds:
            for note in results[kind].notes:
                print(f"  note ({kind}): {note}")
        print("  * Mosquitto stores nothing: its row is publish→subscriber (a '#' subscriber in the driver)",
              flush=True)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "hub_scale"
    socket.setdefaulttimeout(None)
    sys.exit(main())
