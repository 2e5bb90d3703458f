"""Cloud-to-device with the Node.js SDKs: ``azure-iothub`` ``Client.send`` (AMQP, no SASL: its token goes on
``$cbs``) and ``Registry.get`` (REST on 443) from the hub connection string ``edgegen hub serve`` prints, received
by the Node device SDK over MQTT (``azure-iot-device`` + ``azure-iot-device-mqtt``) and by the Python device SDK,
each from the device connection string edgegen prints. Scripts: tests/node/c2d_*.js."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import time
from pathlib import Path

import pytest
from azure.iot.device import IoTHubDeviceClient

from edgegen.hub.client import HubClient
from edgegen.hub.connection import HubTarget
from tests.support.nodeclient import NODE_MODULES, require_node_sdk

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCRIPTS = Path(__file__).resolve().parents[1] / "node"


def node(node_bin: str, script: Path, cs: str, args: list[str], ca_file: str) -> subprocess.Popen[str]:
    """The connection string goes in the environment: a key on argv is visible to every local user."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update({"NODE_PATH": str(NODE_MODULES), "NODE_EXTRA_CA_CERTS": ca_file, "NODE_NO_WARNINGS": "1",
                "NO_PROXY": "*", "no_proxy": "*", "CONNECTION_STRING": cs})
    return subprocess.Popen([node_bin, str(script), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def test_node_service_sdk_c2d_to_node_and_python_devices(hub_factory, tmp_path: Path, monkeypatch) -> None:
    node_bin = require_node_sdk()
    running, _ = hub_factory(state_dir=tmp_path / "state", mqtt=True, amqp=True)
    info = running.info
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info.ca_file)
    hub = HubClient(HubTarget(info.connection_string, info.host_name, info.ca_file, "test"))
    on_node, on_python = hub.create_device("node-dev"), hub.create_device("py-dev")
    assert on_node.connection_string.startswith(f"HostName={info.address};")
    receiver = node(node_bin, SCRIPTS / "c2d_receive.js", on_node.connection_string, ["1"], info.ca_file)
    python_device = IoTHubDeviceClient.create_from_connection_string(
        on_python.connection_string, server_verification_cert=Path(info.ca_file).read_text())
    inbox: queue.Queue = queue.Queue()
    python_device.on_message_received = inbox.put
    python_device.connect()
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "READY", receiver.stderr
        sender = node(node_bin, SCRIPTS / "c2d_send.js", info.connection_string,
                      ['node-dev:n-1:{"to": "node"}', 'py-dev:n-2:{"to": "python"}'], info.ca_file)
        out, err = sender.communicate(timeout=60)
        assert sender.returncode == 0, err
        assert json.loads(out) == {"sent": ["n-1", "n-2"]}
        got = inbox.get(timeout=20)
        out, err = receiver.communicate(timeout=60)
        assert receiver.returncode == 0, err
    finally:
        python_device.shutdown()
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    assert got.message_id == "n-2" and json.loads(got.data) == {"to": "python"}
    assert got.content_type == "application/json" and got.custom_properties == {"sender": "node"}
    assert json.loads(out) == [{"messageId": "n-1", "data": '{"to": "node"}', "contentType": "application/json",
                                "properties": {"iothub-ack": "full", "sender": "node"}}]
    c2d = running.standin.backend.c2d
    deadline = time.monotonic() + 10
    while (running.call(c2d.pending, "node-dev") or running.call(c2d.pending, "py-dev")) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert running.call(c2d.pending, "node-dev") == [] == running.call(c2d.pending, "py-dev")  # both completed
