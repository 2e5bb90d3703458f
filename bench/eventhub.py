"""Device-to-cloud through the hub stand-in: N MQTT devices → the Event Hub-compatible endpoint read by
``azure-eventhub`` (AMQP 5671), beside the local fast path of ``edgegen monitor`` (the live feed over MQTT),
in the same run against the same hub.

    .venv/bin/python bench/eventhub.py [--devices 4] [--count 2000] [--rate 200] [--seconds 5]

The stand-in runs in its own process (``edgegen hub serve`` on a fresh 127.x address). Devices are paho
clients with their own SAS tokens publishing QoS 1 telemetry (as the device SDK does, without its overhead).
Throughput: ``count`` messages in total, sent as fast as QoS 1 allows; events/s = count / (first publish →
last receipt). Latency: ``rate`` msgs/s for ``seconds``; publish → receipt, one clock (all in this process).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegen.hub.connection import resolve_hub
from edgegen.hub.monitor import LocalFeed
from edgegen.local.hubstandin.server import read_hub_info
from edgegen.local.sas import generate_sas_token
from tests.support.net import free_loopback_address, free_port


def start_hub(state: Path) -> tuple[subprocess.Popen, object]:
    address = free_loopback_address()
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(state),
                             "--address", address, "--port", str(free_port(address))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while (info := read_hub_info(state)) is None:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the hub did not start")
        time.sleep(0.1)
    return proc, info


def devices(info, n: int) -> list[paho.Client]:
    parts = dict(p.split("=", 1) for p in info.connection_string.split(";"))
    token = generate_sas_token(info.host_name, parts["SharedAccessKey"], key_name=parts["SharedAccessKeyName"])
    clients = []
    for i in range(n):
        device = f"bench{i}"
        r = requests.put(f"https://{info.host_name}/devices/{device}?api-version=2021-04-12",
                         json={"deviceId": device}, headers={"Authorization": token}, verify=info.ca_file,
                         timeout=30)
        key = r.json()["authentication"]["symmetricKey"]["primaryKey"]
        c = paho.Client(client_id=device, clean_session=True, protocol=paho.MQTTv311)
        c.username_pw_set(f"{info.address}/{device}/?api-version=2019-10-01",
                          generate_sas_token(f"{info.address}/devices/{device}", key))
        c.tls_set_context(ssl.create_default_context(cafile=info.ca_file))
        c.max_inflight_messages_set(100)
        c.connect(info.address, 8883)
        c.loop_start()
        clients.append(c)
    return clients


def publish(clients, count: int, rate: float | None) -> None:
    for i in range(count):
        c = clients[i % len(clients)]
        body = json.dumps({"i": i, "t": time.time()}).encode()
        info = c.publish(f"devices/{c._client_id.decode()}/messages/events/", body, qos=1)
        if rate:
            time.sleep(1 / rate)
        elif i % 100 == 99:
            info.wait_for_publish(10)


class EventHubSink:
    def __init__(self, info) -> None:
        from azure.eventhub import EventHubConsumerClient

        self.client = EventHubConsumerClient.from_connection_string(
            info.event_hub_connection_string, consumer_group="$Default", connection_verify=info.ca_file)
        self.latencies: list[float] = []
        self.last = 0.0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        def on_event(ctx, event) -> None:
            now = time.time()
            if event is not None:
                self.latencies.append(now - json.loads(event.body_as_str())["t"])
                self.last = now

        self.client.receive(on_event=on_event, starting_position="@latest", max_wait_time=1,
                            on_partition_initialize=lambda ctx: self.ready.set())

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        time.sleep(1.0)  # every partition attached

    def close(self) -> None:
        self.client.close()
        self.thread.join(10)


class FeedSink:
    def __init__(self, state: Path) -> None:
        self.feed = LocalFeed(resolve_hub(None, state_dir=state, environ={}))
        self.latencies: list[float] = []
        self.last = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.feed.__enter__()
        self.feed.wait_ready()
        self.thread.start()

    def _run(self) -> None:
        for message in self.feed.messages(timeout=None):
            now = time.time()
            self.latencies.append(now - json.loads(message.body)["t"])
            self.last = now

    def close(self) -> None:
        self.feed.__exit__(None, None, None)


def measure(sink, clients, count: int, rate: float | None, seconds: float) -> tuple[float, float, float]:
    sink.start()
    try:
        t0 = time.time()
        publish(clients, count, None)
        deadline = time.monotonic() + 60
        while len(sink.latencies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        throughput = len(sink.latencies) / max(sink.last - t0, 1e-9)
        sink.latencies.clear()
        n = int(rate * seconds)
        publish(clients, n, rate)
        deadline = time.monotonic() + 30
        while len(sink.latencies) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        lat = sorted(sink.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
        return throughput, p50, p99
    finally:
        sink.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "hub"
        proc, info = start_hub(state)
        os.environ["REQUESTS_CA_BUNDLE"] = info.ca_file
        clients = devices(info, args.devices)
        try:
            eh = measure(EventHubSink(info), clients, args.count, args.rate, args.seconds)
            feed = measure(FeedSink(state), clients, args.count, args.rate, args.seconds)
        finally:
            for c in clients:
                c.loop_stop()
                c.disconnect()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"{args.devices} MQTT devices, {args.count} messages, latency at {args.rate:g} msg/s for {args.seconds:g} s")
    print(f"{'path':<34}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'azure-eventhub (AMQP 5671)':<34}{eh[0]:>10.0f}{eh[1]:>10.1f}{eh[2]:>10.1f}")
    print(f"{'edgegen monitor live feed (MQTT)':<34}{feed[0]:>10.0f}{feed[1]:>10.1f}{feed[2]:>10.1f}")
    print(f"{'ratio eventhub / feed':<34}{eh[0] / feed[0]:>10.2f}{eh[1] / feed[1]:>10.2f}{eh[2] / feed[2]:>10.2f}")


if __name__ == "__main__":
    main()
