"""`edgegen hub serve`, `edgegen hub device create` and `edgegen deploy` as a user types them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegen.common.sas import generate_key
from edgegen.local.hubstandin.server import read_hub_info
from tests.support.cli import CliRunner
from tests.support.net import free_loopback_address

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IOTHUB_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    state = tmp_path / "state"
    address = free_loopback_address()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(state), "--address", address,
         "--no-mqtt"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while read_hub_info(state) is None:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "hub did not start"
        time.sleep(0.1)
    yield proc, state
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_serve_device_create_and_deploy(served, cli: CliRunner, tmp_path: Path) -> None:
    proc, state = served
    info = read_hub_info(state)
    assert info is not None
    r = cli(["hub", "device", "create", "edge1", "--edge", "--tags", '{"environment": "prod"}',
             "--state-dir", str(state), "--output", "json"])
    assert r.code == 0
    created = json.loads(r.out)
    assert created["connectionString"].startswith(f"HostName={info.address};DeviceId=edge1;SharedAccessKey=")
    r = cli(["hub", "device", "create", "edge1", "--edge", "--state-dir", str(state)])
    assert r.code == 1
    err = r.err
    assert "already exists" in err and "pass --exist-ok to use it" in err
    r = cli(["hub", "device", "create", "edge1", "--edge", "--state-dir", str(state), "--exist-ok",
             "--output", "json"])
    assert r.code == 0
    assert json.loads(r.out)["connectionString"] == created["connectionString"]

    manifest = str(DATA / "deployment.json")
    r = cli(["deploy", "-d", "edge1", "-f", manifest, "--state-dir", str(state)])
    assert r.code == 0
    assert "deployed" in r.out

    from azure.iot.hub import IoTHubRegistryManager

    os.environ["REQUESTS_CA_BUNDLE"] = info.ca_file
    rm = IoTHubRegistryManager.from_connection_string(info.connection_string)
    rm.create_module_with_sas("edge1", "sensor", "iotEdge", None, None)  # what the device side does
    assert rm.get_module_twin("edge1", "sensor").properties.desired["interval"] == 1

    args = ["deploy", "--name", "prod", "-t", "tags.environment='prod'", "-p", "10", "-f", manifest,
            "--labels", '{"team": "a"}', "--metrics", '{"queries": {"n": "SELECT deviceId FROM devices"}}',
            "--state-dir", str(state), "--output", "json"]
    r = cli(args)
    assert r.code == 0
    assert json.loads(r.out)["action"] == "created"
    args[args.index("-p") + 1] = "20"
    r = cli(args)
    assert r.code == 0
    out = json.loads(r.out)
    assert out["action"] == "updated" and any("priority" in n for n in out["notes"])

    changed = tmp_path / "changed.json"
    doc = json.loads((DATA / "deployment.json").read_text())
    doc["modulesContent"]["sensor"]["properties.desired"]["interval"] = 7
    changed.write_text(json.dumps(doc))
    args[args.index("-f") + 1] = str(changed)
    r = cli(args)
    assert r.code == 1
    err = r.err
    assert "does not allow changing the content" in err and "prod-v2" in err

    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps({"modulesContent": {"sensor": {"properties.desired.threshold": 5}}}))
    assert cli(["deploy", "--name", "layer", "-t", "tags.environment='prod'", "--layered", "-f", str(layer),
                "--state-dir", str(state)]).code == 0
    assert rm.get_module_twin("edge1", "sensor").properties.desired["threshold"] == 5

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert read_hub_info(state) is None


def test_invalid_manifest_is_refused(served, cli: CliRunner, tmp_path: Path) -> None:
    _, state = served
    assert cli(["hub", "device", "create", "edge1", "--edge", "--state-dir", str(state)]).code == 0
    bad = tmp_path / "bad.json"
    doc = json.loads((DATA / "deployment.json").read_text())
    doc["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["restartPolicy"] = "sometimes"
    bad.write_text(json.dumps(doc, indent=2))
    r = cli(["deploy", "-d", "edge1", "-f", str(bad), "--state-dir", str(state)])
    assert r.code == 1
    err = r.err
    assert "nothing was deployed" in err and "restartPolicy" in err and "bad.json:" in err
    assert cli(["deploy", "-d", "edge1", "-f", str(bad), "--no-validation", "--state-dir", str(state)]).code == 0


def test_no_hub_and_bad_key_say_what_to_do(served, cli: CliRunner, tmp_path: Path) -> None:
    _, state = served
    r = cli(["deploy", "-d", "edge1", "-f", str(DATA / "deployment.json"), "--state-dir",
             str(tmp_path / "nowhere")])
    assert r.code == 1
    assert "edgegen hub serve" in r.err
    info = read_hub_info(state)
    assert info is not None
    wrong = f"HostName={info.host_name};SharedAccessKeyName=iothubowner;SharedAccessKey={generate_key()}"
    r = cli(["hub", "device", "create", "x", "--hub-connection-string", wrong, "--state-dir", str(state)])
    assert r.code == 1
    err = r.err
    assert "401" in err and "key" in err


def test_serve_on_a_busy_address_says_so(served, cli: CliRunner) -> None:
    _, state = served
    info = read_hub_info(state)
    assert info is not None
    r = cli(["hub", "serve", "--state-dir", str(state.parent / "other"), "--address", info.address,
             "--port", str(info.port), "--duration", "1"])
    code = r.code
    assert code == 1
    err = r.err
    assert f"cannot listen on {info.address}:{info.port}" in err and "--address" in err
