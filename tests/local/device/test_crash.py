"""A crash of the device process (SIGKILL) loses no message the edge hub had acknowledged: messages for an
offline module are committed to the store before the publisher's PUBACK and delivered after a restart."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgegen.common.sas import generate_sas_token, parse_connection_string
from edgegen.local.device import module_credentials
from tests.local.device.harness import solution_manifest, wait_for
from tests.support.net import free_loopback_address, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _manifest(repo: Path, path: Path) -> Path:
    mc = solution_manifest(repo)["modulesContent"]
    image = mc["$edgeAgent"]["properties.desired"]["modules"]["monitor"]["settings"]["image"]
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never", "settings": {"image": image}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"a": stopped, "b": dict(stopped)}
    mc["$edgeHub"]["properties.desired"]["routes"] = {"ab": {
        "route": 'FROM /messages/modules/a/outputs/out INTO BrokeredEndpoint("/modules/b/inputs/in")',
        "priority": 0, "timeToLiveSecs": 600}}
    for key in ("sensor", "monitor", "inference"):
        mc.pop(key, None)
    path.write_text(json.dumps({"modulesContent": mc}))
    return path


def _start(manifest: Path, state: Path, address: str, repo: Path, log: Path) -> subprocess.Popen[bytes]:
    (state / "device.json").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "device", "run", "--manifest", str(manifest),
                             "--state-dir", str(state), "--address", address, "--solution", str(repo)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115 - child owns it
    wait_for(lambda: (state / "device.json").exists() or proc.poll() is not None, 60, "device started")
    assert proc.poll() is None, log.read_text()
    wait_for_port(address, 8883)
    return proc


def _client(state: Path, module: str, address: str) -> mqtt.Client:
    cred = module_credentials(state, module)
    cs = parse_connection_string(cred["EdgeHubConnectionString"])
    host, dev = cs["HostName"], cs["DeviceId"]
    c = mqtt.Client(client_id=f"{dev}/{module}", clean_session=False, protocol=mqtt.MQTTv311)
    c.username_pw_set(f"{host}/{dev}/{module}/?api-version=2019-10-01",
                      generate_sas_token(f"{host}/devices/{dev}/modules/{module}", cs["SharedAccessKey"]))
    c.tls_set(ca_certs=cred["EdgeModuleCACertificateFile"], tls_version=ssl.PROTOCOL_TLS_CLIENT)
    assert c.connect(address, 8883) == 0
    c.loop_start()
    return c


def test_sigkill_loses_no_acknowledged_message(tmp_path: Path, repo_root: Path) -> None:
    n = 200
    state, address = tmp_path / "state", free_loopback_address(8883)
    manifest = _manifest(repo_root, tmp_path / "m.json")
    proc = _start(manifest, state, address, repo_root, tmp_path / "device.log")
    try:
        b = _client(state, "b", address)  # b subscribes once (its session exists), then goes away
        b.subscribe("devices/edgegen-device/modules/b/inputs/#", qos=1)
        wait_for(lambda: b.is_connected(), 10, "b connected")
        b.disconnect()
        b.loop_stop()

        a = _client(state, "a", address)
        infos = [a.publish("devices/edgegen-device/modules/a/messages/events/%24.on=out", f"m{i}".encode(), qos=1)
                 for i in range(n)]
        for info in infos:
            info.wait_for_publish(10)  # PUBACK received: the edge hub took responsibility
        assert all(info.is_published() for info in infos)
        proc.send_signal(signal.SIGKILL)  # no chance to flush or close anything
        proc.wait(10)
        a.loop_stop()

        proc = _start(manifest, state, address, repo_root, tmp_path / "device.log")
        got: list[bytes] = []
        lock = threading.Lock()

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            with lock:
                got.append(msg.payload)

        b = _client(state, "b", address)
        b.on_message = on_message
        b.subscribe("devices/edgegen-device/modules/b/inputs/#", qos=1)
        wait_for(lambda: len(got) >= n, 30, f"{n} messages after the crash")
        b.disconnect()
        b.loop_stop()
        assert [g.decode() for g in dict.fromkeys(got)] == [f"m{i}" for i in range(n)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
