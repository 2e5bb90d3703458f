"""The real Azure CLI (azure-cli 2.77.0 + the azure-iot extension 0.25.0, uamqp) against the stand-in, with the
connection string ``edgegen hub serve`` prints: ``az iot device c2d-message send`` to a device on the Python SDK,
``az iot hub monitor-feedback`` waiting on that message's feedback, ``az iot hub monitor-events`` reading what a
device sent (the CLI asks ``messages/events``, is redirected to the Event Hub-compatible endpoint, reads its
``$management`` node and every partition)."""

from __future__ import annotations

import json
import queue
import subprocess
import time
from pathlib import Path

import pytest
from azure.iot.device import IoTHubDeviceClient, Message

from edgegen.hub.client import HubClient
from edgegen.hub.connection import HubTarget
from tests.support.peers import AZ, az_env, ca_bundle, skip_reason_az

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(skip_reason_az() is not None, reason=skip_reason_az() or "")]


def az(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AZ), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def parse_json_stream(text: str) -> list[dict]:
    decoder, out, i = json.JSONDecoder(), [], text.find("{")
    while 0 <= i < len(text):
        value, end = decoder.raw_decode(text, i)
        out.append(value)
        i = text.find("{", end)
    return out


def test_az_c2d_send_feedback_and_monitor_events(hub_factory, tmp_path: Path, monkeypatch) -> None:
    running, _ = hub_factory(state_dir=tmp_path / "state", mqtt=True, amqp=True)
    info = running.info
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", info.ca_file)
    hub_cs = info.connection_string
    device = HubClient(HubTarget(hub_cs, info.host_name, info.ca_file, "test")).create_device("dev1")
    config = tmp_path / "az-config"
    config.mkdir(mode=0o700)
    env = az_env(config, ca_bundle(info.ca_file, tmp_path))

    client = IoTHubDeviceClient.create_from_connection_string(
        device.connection_string, server_verification_cert=Path(info.ca_file).read_text())
    inbox: queue.Queue = queue.Queue()
    client.on_message_received = inbox.put
    client.connect()
    try:
        sent = az(["iot", "device", "c2d-message", "send", "-d", "dev1", "--login", hub_cs, "--data",
                   '{"cmd": "on"}', "--props", "level=7", "--ack", "full", "--mid", "az-1", "--ct",
                   "application/json"], env)
        assert sent.returncode == 0, sent.stderr
        got = inbox.get(timeout=20)
        assert got.message_id == "az-1" and json.loads(got.data) == {"cmd": "on"}
        assert got.custom_properties == {"level": "7"} and got.content_type == "application/json"
        assert got.ack == "full"

        feedback = az(["iot", "hub", "monitor-feedback", "--login", hub_cs, "-d", "dev1", "--wait-on-msg",
                       "az-1"], env, timeout=60)
        assert feedback.returncode == 0, feedback.stderr
        assert "originalMessageId: az-1" in feedback.stdout and "statusCode: Success" in feedback.stdout

        start_ms = int(time.time() * 1000) - 1000
        for i in range(2):
            msg = Message(json.dumps({"n": i}), content_type="application/json", content_encoding="utf-8")
            msg.custom_properties["k"] = "v"
            client.send_message(msg)
    finally:
        client.shutdown()
    watched = az(["iot", "hub", "monitor-events", "--login", hub_cs, "--enqueued-time", str(start_ms),
                  "--timeout", "5", "--properties", "all", "-y", "-o", "json"], env, timeout=90)
    assert watched.returncode == 0, watched.stderr
    events = [e["event"] for e in parse_json_stream(watched.stdout)]
    assert [(e["origin"], e["payload"]) for e in events] == [("dev1", {"n": 0}), ("dev1", {"n": 1})]
    assert events[0]["properties"]["application"] == {"k": "v"}
    assert events[0]["properties"]["system"]["content_type"] == "application/json"
    assert events[0]["annotations"]["iothub-connection-device-id"] == "dev1"
