"""Soak under ``kill -9``: a device process killed and started again under a QoS 1 stream, every message the edge
hub acknowledged accounted for at ``$upstream`` (shared by the process-mode and the engine-mode soak).

A publisher (paho, as module ``a``, QoS 1, persistent session) sends a numbered stream to the edge hub; a route
takes it to the real monitor module, which forwards every message to ``$upstream``. The monitor outlives each
kill (a process in its own session, or a container the engine keeps), keeps what it had taken, reconnects, and the
restarted device adopts it. ``soak`` returns what was acknowledged and what reached ``$upstream``.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edgegen.common.sas import generate_sas_token
from edgegen.local.control import ControlClient
from edgegen.local.errors import DeviceError
from edgegen.local.upstream import LocalUpstream
from tests.local.device.harness import wait_for
from tests.support.net import free_loopback_address, wait_for_port

DEVICE = "edgegen-device"
ROUTES = {"in": 'FROM /messages/modules/a/outputs/out INTO BrokeredEndpoint("/modules/monitor/inputs/in")',
          "up": "FROM /messages/modules/monitor/outputs/upstream INTO $upstream"}
MONITOR_ENV = {"HEARTBEAT_SECONDS": {"value": "0"}, "REPORT_INTERVAL": {"value": "1"},
               "MESSAGE_LOG_LEVEL": {"value": "DEBUG"}}


class DeviceProcess:
    """``edgegen device run`` as a child process, started again after each ``kill`` with the same state."""

    def __init__(self, tmp: Path, manifest: Path, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.state = tmp / "state"
        self.address = free_loopback_address(8883)
        self.manifest = manifest
        self.args, self.env, self.log = list(args), None if env is None else dict(env), tmp / "device.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.state / "device.json").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgegen", "device", "run", "--manifest", str(self.manifest), "--state-dir",
             str(self.state), "--address", self.address, *self.args],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=self.env)  # noqa: SIM115 - the child owns it
        proc = self.proc
        wait_for(lambda: (self.state / "device.json").exists() or proc.poll() is not None, 90, "device started")
        assert proc.poll() is None, self.log.read_text()[-3000:]
        wait_for_port(self.address, 8883)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no chance to flush, close or stop anything
        self.proc.wait(10)

    def module_status(self, module: str) -> dict[str, Any]:
        try:
            return dict(ControlClient(self.state).status()["modules"].get(module) or {})
        except DeviceError:  # not up yet
            return {}

    def terminate(self) -> None:
        """A clean stop (SIGTERM): the device stops its modules."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


class Publisher:
    """Module ``a`` on paho: a numbered stream at a steady rate; ``acked`` are the messages the hub PUBACKed."""

    def __init__(self, dev: DeviceProcess) -> None:
        key = json.loads((dev.state / "identities.json").read_text())["modules"]["a"]["key"]
        host = "edgegen-hub.local"
        self.client = mqtt.Client(client_id=f"{DEVICE}/a", clean_session=False, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(f"{host}/{DEVICE}/a/?api-version=2021-04-12",
                                    generate_sas_token(f"{host}/devices/{DEVICE}/modules/a", key))
        self.client.tls_set(ca_certs=str(dev.state / "certs" / "ca.pem"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.max_queued_messages_set(0)
        self.sent: dict[int, bytes] = {}  # mid -> payload (fewer than 65,535 messages: mids do not wrap)
        self.acked_mids: set[int] = set()
        self.client.on_publish = lambda client, userdata, mid: self.acked_mids.add(mid)  # PUBACK received
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.client.connect(dev.address, 8883, keepalive=5)
        self.client.loop_start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            payload = f"m{i:06d}".encode()
            info = self.client.publish(f"devices/{DEVICE}/modules/a/messages/events/%24.on=out", payload, qos=1)
            self.sent[info.mid] = payload  # queued by paho even while disconnected, sent on reconnect
            i += 1
            time.sleep(0.01)

    def start(self) -> None:
        self._thread.start()

    def stop_sending(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def acked(self) -> list[bytes]:
        return [self.sent[mid] for mid in list(self.acked_mids) if mid in self.sent]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def upstream_bodies(state: Path, module: str = "monitor") -> list[bytes]:
    store = LocalUpstream(state / "upstream.sqlite")
    try:
        out, after = [], 0
        while batch := store.read(after, 5000):
            out += [m.body for _, m in batch if m.module_id == module]
            after = batch[-1][0]
        return out
    finally:
        store.close()


@dataclass(frozen=True)
class SoakResult:
    sent: set[bytes]
    acked: list[bytes]
    upstream: list[bytes]
    monitor_ids: set[object]  # the monitor's pid or container id each time it was looked at

    @property
    def duplicates(self) -> int:
        return len(self.upstream) - len(set(self.upstream))


def _taken_over(status: dict[str, Any]) -> object:
    """True once the restarted device adopted the module; its status once it started another one instead."""
    if status.get("statusDescription", "").startswith("adopted"):
        return True
    return status if status.get("runtimeStatus") in ("running", "failed", "backoff") else None  # not yet: stopped


def soak(dev: DeviceProcess, kills: int, up_secs: float, monitor_id: Callable[[], object]) -> SoakResult:
    """Start ``dev``; under the stream, ``kill -9`` it ``kills`` times (``up_secs`` apart), checking each time
    that the monitor (``monitor_id()``: its pid or container id, None when it does not run) outlived the kill and
    that the restarted device adopted it; then wait until every acknowledged message is upstream."""
    dev.start()
    wait_for(monitor_id, 90, "the monitor running")
    publisher = Publisher(dev)
    try:
        publisher.start()
        ids: set[object] = set()
        for _ in range(kills):
            time.sleep(up_secs)
            running = monitor_id()
            assert running is not None
            ids.add(running)
            dev.kill()
            assert monitor_id() == running, "the monitor died with the device process"
            dev.start()
            taken = wait_for(lambda: _taken_over(dev.module_status("monitor")), 60, "the monitor taken over")
            assert taken is True, f"the restarted device did not adopt the monitor: {taken}"
        time.sleep(up_secs)
        ids.add(monitor_id())
        publisher.stop_sending()
        wait_for(lambda: len(publisher.acked()) == len(publisher.sent), 20, "the last messages acknowledged")
        acked = publisher.acked()
        wanted = set(acked)
        wait_for(lambda: wanted <= set(upstream_bodies(dev.state)), 30, "every acknowledged message upstream")
        return SoakResult(set(publisher.sent.values()), acked, upstream_bodies(dev.state), ids)
    finally:
        publisher.close()
