"""At-scale deployment rules (pure): base selection by priority, layered merge, twin patches."""

from __future__ import annotations

import pytest

from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.deployments import (
    Configuration,
    diff_patch,
    effective_desired,
    is_layered,
    merge_patch,
    select_configurations,
)
from edgegen.local.hubstandin.errors import InvalidArgument
from edgegen.local.hubstandin.store import MemoryHubStore

BASE = {"$edgeAgent": {"properties.desired": {"modules": {"a": {"v": 1}}}},
        "$edgeHub": {"properties.desired": {"routes": {"r": "FROM /* INTO $upstream"}}}}


def cfg(cid: str, content: dict, priority: int, seq: int, condition: str = "*") -> Configuration:
    return Configuration(cid, {"modulesContent": content}, condition, priority, sequence=seq)


def test_base_priority_and_layers_in_order() -> None:
    low, high = cfg("low", BASE, 1, 1), cfg("high", BASE, 5, 2)
    tie = cfg("tie", BASE, 5, 3)  # same priority, created later: wins
    layer_a = cfg("la", {"$edgeAgent": {"properties.desired.modules.b": {"v": 1}}}, 9, 4)
    layer_b = cfg("lb", {"$edgeAgent": {"properties.desired.modules.b": {"v": 2}}}, 2, 5)
    elsewhere = cfg("x", BASE, 99, 6, "tags.env='dev'")
    base, layered = select_configurations({"tags": {}}, [low, high, tie, layer_a, layer_b, elsewhere])
    assert base is tie and [c.id for c in layered] == ["lb", "la"]
    desired = effective_desired(base.modules_content, [c.modules_content for c in layered])
    assert desired["$edgeAgent"]["modules"] == {"a": {"v": 1}, "b": {"v": 1}}  # the higher layer wins
    assert is_layered(layer_a.modules_content) and not is_layered(BASE)


def test_merge_and_diff_patches() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "gone": True}
    new = {"a": 1, "b": {"c": 5, "d": 3}, "e": [1]}
    patch = diff_patch(old, new)
    assert patch == {"gone": None, "b": {"c": 5}, "e": [1]}
    assert merge_patch(old, patch) == new


def test_bad_content_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        effective_desired({"$edgeAgent": {"desired": {}}}, [])


def test_backend_events_and_metrics_without_a_server() -> None:
    backend = HubBackend(MemoryHubStore(), "hub.local", clock=lambda: 1_700_000_000.0)
    pushed: list[tuple] = []
    backend.desired_listeners.append(lambda d, m, patch, v: pushed.append((d, m, patch, v)))
    backend.put_device("e1", {"capabilities": {"iotEdge": True}})
    backend.update_twin("e1", None, {"tags": {"env": "prod"}})
    backend.put_configuration("base", {"content": {"modulesContent": BASE}, "targetCondition": "tags.env='prod'",
                                       "priority": 1})
    assert ("e1", "$edgeAgent", {"modules": {"a": {"v": 1}}}, 2) in pushed
    assert backend.get_twin("e1")["configurations"] == {"base": {"status": "Applied"}}
    backend.update_reported("e1", "$edgeAgent", {"lastDesiredVersion": 2, "lastDesiredStatus": {"code": 200}})
    view = backend.configuration_view(backend.get_configuration("base"))
    assert view["systemMetrics"]["results"] == {"targetedCount": 1, "appliedCount": 1,
                                                "reportedSuccessfulCount": 1, "reportedFailedCount": 0}
    assert backend.get_twin("e1")["properties"]["desired"]["$version"] == 1
    assert "e1/a" not in backend.modules  # module identities are the device's to make (edgeAgent's job)


def test_reported_properties_retarget_a_device() -> None:
    backend = HubBackend(MemoryHubStore(), "hub.local")
    backend.put_device("e1", {"capabilities": {"iotEdge": True}})
    backend.put_configuration("new-fw", {"content": {"modulesContent": BASE},
                                         "targetCondition": "properties.reported.fw = '2.0'", "priority": 1})
    assert "configurations" not in backend.get_twin("e1")  # like IoT Hub: only once targeted
    backend.update_reported("e1", None, {"fw": "2.0"})
    assert backend.get_twin("e1")["configurations"] == {"new-fw": {"status": "Applied"}}
