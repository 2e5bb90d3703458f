"""RouteTable: each endpoint once at its best priority, the TTL that applies, manifest route shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.routing import (
    DEFAULT_PRIORITY,
    FALSE,
    TRUE,
    Delivery,
    Message,
    ModuleInputEndpoint,
    RouteError,
    RouteTable,
    UpstreamEndpoint,
)

SENSOR = {"connectionModuleId": "sensor", "outputName": "temperatureOutput"}


def test_best_priority_wins_and_each_endpoint_once() -> None:
    table = RouteTable.from_routes({
        "low": {"route": "FROM /messages/* INTO $upstream", "priority": 5, "timeToLiveSecs": 10},
        "high": {"route": "FROM /messages/modules/sensor/* INTO $upstream", "priority": 1, "timeToLiveSecs": 99},
        "plain": "FROM /messages/modules/sensor/outputs/temperatureOutput INTO $upstream",
        "toInf": "FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint(\"/modules/inference/inputs/in\")",
    })
    deliveries = table.match(Message({}, dict(SENSOR)))
    assert sorted(deliveries, key=lambda d: d.route_name) == [
        Delivery(UpstreamEndpoint(), 1, 99, "high"),
        Delivery(ModuleInputEndpoint("inference", "in"), DEFAULT_PRIORITY, None, "toInf"),
    ]


def test_conditions_and_sources_filter() -> None:
    table = RouteTable.from_routes({
        "hot": "FROM /messages/modules/sensor/* WHERE as_number(t) > 30 INTO $upstream",
        "leaf": "FROM /messages WHERE is_defined(t) INTO BrokeredEndpoint('/modules/m/inputs/i')",
    }, schema_version="1.0")
    assert [d.route_name for d in table.match(Message({"t": "31"}, dict(SENSOR)))] == ["hot", "leaf"]
    assert [d.route_name for d in table.match(Message({"t": "3"}, dict(SENSOR)))] == ["leaf"]
    assert table.match(Message({}, {})) == []  # device telemetry, no t
    assert [d.route_name for d in table.match(Message({"t": "1"}, {}))] == ["leaf"]
    results = {r.name: r for r in table.evaluate(Message({"t": "3"}, {}))}
    assert results["hot"].source_matches is False and results["hot"].result is None
    assert results["leaf"].result is TRUE
    assert table.routes["hot"].evaluate(Message({"t": "3"}, {})) is FALSE


def test_explicit_source_overrides_system_properties() -> None:
    table = RouteTable.from_routes({"r": "FROM /messages/modules/x/* INTO $upstream"})
    assert table.match(Message(), source="/messages/modules/X/outputs/o")  # case-insensitive prefix
    assert not table.match(Message(), source="/messages/modules/y")


def test_names_and_endpoints() -> None:
    table = RouteTable.from_routes({
        "a": "FROM /messages INTO $upstream",
        "b": "FROM /messages/modules/m INTO $upstream",
        "c": "FROM /messages INTO BrokeredEndpoint('/modules/m/inputs/i')",
    })
    assert table.route_names() == ["a", "b", "c"]
    assert table.endpoints() == [UpstreamEndpoint(), ModuleInputEndpoint("m", "i")]


@pytest.mark.parametrize(
    ("routes", "version", "needle", "path"),
    [
        ({"r": {"route": "FROM /messages INTO $upstream"}}, "1.0", "schemaVersion 1.0", "routes.r"),
        ({"r": {"route": "FROM /messages INTO $upstream", "priority": 10}}, "1.1", "0-9", "routes.r.priority"),
        ({"r": {"route": "FROM /messages INTO $upstream", "timeToLiveSecs": -1}}, "1.1", "non-negative",
         "routes.r.timeToLiveSecs"),
        ({"r": {"priority": 1}}, "1.1", 'no "route"', "routes.r"),
        ({"r": {"route": "FROM /messages INTO $upstream", "prio": 1}}, "1.1", "unknown keys", "routes.r"),
        ({"r": 5}, "1.1", "must be a string or an object", "routes.r"),
        ({"a.b": "FROM /messages INTO $upstream"}, "1.1", "may not contain", "routes.a.b"),
        ({"r": "FROM /messages WHERE t > 1 INTO $upstream"}, "1.1", "needs two values of the same type", "routes.r"),
    ],
)
def test_bad_routes_are_errors_with_a_path(routes: dict, version: str, needle: str, path: str) -> None:
    with pytest.raises(RouteError) as info:
        RouteTable.from_routes(routes, version)
    assert needle in info.value.message
    assert info.value.location is not None and info.value.location.json_path == path


def test_repo_solution_routes(repo_root: Path) -> None:
    manifest = json.loads((repo_root / "deployment.template.json").read_text())
    hub = manifest["modulesContent"]["$edgeHub"]["properties.desired"]
    table = RouteTable.from_routes(hub["routes"], hub["schemaVersion"])
    assert [d.endpoint for d in table.match(Message({}, dict(SENSOR)))] == [ModuleInputEndpoint("inference", "input1")]
    out = table.match(Message({}, {"connectionModuleId": "monitor", "outputName": "upstream"}))
    assert [d.endpoint for d in out] == [UpstreamEndpoint()]
