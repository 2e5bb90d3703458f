"""Under load: a paused monitor misses nothing (flow control) or says what retention took and exits non-zero;
``--from`` re-reads the store; the hub under ``ulimit -n 1024`` refuses devices beyond its capacity with CONNACK
"server unavailable", keeps answering REST, and logs the refusals rate-limited."""

from __future__ import annotations

import json
import os
import resource
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegen.common.retention import Retention
from edgegen.common.sas import generate_sas_token
from edgegen.hub.connection import resolve_hub
from edgegen.hub.standin import standin_status
from edgegen.local.hubstandin.feed import FEED_WINDOW
from edgegen.local.mqtt.codec import Connect, PacketReader, encode
from tests.support.net import free_loopback_address, free_port, wait_for_port
from tests.support.proc import stop_process

pytestmark = pytest.mark.integration

EDGEGEN = str(Path(sys.executable).parent / "edgegen")


def device_client(running, device_id: str) -> mqtt.Client:
    device = running.call(running.standin.backend.put_device, device_id, {})
    key = device["authentication"]["symmetricKey"]["primaryKey"]
    host = running.info.address
    client = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
    client.username_pw_set(f"{host}/{device_id}/?api-version=2021-04-12",
                           generate_sas_token(f"{host}/devices/{device_id}", key))
    client.tls_set_context(ssl.create_default_context(cafile=running.info.ca_file))
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(host, 8883)
    client.loop_start()
    return client


def burst(client: mqtt.Client, device_id: str, start: int, n: int) -> None:
    infos = [client.publish(f"devices/{device_id}/messages/events/", json.dumps({"i": i}), qos=1)
             for i in range(start, start + n)]
    for info in infos:
        info.wait_for_publish(30)


def monitor(state: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([EDGEGEN, "monitor", "--state-dir", str(state), "--output", "table", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_status(running, predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        status = running.call(running.standin.status)
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status never matched: {status}")
        time.sleep(0.1)


def shown(stdout: bytes) -> list[int]:
    return [json.loads(line.split(None, 2)[2])["i"] for line in stdout.decode().splitlines() if line.strip()]


@pytest.fixture
def hub(hub_factory, tmp_path):
    running, _ = hub_factory(state_dir=tmp_path / "state", mqtt=True)
    return running


def test_a_paused_monitor_under_a_burst_misses_nothing(hub, tmp_path) -> None:
    n = FEED_WINDOW * 3
    proc = monitor(tmp_path / "state", "--count", str(n), "--timeout", "60")
    try:
        wait_status(hub, lambda s: any(m["online"] for m in s["monitors"]))
        os.kill(proc.pid, signal.SIGSTOP)
        client = device_client(hub, "burst1")
        burst(client, "burst1", 0, n)  # every one acknowledged: stored
        status = wait_status(hub, lambda s: s["messageStore"]["messages"] == n)
        [feed] = status["monitors"]
        assert feed["behind"] == n and feed["inFlight"] <= FEED_WINDOW  # held back; the rest waits in the store
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
        client.disconnect()
        client.loop_stop()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert shown(out) == list(range(n))


def test_a_monitor_behind_retention_says_what_it_missed_and_from_rereads_the_store(hub, tmp_path) -> None:
    n = FEED_WINDOW * 3
    proc = monitor(tmp_path / "state", "--timeout", "5")
    try:
        wait_status(hub, lambda s: any(m["online"] for m in s["monitors"]))
        os.kill(proc.pid, signal.SIGSTOP)
        client = device_client(hub, "burst2")
        burst(client, "burst2", 0, n)
        wait_status(hub, lambda s: s["messageStore"]["messages"] == n)
        hub.standin.retention = Retention(1.0, 30_000)  # what fits in 30 kB stays; the older ones go
        hub.call(hub.standin.prune)
        kept = hub.call(hub.standin.status)["messageStore"]["messages"]
        assert 0 < kept < n - FEED_WINDOW
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
        client.disconnect()
        client.loop_stop()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    got = shown(out)
    missed = n - len(got)
    assert proc.returncode != 0
    assert f"missed {missed} messages" in err.decode() and "--from" in err.decode()
    assert got == list(range(FEED_WINDOW)) + list(range(n - kept, n))  # what was on its way, then what is left
    again = monitor(tmp_path / "state", "--from", "10m", "--count", str(kept), "--timeout", "10")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert shown(out) == list(range(n - kept, n))


def _connect(host: str, ca: str, device_id: str, key: str) -> tuple[object, int]:
    import socket

    ctx = ssl.create_default_context(cafile=ca)
    sock = ctx.wrap_socket(socket.create_connection((host, 8883), timeout=10), server_hostname=host)
    password = generate_sas_token(f"{host}/devices/{device_id}", key).encode()
    sock.sendall(encode(Connect(device_id, True, 300, f"{host}/{device_id}/?api-version=2021-04-12", password)))
    reader = PacketReader()
    while True:
        data = sock.recv(4096)
        if not data:
            return sock, -1
        packets = reader.feed(data)
        if packets:
            return sock, packets[0].return_code  # type: ignore[attr-defined]


@pytest.mark.slow
def test_under_ulimit_1024_devices_beyond_capacity_get_server_unavailable(tmp_path) -> None:
    from edgegen.local.hubstandin.backend import HubBackend
    from edgegen.local.hubstandin.store import SqliteHubStore

    address = free_loopback_address(8883)
    port = free_port(address)
    state = tmp_path / "hub"
    store = SqliteHubStore(state / "hub.sqlite")
    backend = HubBackend(store, f"{address}:{port}")
    keys = {f"d{i}": backend.put_device(f"d{i}", {})["authentication"]["symmetricKey"]["primaryKey"]
            for i in range(1024)}
    store.close()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    log = open(tmp_path / "hub.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([EDGEGEN, "hub", "serve", "--state-dir", str(state), "--address", address, "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
    socks = []
    try:
        wait_for_port(address, 8883, timeout=60)
        deadline = time.monotonic() + 30
        while not (state / "hub.json").exists() and time.monotonic() < deadline:  # written once every side listens
            time.sleep(0.05)
        info = json.loads((state / "hub.json").read_text())
        capacity = info["deviceCapacity"]
        assert 900 <= capacity < 1024
        ids = list(keys)
        for device_id in ids[:capacity]:
            sock, rc = _connect(address, info["caFile"], device_id, keys[device_id])
            assert rc == 0, device_id
            socks.append(sock)
        refused = []
        for device_id in ids[capacity:capacity + 40]:
            sock, rc = _connect(address, info["caFile"], device_id, keys[device_id])
            refused.append(rc)
            sock.close()
        assert refused == [3] * 40  # CONNACK "server unavailable"
        target = resolve_hub(None, state_dir=state, environ={})
        status = standin_status(target)  # the REST API still answers
        assert status["connections"] == {"connected": capacity, "capacity": capacity, "openFilesLimit": 1024}
        socks.pop().close()
        deadline = time.monotonic() + 10
        while standin_status(target)["connections"]["connected"] == capacity and time.monotonic() < deadline:
            time.sleep(0.05)
        sock, rc = _connect(address, info["caFile"], ids[-1], keys[ids[-1]])
        assert rc == 0  # room again
        socks.append(sock)
    finally:
        for sock in socks:
            sock.close()
        stop_process(proc, 20)
        log.close()
    text = (tmp_path / "hub.log").read_text()
    assert f"devices at once:   {capacity}" in text
    assert text.count("refused d") <= 6  # 40 refusals: five lines, then one saying how many were not logged
