"""The stand-in's REST API driven by the Node.js service SDK (azure-iothub 1.16.6) with the printed connection
string: Registry CRUD, bulk, twins, query pages, modules, configurations, statistics and errors, on port 443
(the Node SDK takes HostName as a host name). The same queries through the Python SDK give the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import QuerySpecification

from tests.support.net import free_loopback_address
from tests.support.peers import run_node, skip_reason_node

pytestmark = [pytest.mark.integration, pytest.mark.skipif(skip_reason_node() is not None,
                                                          reason=skip_reason_node() or "")]

NODE = Path(__file__).parent / "node"
DATA = Path(__file__).parent / "data"


@pytest.fixture
def hub443(hub_factory, tmp_path, monkeypatch):
    address = free_loopback_address(443)
    running, _ = hub_factory(state_dir=tmp_path / "hub", address=address, port=443)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", running.info.ca_file)
    return running


def test_node_registry_against_the_stand_in(hub443) -> None:
    cs = hub443.info.connection_string
    assert cs.startswith(f"HostName={hub443.info.address};")  # no port: usable as it is
    modules_content = json.loads((DATA / "deployment.json").read_text())["modulesContent"]
    out = run_node(NODE / "registry.js", {"IOTHUB_CONNECTION_STRING": cs, "NODE_EXTRA_CA_CERTS": hub443.info.ca_file,
                                          "MODULES_CONTENT": json.dumps(modules_content)})
    edge_scope = out["created"]["scope"]
    assert out["created"] == {"deviceId": "node-edge", "edge": True, "scope": edge_scope, "hasKey": True}
    assert edge_scope.startswith("ms-azure-iot-edge://node-edge-")
    assert out["leaf"] == {"deviceScope": edge_scope, "parentScopes": [edge_scope]}
    assert (out["duplicate"]["name"], out["duplicate"]["status"]) == ("DeviceAlreadyExistsError", 409)
    assert (out["missing"]["name"], out["missing"]["status"]) == ("DeviceNotFoundError", 404)
    assert out["list"] == ["node-edge", "node-leaf"]  # GET /devices/ (with the slash)
    assert out["updated"] == {"status": "disabled", "etagChanged": True}
    assert out["bulk"]["isSuccessful"] and out["bulkRemove"]["isSuccessful"]
    assert out["bulkConflict"]["status"] == 400 and "DeviceAlreadyExists" in out["bulkConflict"]["message"]
    assert out["twin"]["hasMetadata"] and out["twin"]["desiredVersion"] == 1
    assert out["patched"] == {"tags": {"site": "north"}, "x": 1, "lastUpdatedVersion": 2}
    assert (out["staleEtag"]["name"], out["staleEtag"]["status"]) == ("InvalidEtagError", 412)
    assert out["queryPages"] == [["node-q0", "node-q1"], ["node-q2", "node-q3"], ["node-q4"]]  # continuation
    assert out["queryTwin"] == {"deviceId": "node-edge", "tags": {"site": "north"}}
    assert out["count"] == [{"n": 7}]
    assert out["badQuery"]["status"] == 400 and "unexpected 'FROM'" in out["badQuery"]["message"]
    assert out["module"] == "mod1" and out["modules"] == ["$edgeAgent", "$edgeHub", "mod1"]
    assert out["moduleTwin"] == {"moduleId": "mod1", "reportedVersion": 1}
    assert out["removedModule"]["status"] == 404
    assert out["agentModules"] == sorted(modules_content["$edgeAgent"]["properties.desired"]["modules"])
    assert out["configuration"] == {"id": "node-cfg", "systemMetrics": {"targetedCount": 1, "appliedCount": 1},
                                    "metrics": {"five": 1}}
    assert out["configurations"] == [["node-cfg", 7]] and out["interval"] == 5
    assert out["removedConfiguration"]["status"] == 404
    assert out["statistics"] == {"totalDeviceCount": 7, "enabledDeviceCount": 6, "disabledDeviceCount": 1}
    assert (out["deleted"]["name"], out["deleted"]["status"]) == ("DeviceNotFoundError", 404)

    # the same query, paged the same way, through the Python SDK
    rm = IoTHubRegistryManager.from_connection_string(cs)
    spec = QuerySpecification(query="SELECT deviceId FROM devices WHERE startswith(deviceId, 'node-q')")
    pages, token = [], None
    while True:
        result = rm.query_iot_hub(spec, token, 2)
        pages.append([item.device_id for item in result.items])
        token = result.continuation_token
        if not token:
            break
    assert pages == out["queryPages"]
