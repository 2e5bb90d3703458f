"""The Azure CLI (2.77.0 + azure-iot 0.25.0) against the stand-in, as a user runs it with ``--login <connection
string>``: identities, nested edge (children/parent), twins, queries (continuation), set-modules and
export-modules with identities made by the device side, deployments and their system metrics, edge devices
create, automatic device management configurations, errors — and a device connection string printed by az
connecting with the Python device SDK. The hub serves on 443, so every printed connection string is usable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from edgegen.common.sas import generate_sas_token
from edgegen.hublink.moduleidentity import ModuleIdentities
from tests.support.net import free_loopback_address
from tests.support.peers import Az, az_env, ca_bundle, skip_reason_az

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(skip_reason_az() is not None, reason=skip_reason_az() or "")]

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def az_config(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("azure")  # one for the module: az keeps its command index there


@pytest.fixture
def az(hub_factory, tmp_path, monkeypatch, az_config):
    address = free_loopback_address(443, 8883)
    running, _ = hub_factory(state_dir=tmp_path / "hub", address=address, port=443, mqtt=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    env = az_env(az_config, ca_bundle(running.info.ca_file, tmp_path))
    return running, Az(running.info.connection_string, env, tmp_path)


def _bulk_create(running, ids: list[str]) -> None:
    info = running.info
    key = running.standin.backend.policies["iothubowner"]["primaryKey"]
    token = generate_sas_token(info.host_name, key, key_name="iothubowner", quote_resource_plus=True)
    resp = requests.post(f"https://{info.host_name}/devices?api-version=2021-04-12", timeout=30,
                         headers={"Authorization": token}, json=[{"id": i, "importMode": "create"} for i in ids])
    assert resp.status_code == 200 and resp.json()["isSuccessful"], resp.text


def test_identities_nested_edge_queries_and_errors(az) -> None:
    running, run = az
    edge1 = run("iot", "hub", "device-identity", "create", "-d", "edge1", "--ee")
    scope = edge1["deviceScope"]
    assert edge1["capabilities"]["iotEdge"] and scope.startswith("ms-azure-iot-edge://edge1-")
    assert edge1["parentScopes"] == []
    assert run("iot", "hub", "device-identity", "create", "-d", "leaf1")["deviceScope"] is None
    edge2 = run("iot", "hub", "device-identity", "create", "-d", "edge2", "--ee", "--device-scope", scope)
    assert edge2["parentScopes"] == [scope] and edge2["deviceScope"] != scope  # a child edge device
    run("iot", "hub", "device-identity", "children", "add", "-d", "edge1", "--child-list", "leaf1")
    assert sorted(run("iot", "hub", "device-identity", "children", "list", "-d", "edge1")) == ["edge2", "leaf1"]
    assert run("iot", "hub", "device-identity", "parent", "show", "-d", "leaf1")["deviceId"] == "edge1"
    err = run("iot", "hub", "device-identity", "parent", "set", "-d", "leaf1", "--pd", "edge2", ok=False)
    assert "already has a parent device" in err
    run("iot", "hub", "device-identity", "parent", "set", "-d", "leaf1", "--pd", "edge2", "--force")
    run("iot", "hub", "device-identity", "children", "remove", "-d", "edge2", "--remove-all")
    assert run("iot", "hub", "device-identity", "children", "list", "-d", "edge2") == []
    err = run("iot", "hub", "device-identity", "parent", "show", "-d", "leaf1", ok=False)
    assert "doesn't have any parent device" in err

    run("iot", "hub", "device-twin", "update", "-d", "edge1", "--tags", '{"env": "prod", "floor": 3}')
    for start in (0, 100):  # more than one page (100) for the queries; a bulk call takes at most 100
        _bulk_create(running, [f"bulk-{i:03}" for i in range(start, min(start + 100, 105))])
    rows = run("iot", "hub", "query", "-q", "select deviceId, tags.env as env from devices")
    assert len(rows) == 108 and {"deviceId": "edge1", "env": "prod"} in rows  # followed x-ms-continuation
    groups = run("iot", "hub", "query", "-q",
                 "SELECT capabilities.iotEdge AS edge, COUNT() AS n FROM devices GROUP BY capabilities.iotEdge")
    assert sorted(groups, key=lambda g: g["edge"]) == [{"edge": False, "n": 106}, {"edge": True, "n": 2}]
    assert len(run("iot", "hub", "query", "-q", "select * from devices", "--top", "5")) == 5
    assert [d["deviceId"] for d in run("iot", "hub", "device-identity", "list", "--ee")] == ["edge1", "edge2"]
    twins = run("iot", "hub", "query", "-q", "select * from devices.modules where devices.deviceId = 'edge1'")
    assert sorted(t["moduleId"] for t in twins) == ["$edgeAgent", "$edgeHub"]

    err = run("iot", "hub", "device-identity", "show", "-d", "nobody", ok=False)
    assert "ErrorCode:DeviceNotFound" in err
    err = run("iot", "hub", "query", "-q", "select * from devices where tags.x = = 1", ok=False)
    assert "ErrorCode:ArgumentInvalid" in err and "'==' is not an operator" in err


def test_modules_deployments_metrics_and_configurations(az) -> None:
    running, run = az
    edge1 = run("iot", "hub", "device-identity", "create", "-d", "edge1", "--ee")
    run("iot", "hub", "device-twin", "update", "-d", "edge1", "--tags", '{"env": "prod"}')
    deployment = json.loads((DATA / "deployment.json").read_text())
    modules = run("iot", "edge", "set-modules", "-d", "edge1", "-k", str(DATA / "deployment.json"))
    assert sorted(m["moduleId"] for m in modules) == ["$edgeAgent", "$edgeHub"]  # the hub makes none
    # the device side (edgeAgent) makes the identity of each module, with the device's own key
    ids = ModuleIdentities(running.info.host_name, "edge1", edge1["authentication"]["symmetricKey"]["primaryKey"],
                           ca_file=running.info.ca_file)
    for module_id in deployment["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]:
        ids.key(module_id)
    exported = run("iot", "edge", "export-modules", "-d", "edge1")["content"]["modulesContent"]
    assert exported == deployment["modulesContent"]  # what was set comes back, $metadata and $version removed
    twin = run("iot", "hub", "module-twin", "show", "-d", "edge1", "-m", "sensor")
    desired = twin["properties"]["desired"]
    assert desired["$metadata"]["$lastUpdatedVersion"] == desired["$version"] == 2
    assert set(desired["$metadata"]) >= {"$lastUpdated", *(k for k in desired if not k.startswith("$"))}

    created = run("iot", "edge", "deployment", "create", "-d", "dep1", "-k", str(DATA / "deployment.json"),
                  "-t", "tags.env='prod'", "--pri", "5")
    queries = created["systemMetrics"]["queries"]
    assert queries["targetedCount"] == "select deviceId from devices where capabilities.iotEdge = true and " \
                                       "(tags.env='prod')"
    assert queries["appliedCount"] == ("select deviceId from devices.modules where moduleId = '$edgeAgent' and "
                                       "configurations.[[dep1]].status = 'Applied'")
    agent = running.call(running.standin.backend.get_twin, "edge1", "$edgeAgent")
    running.call(running.standin.backend.update_reported, "edge1", "$edgeAgent",  # as edgeAgent reports
                 {"lastDesiredVersion": agent["properties"]["desired"]["$version"],
                  "lastDesiredStatus": {"code": 200, "description": ""}})
    metric = run("iot", "edge", "deployment", "show-metric", "-d", "dep1", "-m", "reportedSuccessfulCount",
                 "--mt", "system")
    assert metric["result"] == [{"deviceId": "edge1"}] and metric["query"] == queries["reportedSuccessfulCount"]
    shown = run("iot", "edge", "deployment", "show", "-d", "dep1")
    assert shown["systemMetrics"]["results"] == {"targetedCount": 1, "appliedCount": 1,
                                                 "reportedSuccessfulCount": 1, "reportedFailedCount": 0}

    run("iot", "edge", "devices", "create", "--device", "id=gw1", "--device", "id=child1", "parent=gw1", "-y")
    assert run("iot", "hub", "device-identity", "parent", "show", "-d", "child1")["deviceId"] == "gw1"

    cfg = run("iot", "hub", "configuration", "create", "-c", "adm1", "-k", str(DATA / "adm_device.json"),
              "-t", "tags.env='prod'", "--metrics", '{"queries": {"set": "select deviceId from devices where '
              'properties.desired.settings.interval = 10"}}')
    assert cfg["systemMetrics"]["results"] == {"targetedCount": 1, "appliedCount": 1}
    assert run("iot", "hub", "configuration", "show-metric", "-c", "adm1", "-m", "set")["result"] == [
        {"deviceId": "edge1"}]
    assert run("iot", "hub", "device-twin", "show", "-d", "edge1")["properties"]["desired"]["settings"] == {
        "interval": 10}
    assert [c["id"] for c in run("iot", "hub", "configuration", "list")] == ["adm1"]  # deployments are apart
    run("iot", "hub", "configuration", "delete", "-c", "adm1")
    err = run("iot", "hub", "configuration", "show", "-c", "adm1", ok=False)
    assert "ErrorCode:ConfigurationNotFound" in err


def test_connection_strings_printed_by_az_connect(az) -> None:
    from azure.iot.device import IoTHubDeviceClient, Message

    running, run = az
    run("iot", "hub", "device-identity", "create", "-d", "dev1")
    cs = run("iot", "hub", "device-identity", "connection-string", "show", "-d", "dev1")["connectionString"]
    assert cs.startswith(f"HostName={running.info.address};DeviceId=dev1;")
    client = IoTHubDeviceClient.create_from_connection_string(
        cs, server_verification_cert=Path(running.info.ca_file).read_text())
    try:
        client.connect()
        client.patch_twin_reported_properties({"from": "az"})
        client.send_message(Message("hello"))
    finally:
        client.shutdown()
    twin = run("iot", "hub", "device-twin", "show", "-d", "dev1")
    assert twin["properties"]["reported"]["from"] == "az"
    assert "from" in twin["properties"]["reported"]["$metadata"]




def test_invoke_device_method(az) -> None:
    """az sends its timeouts as strings ("30"), as IoT Hub's JSON reader takes them; the device's own status is the
    result. (The 404103/504101 bodies are checked with azure-iot-hub in test_edge_methods.py: az sets its HTTP read
    timeout to ``--timeout``, the very time the hub waits before it answers them, so az reports a read timeout.)"""
    from azure.iot.device import IoTHubDeviceClient, MethodResponse

    running, run = az
    run("iot", "hub", "device-identity", "create", "-d", "dev1")
    cs = run("iot", "hub", "device-identity", "connection-string", "show", "-d", "dev1")["connectionString"]
    client = IoTHubDeviceClient.create_from_connection_string(
        cs, server_verification_cert=Path(running.info.ca_file).read_text())

    def answer(request) -> None:
        status = 201 if request.name == "echo" else 501
        client.send_method_response(MethodResponse.create_from_method_request(
            request, status, {"name": request.name, "got": request.payload}))

    try:
        client.connect()
        client.on_method_request_received = answer
        assert run("iot", "hub", "invoke-device-method", "-d", "dev1", "--mn", "echo", "--mp", '{"n": [1, "x"]}') == {
            "status": 201, "payload": {"name": "echo", "got": {"n": [1, "x"]}}}
        assert run("iot", "hub", "invoke-device-method", "-d", "dev1", "--mn", "other", "--to", "300") == {
            "status": 501, "payload": {"name": "other", "got": {}}}
    finally:
        client.shutdown()
    err = run("iot", "hub", "invoke-device-method", "-d", "nobody", "--mn", "echo", ok=False)
    assert "ErrorCode:DeviceNotFound" in err
