"""Module identities managed with the edge device's own key: device-scoped REST tokens against a real stand-in,
the key cache, and EdgeLink connecting modules with their own keys over MQTT."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
import requests

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.hub.client import HubClient
from edgegen.hub.connection import resolve_hub
from edgegen.hub.errors import HubClientError
from edgegen.hublink.edgelink import EdgeLink
from edgegen.hublink.moduleidentity import CACHE_FILE, ModuleIdentities, device_scope_token

pytestmark = pytest.mark.integration


@pytest.fixture
def edge_hub(hub_factory, tmp_path, monkeypatch):
    running, _ = hub_factory(state_dir=tmp_path / "state", mqtt=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    client = HubClient(resolve_hub(None, state_dir=tmp_path / "state", environ={}))
    edge1 = client.create_device("edge1", edge=True)
    edge2 = client.create_device("edge2", edge=True)
    leaf = client.create_device("leaf1")
    return running, edge1, edge2, leaf


def _module(running, device: str, module: str) -> dict:
    return running.call(running.standin.backend.get_module, device, module)


def _call(running, method: str, path: str, token: str, body: dict | None = None,
          if_match: str | None = None) -> requests.Response:
    headers = {"Authorization": token, "Content-Type": "application/json"}
    if if_match:
        headers["If-Match"] = if_match
    return requests.request(method, f"https://{running.info.host_name}{path}?api-version=2021-04-12",
                            headers=headers, data=json.dumps(body) if body is not None else None,
                            verify=running.info.ca_file, timeout=10)


def test_device_scoped_rest_for_own_device_only(edge_hub) -> None:
    running, edge1, _, leaf = edge_hub
    address = running.info.address
    token = device_scope_token(address, "edge1", edge1.primary_key)
    body = {"deviceId": "edge1", "moduleId": "newmod", "managedBy": "iotEdge", "authentication": {"type": "sas"}}

    created = _call(running, "PUT", "/devices/edge1/modules/newmod", token, body)
    assert created.status_code == 201, created.text
    keys = created.json()["authentication"]["symmetricKey"]
    assert keys["primaryKey"] and keys["secondaryKey"]
    assert _module(running, "edge1", "newmod")["authentication"]["symmetricKey"] == keys

    got = _call(running, "GET", "/devices/edge1/modules/newmod", token)
    assert got.status_code == 200 and got.json()["authentication"]["symmetricKey"] == keys
    listed = _call(running, "GET", "/devices/edge1/modules", token)
    assert listed.status_code == 200
    assert {m["moduleId"] for m in listed.json()} == {"$edgeAgent", "$edgeHub", "newmod"}
    # an update of an existing identity keeps its keys, as IoT Hub does
    again = _call(running, "PUT", "/devices/edge1/modules/newmod", token, body, if_match="*")
    assert again.status_code == 200 and again.json()["authentication"]["symmetricKey"] == keys
    # the REST host name (with its port) is accepted as the token's host too
    rest_token = device_scope_token(running.info.host_name, "edge1", edge1.primary_key)
    assert _call(running, "GET", "/devices/edge1/modules/newmod", rest_token).status_code == 200

    # another device's modules: with this device's token, or this device's key over that device's resource
    assert _call(running, "GET", "/devices/edge2/modules", token).status_code == 401
    assert _call(running, "GET", "/devices/edge2/modules/$edgeAgent", token).status_code == 401
    forged = generate_sas_token(f"{address}/devices/edge2", edge1.primary_key)
    assert _call(running, "PUT", "/devices/edge2/modules/x", forged, {**body, "deviceId": "edge2"}).status_code == 401
    # bad key, expired, a non-edge device, and calls outside module management
    bad = generate_sas_token(f"{address}/devices/edge1", generate_key())
    assert _call(running, "GET", "/devices/edge1/modules", bad).status_code == 401
    expired = generate_sas_token(f"{address}/devices/edge1", edge1.primary_key, ttl=-5)
    assert _call(running, "GET", "/devices/edge1/modules", expired).status_code == 401
    assert _call(running, "GET", "/devices/leaf1/modules",
                 device_scope_token(address, "leaf1", leaf.primary_key)).status_code == 401
    assert _call(running, "GET", "/devices/edge1", token).status_code == 401
    assert _call(running, "POST", "/devices/edge1/applyConfigurationContent", token, {}).status_code == 401
    # service policy tokens keep working on the same routes
    policy = running.standin.backend.policies["iothubowner"]["primaryKey"]
    service = generate_sas_token(running.info.host_name, policy, key_name="iothubowner")
    assert _call(running, "GET", "/devices/edge2/modules", service).status_code == 200
    # a module gone from the deployment: edgeAgent removes its identity, on its own device only
    assert _call(running, "DELETE", "/devices/edge2/modules/$edgeHub", token).status_code == 401
    assert _call(running, "DELETE", "/devices/edge1/modules/newmod", token).status_code == 204
    assert _call(running, "GET", "/devices/edge1/modules/newmod", token).status_code == 404


def test_module_identities_create_fetch_and_cache(edge_hub, tmp_path) -> None:
    running, edge1, edge2, _ = edge_hub
    ids = ModuleIdentities(running.info.address, "edge1", edge1.primary_key, rest_host=running.info.host_name,
                           ca_file=running.info.ca_file, cache_dir=tmp_path / "device")
    agent = ids.key("$edgeAgent")  # exists (created with the edge device): read
    assert agent == _module(running, "edge1", "$edgeAgent")["authentication"]["symmetricKey"]["primaryKey"]
    fresh = ids.key("camera")  # missing: created with hub-generated keys
    module = _module(running, "edge1", "camera")
    assert module["managedBy"] == "iotEdge" and module["authentication"]["symmetricKey"]["primaryKey"] == fresh
    cache = tmp_path / "device" / CACHE_FILE
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert json.loads(cache.read_text()) == {"hostName": running.info.address, "deviceId": "edge1",
                                             "modules": {"$edgeAgent": agent, "camera": fresh}}
    reread = ModuleIdentities(running.info.address, "edge1", edge1.primary_key, rest_host="127.0.0.1:9",
                              ca_file=running.info.ca_file, cache_dir=tmp_path / "device")
    assert reread.key("camera") == fresh  # from the cache: the (unreachable) REST host is not asked
    with pytest.raises(HubClientError, match="cannot reach"):
        reread.key("camera", refresh=True)
    # a cache of another device is not used
    other = ModuleIdentities(running.info.address, "edge2", edge2.primary_key, rest_host=running.info.host_name,
                             ca_file=running.info.ca_file, cache_dir=tmp_path / "device")
    assert other.cached("camera") is None
    wrong = ModuleIdentities(running.info.address, "edge1", generate_key(), rest_host=running.info.host_name,
                             ca_file=running.info.ca_file)
    with pytest.raises(HubClientError) as info:
        wrong.key("other")
    assert info.value.status == 401


def test_edgelink_connects_modules_with_their_own_keys(edge_hub, tmp_path) -> None:
    running, edge1, _, _ = edge_hub
    state = tmp_path / "device"
    state.mkdir()
    # a stale cached key (the identity was re-created meanwhile): refused by the hub, fetched again
    (state / CACHE_FILE).write_text(json.dumps({"hostName": running.info.address, "deviceId": "edge1",
                                                "modules": {"$edgeHub": generate_key()}}))

    async def main() -> list[str]:
        link = EdgeLink(edge1.connection_string, running.info.ca_file, state_dir=state,
                        rest_host=running.info.host_name)
        async with link:
            await link._client("sensor")
            return sorted(m for m, c in link.clients.items() if c.connected)

    assert asyncio.run(main()) == ["$edgeAgent", "$edgeHub", "sensor"]
    cached = json.loads((state / CACHE_FILE).read_text())["modules"]
    for module in ("$edgeAgent", "$edgeHub", "sensor"):
        assert cached[module] == _module(running, "edge1", module)["authentication"]["symmetricKey"]["primaryKey"]


def test_edgelink_makes_identities_for_the_deployment_and_removes_those_that_left(edge_hub, tmp_path) -> None:
    """edgeAgent's part: the hub makes no module identity for a deployment; the link makes them (and their twins
    get the deployment's desired properties at once), and removes the identities of modules that left."""
    running, edge1, _, _ = edge_hub
    backend = running.standin.backend
    agent = {"schemaVersion": "1.1", "modules": {name: {"type": "docker", "status": "running",
                                                        "settings": {"image": f"{name}:1"}} for name in ("a", "b")}}
    content = {"$edgeAgent": {"properties.desired": agent},
               "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}},
               "a": {"properties.desired": {"n": 1}}, "b": {"properties.desired": {"n": 2}}}
    running.call(backend.apply_configuration, "edge1", {"modulesContent": content})
    assert sorted(m["moduleId"] for m in running.call(backend.list_modules, "edge1")) == ["$edgeAgent", "$edgeHub"]
    running.call(backend.put_module, "edge1", "by-hand", {})  # not the runtime's (no managedBy): kept

    async def main() -> tuple[dict, list[str]]:
        link = EdgeLink(edge1.connection_string, running.info.ca_file, state_dir=tmp_path / "device",
                        rest_host=running.info.host_name)
        async with link:
            seen = await link.read_modules_content()
            await link.report({"a": {"runtimeStatus": "running"}, "b": {"runtimeStatus": "running"}})
            only_a = {**agent, "modules": {"a": agent["modules"]["a"]}}
            smaller = {k: v for k, v in content.items() if k != "b"} | {"$edgeAgent": {"properties.desired": only_a}}
            running.call(backend.apply_configuration, "edge1", {"modulesContent": smaller})
            await link.prune_identities(smaller)
            return seen, sorted(link.clients)

    seen, clients = asyncio.run(main())
    for module in ("$edgeAgent", "$edgeHub"):  # reported as edgeAgent and edgeHub report
        props = running.call(backend.get_twin, "edge1", module)["properties"]
        assert props["reported"]["lastDesiredStatus"]["code"] == 200, module
        assert props["reported"]["lastDesiredVersion"] == 2, module  # the version read (before the smaller one)
        assert "lastDesiredVersion" in props["reported"]["$metadata"]
    assert seen["a"] == {"properties.desired": {"n": 1}} and seen["b"] == {"properties.desired": {"n": 2}}
    assert clients == ["$edgeAgent", "$edgeHub", "a"]
    left = sorted(m["moduleId"] for m in running.call(backend.list_modules, "edge1"))
    assert left == ["$edgeAgent", "$edgeHub", "a", "by-hand"]
    assert json.loads((tmp_path / "device" / CACHE_FILE).read_text())["modules"].keys() == {
        "$edgeAgent", "$edgeHub", "a"}
