"""``edgegen hub serve`` with its AMQP side, driven through the CLI: the printed Event Hub-compatible connection
string, ``edgegen monitor`` on its azure-eventhub path, ``hub c2d send`` and consumer groups."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.iot.device import IoTHubDeviceClient, Message

from edgegen.local.hubstandin.server import read_hub_info
from tests.support.cli import CliRunner
from tests.support.net import free_loopback_address

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def parse_events(text: str) -> list[dict]:
    decoder, events, i = json.JSONDecoder(), [], 0
    while i < len(text.rstrip()):
        event, i = decoder.raw_decode(text, i)
        events.append(event["event"])
        while i < len(text) and text[i].isspace():
            i += 1
    return events


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    monkeypatch.chdir(tmp_path)
    for name in ("IOTHUB_CONNECTION_STRING", "IOTHUB_EVENTHUB_CONNECTION_STRING", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    address = free_loopback_address()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(state), "--address", address],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while read_hub_info(state) is None:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "hub did not start"
        time.sleep(0.1)
    yield proc, state
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def test_monitor_through_eventhub_c2d_send_and_consumer_groups(served, capsys, monkeypatch, cli: CliRunner) -> None:
    _, state = served
    info = read_hub_info(state)
    assert info is not None and info.amqp_port == 5671
    assert info.event_hub_connection_string == (
        f"Endpoint=sb://{info.address}/;SharedAccessKeyName=iothubowner;SharedAccessKey="
        f"{info.connection_string.rsplit('SharedAccessKey=', 1)[1]};EntityPath=edgegen-local-hub")
    r = cli(["hub", "device", "create", "dev1", "--state-dir", str(state), "--output", "json"])
    assert r.code == 0
    device_cs = json.loads(r.out)["connectionString"]
    device = IoTHubDeviceClient.create_from_connection_string(
        device_cs, server_verification_cert=Path(info.ca_file).read_text())
    inbox: queue.Queue = queue.Queue()
    device.on_message_received = inbox.put
    device.connect()
    try:
        for i in range(2):
            msg = Message(json.dumps({"n": i}), content_type="application/json", content_encoding="utf-8")
            msg.custom_properties["k"] = "v"
            device.send_message(msg)
        args = ["monitor", "--state-dir", str(state), "--eventhub-connection-string",
                info.event_hub_connection_string, "--from-start", "--count", "2", "--timeout", "20",
                "--properties", "all"]
        r = cli(args)
        assert r.code == 0
        events = parse_events(r.out)
        assert [(e["origin"], e["payload"]) for e in events] == [("dev1", {"n": 0}), ("dev1", {"n": 1})]
        assert events[0]["properties"]["application"] == {"k": "v"}
        assert events[0]["properties"]["system"]["iothub-connection-device-id"] == "dev1"
        assert events[0]["properties"]["system"]["content_type"] == "application/json"

        r = cli(["hub", "c2d", "send", "dev1", '{"cmd":"on"}', "--props", "level=7", "--ack", "full",
                 "--content-type", "application/json", "--state-dir", str(state), "--output", "json"])
        assert r.code == 0
        sent = json.loads(r.out)
        got = inbox.get(timeout=15)
        assert got.message_id == sent["messageId"] and got.data == b'{"cmd":"on"}'
        assert got.custom_properties == {"level": "7"} and got.content_type == "application/json"
    finally:
        device.shutdown()
    r = cli(["hub", "c2d", "send", "nobody", "x", "--state-dir", str(state)])
    assert r.code == 1
    assert "refused" in r.err

    r = cli(["hub", "consumer-group", "create", "analytics", "--state-dir", str(state), "--output", "json"])
    assert r.code == 0
    assert json.loads(r.out) == ["$Default", "analytics"]
    args = ["monitor", "--state-dir", str(state), "--eventhub-connection-string",
            info.event_hub_connection_string, "--cg", "analytics", "--from-start", "--count", "2", "--timeout", "20"]
    r = cli(args)
    assert r.code == 0
    assert [e["origin"] for e in parse_events(r.out)] == ["dev1", "dev1"]
