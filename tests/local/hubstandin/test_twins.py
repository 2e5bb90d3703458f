"""Twins and registry rules of the stand-in's backend (pure, in memory): $metadata and versions, nested edge
scopes, module identities left to the device side, device/module configurations, bulk operations."""

from __future__ import annotations

import pytest

from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.bulk import run_bulk
from edgegen.local.hubstandin.errors import InvalidArgument, NotFound
from edgegen.local.hubstandin.store import MemoryHubStore
from edgegen.local.hubstandin.twins import NEVER, touch_meta


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def hub() -> tuple[HubBackend, Clock]:
    clock = Clock()
    return HubBackend(MemoryHubStore(), "hub.local", clock=clock), clock


def test_metadata_follows_every_patch(hub) -> None:
    backend, clock = hub
    backend.put_device("d", {})
    fresh = backend.get_twin("d")["properties"]
    assert fresh["desired"] == {"$metadata": {"$lastUpdated": NEVER}, "$version": 1}
    assert fresh["reported"] == {"$metadata": {"$lastUpdated": NEVER}, "$version": 1}
    backend.update_twin("d", None, {"properties": {"desired": {"a": {"x": 1, "y": 2}, "b": 1}}})
    t1 = backend.get_twin("d")["properties"]["desired"]["$metadata"]["$lastUpdated"]
    clock.t += 60
    twin = backend.update_twin("d", None, {"properties": {"desired": {"a": {"y": 3}, "b": None}}})
    desired = twin["properties"]["desired"]
    meta = desired["$metadata"]
    assert desired["$version"] == 3 and twin["version"] == 3 and twin["etag"] == "AAAAAAAAAAM="
    assert meta["$lastUpdatedVersion"] == 3 and meta["$lastUpdated"] != t1
    assert meta["a"]["x"] == {"$lastUpdated": t1, "$lastUpdatedVersion": 2}  # untouched leaf keeps its time
    assert meta["a"]["y"]["$lastUpdatedVersion"] == 3 and meta["a"]["$lastUpdatedVersion"] == 3
    assert "b" not in meta and "b" not in desired  # removed with null
    version = backend.update_reported("d", None, {"fw": {"v": "1.0"}, "$version": 99})  # $-keys are not data
    reported = backend.get_twin("d")["properties"]["reported"]
    assert version == 2 and reported["fw"] == {"v": "1.0"} and reported["$version"] == 2
    assert "$lastUpdatedVersion" not in reported["$metadata"]["fw"]  # reported metadata has times only
    assert backend.device_twin_view("d", None) == {"desired": {"a": {"x": 1, "y": 3}, "$version": 3},
                                                   "reported": {"fw": {"v": "1.0"}, "$version": 2}}


def test_touch_meta_replaces_a_leaf_that_became_an_object() -> None:
    meta = {"$lastUpdated": "t0", "k": {"$lastUpdated": "t0"}}
    out = touch_meta(meta, {"k": {"z": 1}}, {"k": {"z": 1}}, "t1", None)
    assert out == {"$lastUpdated": "t1", "k": {"$lastUpdated": "t1", "z": {"$lastUpdated": "t1"}}}


def test_nested_edge_scopes(hub) -> None:
    backend, _ = hub
    gw = backend.put_device("gw", {"capabilities": {"iotEdge": True}})
    scope = gw["deviceScope"]
    assert scope.startswith("ms-azure-iot-edge://gw-") and gw["parentScopes"] == []
    leaf = backend.put_device("leaf", {"deviceScope": scope})
    assert leaf["deviceScope"] == scope and leaf["parentScopes"] == [scope]
    child = backend.put_device("child", {"capabilities": {"iotEdge": True}, "parentScopes": [scope]})
    assert child["parentScopes"] == [scope] and child["deviceScope"] != scope
    with pytest.raises(InvalidArgument, match="not the deviceScope of any edge device"):
        backend.put_device("x", {"deviceScope": "ms-azure-iot-edge://nobody-1"})
    with pytest.raises(InvalidArgument, match="its own parent"):
        backend.put_device("gw", {"capabilities": {"iotEdge": True}, "parentScopes": [scope]}, "*")
    with pytest.raises(InvalidArgument, match="close a loop"):
        backend.put_device("gw", {"capabilities": {"iotEdge": True}, "parentScopes": [child["deviceScope"]]}, "*")
    with pytest.raises(InvalidArgument, match="made by the hub"):
        backend.put_device("gw", {"capabilities": {"iotEdge": True}, "deviceScope": "ms-azure-iot-edge://z-9"}, "*")
    assert backend.put_device("leaf", {"deviceScope": ""}, "*")["parentScopes"] == []  # az: children remove
    backend.put_device("leaf", {"deviceScope": scope}, "*")
    rows = backend.query(f"SELECT deviceId FROM devices WHERE array_contains(parentScopes, '{scope}')").items
    assert rows == [{"deviceId": "child"}, {"deviceId": "leaf"}]
    backend.delete_device("gw")  # children lose their parent
    assert backend.get_device("leaf")["deviceScope"] is None and backend.get_device("child")["parentScopes"] == []
    with pytest.raises(InvalidArgument, match="at most 5 layers"):
        parent = None
        for i in range(6):
            body = {"capabilities": {"iotEdge": True}, "parentScopes": [parent] if parent else []}
            parent = backend.put_device(f"layer{i}", body)["deviceScope"]


def test_module_identities_are_the_devices_and_get_the_deployment_at_once(hub) -> None:
    backend, _ = hub
    backend.put_device("e", {"capabilities": {"iotEdge": True}})
    agent = {"modules": {"m": {"type": "docker", "settings": {"image": "m:1"}}}}
    backend.apply_configuration("e", {"modulesContent": {"$edgeAgent": {"properties.desired": agent},
                                                         "m": {"properties.desired": {"k": 1}}}})
    assert [m["moduleId"] for m in backend.list_modules("e")] == ["$edgeAgent", "$edgeHub"]
    backend.put_module("e", "m", {"managedBy": "iotEdge"})
    desired = backend.get_twin("e", "m")["properties"]["desired"]
    assert desired["k"] == 1 and desired["$version"] == 2


def test_device_and_module_configurations(hub) -> None:
    backend, _ = hub
    for name, floor in (("a", 1), ("b", 2)):
        backend.put_device(name, {})
        backend.update_twin(name, None, {"tags": {"floor": floor}})
    backend.put_configuration("low", {"content": {"deviceContent": {"properties.desired.cfg": {"v": 1}}},
                                      "targetCondition": "tags.floor >= 1", "priority": 1})
    backend.put_configuration("high", {"content": {"deviceContent": {"properties.desired.cfg.v": 2}},
                                       "targetCondition": "tags.floor = 2", "priority": 5})
    assert backend.get_twin("a")["properties"]["desired"]["cfg"] == {"v": 1}
    assert backend.get_twin("b")["properties"]["desired"]["cfg"] == {"v": 2}
    assert backend.get_twin("b")["configurations"] == {"low": {"status": "Targeted"}, "high": {"status": "Applied"}}
    view = backend.configuration_view(backend.get_configuration("low"))
    assert view["systemMetrics"]["results"] == {"targetedCount": 2, "appliedCount": 1}
    backend.put_module("a", "m", {})
    backend.update_twin("a", "m", {"tags": {"building": 9}})
    with pytest.raises(InvalidArgument, match="must look at devices.modules"):
        backend.put_configuration("mod", {"content": {"moduleContent": {"properties.desired.x": 1}},
                                          "targetCondition": "tags.building = 9"})
    backend.put_configuration("mod", {"content": {"moduleContent": {"properties.desired.x": 1}},
                                      "targetCondition": "FROM devices.modules WHERE tags.building = 9"})
    assert backend.get_twin("a", "m")["properties"]["desired"]["x"] == 1
    assert backend.get_twin("a", "m")["configurations"] == {"mod": {"status": "Applied"}}
    backend.delete_configuration("mod")
    assert "configurations" not in backend.get_twin("a", "m")
    assert backend.get_twin("a", "m")["properties"]["desired"]["x"] == 1  # IoT Hub does not take content back
    with pytest.raises(InvalidArgument, match="exactly one"):
        backend.put_configuration("two", {"content": {"deviceContent": {"properties.desired.a": 1},
                                                      "moduleContent": {"properties.desired.a": 1}}})
    with pytest.raises(InvalidArgument, match="has key"):
        backend.put_configuration("bad", {"content": {"deviceContent": {"tags.x": 1}}})


def test_bulk_registry_operations(hub) -> None:
    backend, _ = hub
    status = {NotFound: 404}.get
    ok = run_bulk(backend, [{"id": "x", "importMode": "create"}, {"id": "y", "importMode": "Create",
                                                                   "capabilities": {"iotEdge": True}}], lambda e: 400)
    assert ok == {"isSuccessful": True, "errors": [], "warnings": []}
    assert backend.get_device("y")["capabilities"]["iotEdge"]
    etag = backend.get_device("x")["etag"]
    bad = run_bulk(backend, [{"id": "x", "importMode": "create"}, {"id": "x", "importMode": "updateIfMatchETag",
                                                                   "eTag": etag, "status": "disabled"},
                             {"id": "nope", "importMode": "delete"}], lambda e: status(type(e), 400))
    assert [e["errorCode"] for e in bad["errors"]] == ["DeviceAlreadyExists", "DeviceNotFound"]
    assert bad["errors"][1]["httpStatus"] == 404 and not bad["isSuccessful"]
    assert backend.get_device("x")["status"] == "disabled"
    with pytest.raises(InvalidArgument, match="1 to 100"):
        run_bulk(backend, [{"id": str(i), "importMode": "create"} for i in range(101)], lambda e: 400)
