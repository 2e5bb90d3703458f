"""Soak: repeated ``kill -9`` of the device process under load loses no acknowledged message.

A publisher (paho, as module ``a``, QoS 1, persistent session) sends a numbered stream to the edge hub; a route
takes it to the real monitor module (process mode), which forwards every message to ``$upstream``. While the
stream runs, the device process is killed with SIGKILL several times and started again. The monitor outlives each
kill (modules run in their own session, as IoT Edge's containers outlive edgeHub), keeps what it had taken,
reconnects, and the restarted device adopts it. At the end every message the edge hub acknowledged (PUBACK) to
the publisher is in ``$upstream``: at least once; duplicates are counted and reported, losses fail the test.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegen.common.sas import generate_sas_token
from edgegen.local import pidfiles
from edgegen.local.upstream import LocalUpstream
from tests.local.device.harness import solution_manifest, wait_for
from tests.support.net import free_loopback_address, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICE = "edgegen-device"
KILLS = 3
UP_SECS = 4.0  # how long the device runs, under load, before each kill


def _manifest(repo: Path, path: Path) -> Path:
    mc = solution_manifest(repo)["modulesContent"]
    modules = mc["$edgeAgent"]["properties.desired"]["modules"]
    monitor = modules["monitor"]
    monitor.setdefault("env", {}).update({"HEARTBEAT_SECONDS": {"value": "0"}, "REPORT_INTERVAL": {"value": "1"},
                                          "MESSAGE_LOG_LEVEL": {"value": "DEBUG"}})
    publisher = {"type": "docker", "status": "stopped", "restartPolicy": "never",
                 "settings": {"image": monitor["settings"]["image"]}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"a": publisher, "monitor": monitor}
    mc["$edgeHub"]["properties.desired"]["routes"] = {
        "in": 'FROM /messages/modules/a/outputs/out INTO BrokeredEndpoint("/modules/monitor/inputs/in")',
        "up": "FROM /messages/modules/monitor/outputs/upstream INTO $upstream"}
    for key in ("sensor", "inference"):
        mc.pop(key, None)
    mc.setdefault("monitor", {"properties.desired": {}})["properties.desired"]["heartbeatSeconds"] = 0
    path.write_text(json.dumps({"modulesContent": mc}))
    return path


class DeviceProcess:
    def __init__(self, tmp: Path, repo: Path, venvs: Path) -> None:
        self.state = tmp / "state"
        self.address = free_loopback_address(8883)
        self.manifest = _manifest(repo, tmp / "m.json")
        self.repo, self.venvs, self.log = repo, venvs, tmp / "device.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.state / "device.json").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgegen", "device", "run", "--manifest", str(self.manifest), "--state-dir",
             str(self.state), "--address", self.address, "--solution", str(self.repo), "--engine", "process",
             "--reuse-site-packages", "--venv-dir", str(self.venvs)],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the child owns it
        proc = self.proc
        wait_for(lambda: (self.state / "device.json").exists() or proc.poll() is not None, 90, "device started")
        assert proc.poll() is None, self.log.read_text()[-3000:]
        wait_for_port(self.address, 8883)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no chance to flush, close or stop anything
        self.proc.wait(10)

    def module_pid(self) -> int | None:
        record = pidfiles.live_record(self.state / "run", "monitor")
        return record.pid if record else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        for module in pidfiles.recorded_modules(self.state / "run"):  # a failed test leaves no module behind
            record = pidfiles.live_record(self.state / "run", module)
            if record is not None:
                os.killpg(record.pid, signal.SIGKILL)


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


def _upstream(state: Path) -> list[bytes]:
    store = LocalUpstream(state / "upstream.sqlite")
    try:
        out, after = [], 0
        while batch := store.read(after, 5000):
            out += [m.body for _, m in batch if m.module_id == "monitor"]
            after = batch[-1][0]
        return out
    finally:
        store.close()


def test_repeated_kill_9_under_load_loses_no_acknowledged_message(tmp_path: Path, repo_root: Path,
                                                                  venv_cache: Path) -> None:
    dev = DeviceProcess(tmp_path, repo_root, venv_cache)
    publisher = None
    try:
        dev.start()
        wait_for(dev.module_pid, 60, "the monitor running")
        publisher = Publisher(dev)
        publisher.start()
        monitor_pids = set()
        for _ in range(KILLS):
            time.sleep(UP_SECS)
            pid = dev.module_pid()
            assert pid is not None
            monitor_pids.add(pid)
            dev.kill()
            assert pidfiles.process_start(pid) is not None, "the monitor died with the device process"
            dev.start()
            assert dev.module_pid() == pid  # adopted, not started again
        time.sleep(UP_SECS)
        publisher.stop_sending()
        wait_for(lambda: len(publisher.acked()) == len(publisher.sent), 20, "the last messages acknowledged")
        acked = publisher.acked()
        wanted = set(acked)
        wait_for(lambda: wanted <= set(_upstream(dev.state)), 30, "every acknowledged message upstream")
        got = _upstream(dev.state)
        duplicates = len(got) - len(set(got))
        print(f"soak: {KILLS} kills, {len(acked)} acknowledged, {len(got)} upstream, {duplicates} duplicates, "
              f"monitor pids {sorted(monitor_pids)}")
        assert len(acked) > 500 and len(monitor_pids) == 1
        assert set(got) - set(publisher.sent.values()) == set()  # nothing upstream that was never sent
    finally:
        if publisher is not None:
            publisher.close()
        dev.stop()
