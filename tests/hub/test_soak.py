"""Endurance of the hub stand-in: devices sending for minutes, a monitor reading, retention pruning. The hub's
RSS stays flat and its files stay within their bounds; the monitor misses nothing.

Opt-in (``EDGEGEN_SOAK=1``; ``EDGEGEN_SOAK_SECONDS``, default 600): not part of ``make test``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegen.common.retention import INTERVAL
from edgegen.common.sas import generate_sas_token
from tests.support.net import free_loopback_address, free_port, wait_for_port
from tests.support.proc import stop_process

pytestmark = [pytest.mark.soak, pytest.mark.integration]

EDGEGEN = str(Path(sys.executable).parent / "edgegen")
DEVICES = 200
RATE = 5.0  # messages per second per device: 1,000 msg/s in all
RETENTION_MB = 8.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def files_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("*.sqlite*")) + sum(p.stat().st_size for p in state.glob("*.db*"))


def senders(host: str, ca: str, devices: list[tuple[str, str]], seconds: float, acked: mp.Value) -> None:
    clients = []
    for device_id, key in devices:
        c = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
        c.username_pw_set(f"{host}/{device_id}/?api-version=2021-04-12",
                          generate_sas_token(f"{host}/devices/{device_id}", key, ttl=7200))
        c.tls_set_context(ssl.create_default_context(cafile=ca))
        c.on_publish = lambda *_: None
        c.connect(host, 8883)
        c.loop_start()
        clients.append((device_id, c))
    end = time.monotonic() + seconds
    n = 0
    pending = []
    while time.monotonic() < end:
        tick = time.monotonic()
        for device_id, c in clients:
            pending.append(c.publish(f"devices/{device_id}/messages/events/", json.dumps({"n": n}), qos=1))
            n += 1
        pending = [p for p in pending if not p.is_published()]
        time.sleep(max(0.0, 1 / RATE - (time.monotonic() - tick)))
    for p in pending:
        p.wait_for_publish(30)
    with acked.get_lock():
        acked.value += n
    for _, c in clients:
        c.disconnect()
        c.loop_stop()


def test_soak_flat_rss_bounded_files_nothing_missed(tmp_path) -> None:
    from edgegen.local.hubstandin.backend import HubBackend
    from edgegen.local.hubstandin.store import SqliteHubStore

    seconds = float(os.environ.get("EDGEGEN_SOAK_SECONDS", "600"))
    address = free_loopback_address(8883)
    port = free_port(address)
    state = tmp_path / "hub"
    store = SqliteHubStore(state / "hub.sqlite")
    backend = HubBackend(store, f"{address}:{port}")
    keys = [(f"s{i}", backend.put_device(f"s{i}", {})["authentication"]["symmetricKey"]["primaryKey"])
            for i in range(DEVICES)]
    store.close()
    hub = subprocess.Popen([EDGEGEN, "hub", "serve", "--state-dir", str(state), "--address", address, "--port",
                            str(port), "--retention-mb", str(RETENTION_MB)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    monitor = None
    try:
        wait_for_port(address, 8883, timeout=60)
        deadline = time.monotonic() + 30
        while not (state / "hub.json").exists() and time.monotonic() < deadline:  # written once every side listens
            time.sleep(0.05)
        monitor = subprocess.Popen([EDGEGEN, "monitor", "--state-dir", str(state), "--output", "table",
                                    "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = [0]

        def count() -> None:
            assert monitor is not None and monitor.stdout is not None
            for _ in monitor.stdout:
                lines[0] += 1

        reader = threading.Thread(target=count, daemon=True)
        reader.start()
        time.sleep(3)
        acked = mp.Value("q", 0)
        procs = [mp.get_context("fork").Process(target=senders, args=(address, str(state / "ca.pem"),
                                                                         keys[i::2], seconds, acked))
                 for i in range(2)]
        for p in procs:
            p.start()
        samples: list[tuple[float, int, int]] = []
        start = time.monotonic()
        while any(p.is_alive() for p in procs):
            samples.append((time.monotonic() - start, rss_kib(hub.pid), files_bytes(state)))
            time.sleep(10)
        for p in procs:
            p.join()
        monitor.wait(timeout=120)
        reader.join(10)
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
        stop_process(hub, 20)
    steady = [rss for t, rss, _ in samples if t >= seconds * 0.3]
    assert steady and max(steady) <= min(steady) * 1.25 + 10_000, samples  # flat: no growth with time
    bound = RETENTION_MB * 1024 * 1024 + INTERVAL * RATE * DEVICES * 600 + 16 * 1024 * 1024
    assert max(f for _, _, f in samples) <= bound, samples  # retention + one interval's messages + WALs
    assert monitor.returncode == 0, monitor.stderr.read().decode() if monitor.stderr else ""
    assert lines[0] == acked.value  # the monitor kept up: every acknowledged message shown once
