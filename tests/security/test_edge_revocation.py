"""On the local edge hub, a module's identity goes when the module leaves the deployment (as edgeAgent deletes
it): its live connection is closed within a second, its key no longer signs (the reconnect is refused) and what it
sends after that is neither acknowledged nor routed. Driven from outside with a raw MQTT client."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from edgegen.common.sas import generate_sas_token
from edgegen.local.deployment import parse_deployment
from edgegen.local.device import DeviceConfig
from edgegen.local.mqtt.codec import Puback, Publish
from tests.local.device.harness import DeviceThread, solution_manifest, write_manifest
from tests.local.mqtt.rawclient import RawClient
from tests.support.net import free_loopback_address

pytestmark = pytest.mark.integration

DEVICE = "edgegen-device"


def _manifest(repo: Path) -> dict:
    m = copy.deepcopy(solution_manifest(repo))
    mc = m["modulesContent"]
    image = mc["$edgeAgent"]["properties.desired"]["modules"]["monitor"]["settings"]["image"]
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never", "settings": {"image": image}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"a": stopped, "b": dict(stopped)}
    mc["$edgeHub"]["properties.desired"]["routes"] = {"ab": {
        "route": 'FROM /messages/modules/a/outputs/out INTO BrokeredEndpoint("/modules/b/inputs/in")'}}
    for key in ("sensor", "monitor", "inference"):
        mc.pop(key, None)
    return m


def _connect(dev: DeviceThread, module: str, key: str) -> tuple[RawClient, int]:
    device = dev.device
    assert device is not None
    host = device.config.hub_hostname
    client = RawClient(device.address, device.ca_file)
    token = generate_sas_token(f"{host}/devices/{DEVICE}/modules/{module}", key)
    ack = client.connect(f"{DEVICE}/{module}", f"{host}/{DEVICE}/{module}/?api-version=2021-04-12", token)
    return client, ack.return_code


def test_module_removed_from_the_deployment_loses_its_identity(tmp_path: Path, repo_root: Path) -> None:
    manifest = _manifest(repo_root)
    config = DeviceConfig(state_dir=tmp_path / "state", manifest=write_manifest(tmp_path / "m.json", manifest),
                          address=free_loopback_address(8883), https_port=None, control_api=False)
    with DeviceThread(config) as dev:
        device = dev.device
        assert device is not None
        key_a = device.identities.get("a").key  # type: ignore[union-attr]
        a, code = _connect(dev, "a", key_a)
        assert code == 0
        topic = f"devices/{DEVICE}/modules/a/messages/events/%24.on=out"
        a.send(Publish(topic, b"before", 1, 1))
        assert a.recv() == Puback(1)

        without_a = copy.deepcopy(manifest)
        del without_a["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["a"]
        without_a["modulesContent"]["$edgeHub"]["properties.desired"]["routes"] = {}
        started = time.monotonic()
        dev.run(lambda: device.apply(parse_deployment(without_a["modulesContent"])))
        assert a.closed_by_server(timeout=1.0), "the removed module's connection stayed open"
        assert time.monotonic() - started < 1.5
        assert device.identities.get("a") is None
        assert "a" not in json.loads((config.state_dir / "identities.json").read_text())["modules"]
        again, code = _connect(dev, "a", key_a)
        again.close()
        assert code == 5  # the old key signs nothing any more
        assert dev.call(lambda: device.router.counters.to_dict())["received"] == 1

        # deployed again, it is a new identity: a new key, and the old one still refused
        dev.run(lambda: device.apply(parse_deployment(manifest["modulesContent"])))
        new_key = device.identities.get("a").key  # type: ignore[union-attr]
        assert new_key != key_a
        fresh, code = _connect(dev, "a", new_key)
        fresh.close()
        assert code == 0
