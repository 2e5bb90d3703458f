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
import asyncio
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

from edgegen.common.sas import generate_sas_token
from edgegen.hub.connection import resolve_hub
from edgegen.hub.monitor import LocalFeed
from edgegen.local.hubstandin.backend import partition_for
from edgegen.local.hubstandin.server import read_hub_info
from tests.support.net import free_loopback_address


def start_hub(state: Path) -> tuple[subprocess.Popen, object]:
    address = free_loopback_address()
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(state),
                             "--address", address],
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
    """azure-eventhub from the printed connection string. ``asyncio``: its aio client, one task per partition
    (what ``edgegen monitor`` uses); ``sync``: ``EventHubConsumerClient.receive`` over all partitions, which
    polls them in turn from one thread and waits its 0.2 s socket timeout on each idle one per event handed
    over (Azure/azure-sdk-for-python#27314) — shown for comparison, it is the client's limit, not the hub's."""

    def __init__(self, info, mode: str) -> None:
        self.info = info
        self.mode = mode
        self.latencies: list[float] = []
        self.last = 0.0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._stop: object = None

    def _record(self, event) -> None:
        now = time.time()
        self.latencies.append(now - json.loads(event.body_as_str())["t"])
        self.last = now

    def _run(self) -> None:
        if self.mode == "sync":
            from azure.eventhub import EventHubConsumerClient

            client = EventHubConsumerClient.from_connection_string(
                self.info.event_hub_connection_string, consumer_group="$Default", connection_verify=self.info.ca_file)
            self._stop = client.close
            client.receive(on_event=lambda ctx, event: self._record(event), starting_position="@latest",
                           on_partition_initialize=lambda ctx: self.ready.set())
            return
        asyncio.run(self._run_async())

    async def _run_async(self) -> None:
        from azure.eventhub.aio import EventHubConsumerClient

        client = EventHubConsumerClient.from_connection_string(
            self.info.event_hub_connection_string, consumer_group="$Default", connection_verify=self.info.ca_file)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self._stop = lambda: loop.call_soon_threadsafe(stop.set)

        async def on_event(ctx, event) -> None:
            self._record(event)

        async def on_init(ctx) -> None:
            self.ready.set()

        async with client:
            task = asyncio.create_task(client.receive(on_event=on_event, starting_position="@latest",
                                                      on_partition_initialize=on_init))
            await stop.wait()
            await client.close()
            task.cancel()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)
        time.sleep(1.0)  # every partition attached

    def close(self) -> None:
        if callable(self._stop):
            self._stop()
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


def measure(sink, clients, count: int, rate: float | None, seconds: float,
            wait: float) -> tuple[float, float, float, int]:
    """Throughput (events/s over ``count`` sent at full speed), then latency p50/p99 at ``rate``; and how many
    of the ``count`` events arrived within ``wait`` seconds."""
    sink.start()
    try:
        t0 = time.time()
        publish(clients, count, None)
        deadline = time.monotonic() + wait
        while len(sink.latencies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        received = len(sink.latencies)
        throughput = received / max(sink.last - t0, 1e-9)
        sink.latencies.clear()
        n = int(rate * seconds)
        publish(clients, n, rate)
        deadline = time.monotonic() + wait
        while len(sink.latencies) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        lat = sorted(sink.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
        return throughput, p50, p99, received
    finally:
        sink.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--wait", type=float, default=30, help="longest wait for a phase's events (s)")
    ap.add_argument("--no-sync", action="store_true", help="leave out the synchronous azure-eventhub client")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "hub"
        proc, info = start_hub(state)
        os.environ["REQUESTS_CA_BUNDLE"] = info.ca_file
        clients = devices(info, args.devices)
        partitions = sorted({partition_for(c._client_id.decode(), 4) for c in clients})
        try:
            rows.append(("azure-eventhub asyncio (AMQP 5671)",
                         measure(EventHubSink(info, "asyncio"), clients, args.count, args.rate, args.seconds,
                                 args.wait)))
            if not args.no_sync:
                rows.append(("azure-eventhub sync receive()",
                             measure(EventHubSink(info, "sync"), clients, args.count, args.rate, args.seconds,
                                     args.wait)))
            feed = measure(FeedSink(state), clients, args.count, args.rate, args.seconds, args.wait)
        finally:
            for c in clients:
                c.loop_stop()
                c.disconnect()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"{args.devices} MQTT devices on partitions {partitions} of 4, {args.count} messages at full speed, "
          f"latency at {args.rate:g} msg/s for {args.seconds:g} s")
    print(f"{'path':<38}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'arrived':>12}")
    for name, (tput, p50, p99, got) in [*rows, ("edgegen monitor live feed (MQTT)", feed)]:
        print(f"{name:<38}{tput:>10.0f}{p50:>10.1f}{p99:>10.1f}{f'{got}/{args.count}':>12}")
    for name, (tput, p50, p99, _) in rows:
        print(f"{'ratio ' + name.split()[1] + ' / feed':<38}{tput / feed[0]:>10.2f}{p50 / feed[1]:>10.2f}"
              f"{p99 / feed[2]:>10.2f}")


if __name__ == "__main__":
    main()
