"""IoT Hub's query language (pure): projections, aliases, aggregates, GROUP BY, functions, TOP, paging, errors."""

from __future__ import annotations

import pytest

from edgegen.local.hubstandin.query import QueryError, Source, compile_query, compile_target, page_rows

DEVICES = [
    {"deviceId": "cam-1", "tags": {"site": "north", "floor": 1, "list": ["a", "b"]}, "status": "enabled",
     "capabilities": {"iotEdge": True}, "parentScopes": [],
     "properties": {"desired": {"$version": 3}, "reported": {"fw": "1.2.0", "temp": 20, "lastDesiredVersion": 3,
                                                             "lastDesiredStatus": {"code": 200}}},
     "configurations": {"base-1": {"status": "Applied"}}},
    {"deviceId": "cam-2", "tags": {"site": "north", "floor": 2}, "status": "enabled",
     "capabilities": {"iotEdge": True}, "parentScopes": ["ms-azure-iot-edge://cam-1-4"],
     "properties": {"desired": {"$version": 5}, "reported": {"fw": "1.3.0", "temp": 30.5}}},
    {"deviceId": "leaf-1", "tags": {"site": "south"}, "status": "disabled", "capabilities": {"iotEdge": False},
     "deviceScope": "ms-azure-iot-edge://cam-1-4", "parentScopes": ["ms-azure-iot-edge://cam-1-4"],
     "properties": {"desired": {"$version": 1}, "reported": {"temp": "hot"}}},
    {"deviceId": "bare", "status": "enabled", "capabilities": {"iotEdge": False}, "parentScopes": [],
     "properties": {"desired": {"$version": 1}, "reported": {}}},
]

CASES = [
    ("SELECT * FROM devices", ["cam-1", "cam-2", "leaf-1", "bare"]),
    ("select deviceId from devices", [{"deviceId": d["deviceId"]} for d in DEVICES]),
    ("SELECT deviceId, tags.site AS site FROM devices WHERE tags.floor >= 2",
     [{"deviceId": "cam-2", "site": "north"}]),
    ("SELECT deviceId, properties.reported.fw FROM devices WHERE is_defined(properties.reported.fw)",
     [{"deviceId": "cam-1", "fw": "1.2.0"}, {"deviceId": "cam-2", "fw": "1.3.0"}]),
    ("SELECT deviceId, tags.floor FROM devices WHERE deviceId IN ['cam-1', 'bare']",
     [{"deviceId": "cam-1", "floor": 1}, {"deviceId": "bare"}]),  # undefined values are left out of a row
    ("SELECT COUNT() AS numberOfDevices FROM devices", [{"numberOfDevices": 4}]),
    ("SELECT COUNT() FROM devices WHERE capabilities.iotEdge = true", [{"$1": 2}]),
    ("SELECT COUNT() AS n FROM devices WHERE deviceId = 'nobody'", [{"n": 0}]),
    ("SELECT tags.site AS site, COUNT() AS n FROM devices GROUP BY tags.site",
     [{"site": "north", "n": 2}, {"site": "south", "n": 1}, {"n": 1}]),
    ("SELECT status, COUNT() AS n, AVG(properties.reported.temp) AS t, MAX(tags.floor) AS top FROM devices "
     "GROUP BY status", [{"status": "enabled", "n": 3, "t": 25.25, "top": 2}, {"status": "disabled", "n": 1}]),
    ("SELECT SUM(tags.floor) AS s, MIN(tags.floor) AS lo FROM devices", [{"s": 3, "lo": 1}]),
    ("SELECT TOP 2 deviceId FROM devices", [{"deviceId": "cam-1"}, {"deviceId": "cam-2"}]),
    ("SELECT deviceId FROM devices WHERE array_contains(parentScopes, 'ms-azure-iot-edge://cam-1-4')",
     [{"deviceId": "cam-2"}, {"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE ARRAY_CONTAINS(tags.list, 'b') AND ARRAY_LENGTH(tags.list) = 2",
     [{"deviceId": "cam-1"}]),
    ("SELECT deviceId FROM devices WHERE STARTSWITH(deviceId, 'cam') AND ENDSWITH(properties.reported.fw, '.0')",
     [{"deviceId": "cam-1"}, {"deviceId": "cam-2"}]),
    ("SELECT deviceId FROM devices WHERE starts_with(deviceId, 'leaf') OR contains(deviceId, 'ar')",
     [{"deviceId": "leaf-1"}, {"deviceId": "bare"}]),
    ("SELECT deviceId FROM devices WHERE is_string(properties.reported.temp)", [{"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE is_number(properties.reported.temp) AND properties.reported.temp * 2 > 50",
     [{"deviceId": "cam-2"}]),
    ("SELECT deviceId FROM devices WHERE NOT is_defined(tags)", [{"deviceId": "bare"}]),
    ("SELECT deviceId FROM devices WHERE tags.site != 'north'", [{"deviceId": "leaf-1"}]),  # undefined: not selected
    ("SELECT deviceId FROM devices WHERE NOT (tags.site = 'north')", [{"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE tags.site NIN ['north']", [{"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE deviceScope = null", [{"deviceId": "bare"}] * 0),  # absent is not null
    ("SELECT deviceId FROM devices WHERE lower(upper(tags.site)) = 'south' AND length(tags.site) = 5",
     [{"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE concat(deviceId, '/', tags.site) = 'cam-2/north'", [{"deviceId": "cam-2"}]),
    ("SELECT deviceId FROM devices WHERE substring(deviceId, 0, 4) = 'leaf' AND index_of(deviceId, '-') = 4",
     [{"deviceId": "leaf-1"}]),
    ("SELECT deviceId FROM devices WHERE configurations.[[base-1]].status = 'Applied'", [{"deviceId": "cam-1"}]),
    ("SELECT deviceId FROM devices WHERE properties.desired.$version = properties.reported.lastDesiredVersion "
     "AND properties.reported.lastDesiredStatus.code = 200", [{"deviceId": "cam-1"}]),
    ("SELECT deviceId FROM devices WHERE devices.tags.floor = 1", [{"deviceId": "cam-1"}]),  # qualified path
    ("SELECT deviceId FROM devices WHERE tags.floor + 1 = 3 AND -tags.floor < 0 AND tags.floor % 2 = 0",
     [{"deviceId": "cam-2"}]),
    ("SELECT deviceId FROM devices WHERE abs(-2) = 2 AND power(2, 3) = 8 AND round(2.5) = 3 AND floor(tags.floor) = 1",
     [{"deviceId": "cam-1"}]),
    ("SELECT deviceId FROM devices WHERE tags.floor / 0 = 1 OR tags.floor = 1", [{"deviceId": "cam-1"}]),
    ('SELECT deviceId FROM devices WHERE tags.site = "north" AND status <> \'disabled\'',
     [{"deviceId": "cam-1"}, {"deviceId": "cam-2"}]),
]


def _run(text: str) -> list:
    rows = compile_query(text).run(DEVICES)
    return [r["deviceId"] for r in rows] if text.upper().startswith("SELECT *") else rows


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_queries(text: str, expected: list) -> None:
    assert _run(text) == expected


def test_module_queries_and_qualified_paths() -> None:
    modules = [{"deviceId": "cam-1", "moduleId": "$edgeAgent", "configurations": {"d": {"status": "Applied"}},
                "properties": {"desired": {"$version": 4}, "reported": {"lastDesiredVersion": 4,
                                                                        "lastDesiredStatus": {"code": 200}}}},
               {"deviceId": "cam-1", "moduleId": "sensor", "properties": {"desired": {}, "reported": {}}}]
    q = compile_query("select deviceId from devices.modules where moduleId = '$edgeAgent' and "
                      "configurations.[[d]].status = 'Applied' and properties.desired.$version = "
                      "properties.reported.lastDesiredVersion and properties.reported.lastDesiredStatus.code = 200")
    assert q.source is Source.MODULES and q.run(modules) == [{"deviceId": "cam-1"}]
    q = compile_query("SELECT * FROM devices.modules WHERE devices.deviceId = 'cam-1' AND "
                      "devices.modules.moduleId = 'sensor'")
    assert q.run(modules) == [modules[1]] and q.item_type == "Twin"
    assert compile_query("SELECT deviceId, moduleId FROM devices.modules").item_type == "Raw"


@pytest.mark.parametrize(("text", "column", "needle"), [
    ("SELECT FROM devices", 8, "unexpected 'FROM'"),
    ("SELECT * FROM things", 15, "unknown collection"),
    ("SELECT * FROM devices.jobs", 15, "not supported"),
    ("SELECT * FROM devices WHERE", 28, "unexpected end of input"),
    ("SELECT * FROM devices WHERE tags.x = 'open", 38, "unterminated string"),
    ("SELECT * FROM devices WHERE tags.x == 1", 37, "'==' is not an operator"),
    ("SELECT * FROM devices WHERE (tags.x = 1", 40, "expected ')'"),
    ("SELECT * FROM devices WHERE tags.x = 1)", 39, "unmatched closing ')'"),
    ("SELECT * FROM devices WHERE tags.x = 1 tags.y = 2", 40, "after the query"),
    ("SELECT * FROM devices WHERE nope(tags.x)", 29, "unknown function"),
    ("SELECT * FROM devices WHERE is_defined()", 29, "takes 1 argument"),
    ("SELECT * FROM devices WHERE startswith(deviceId, 3)", 50, "expects a string as argument 2"),
    ("SELECT * FROM devices WHERE tags.x = #", 38, "unexpected character '#'"),
    ("SELECT deviceId, COUNT() FROM devices", 8, "neither aggregated nor in GROUP BY"),
    ("SELECT * FROM devices GROUP BY tags.x", 1, "cannot be grouped"),
    ("SELECT TOP x deviceId FROM devices", 12, "a whole number after TOP"),
    ("SELECT lower(deviceId) FROM devices", 8, "cannot be used in a SELECT list"),
    ("SELECT tags.a AS x, tags.b AS x FROM devices", 21, "both named 'x'"),
    ("DELETE FROM devices", 1, "unexpected 'DELETE'"),
])
def test_errors_point_at_the_problem(text: str, column: int, needle: str) -> None:
    with pytest.raises(QueryError) as exc:
        compile_query(text)
    assert needle in exc.value.render()
    assert exc.value.column == column, exc.value.render()
    rendered = exc.value.render()
    assert rendered.splitlines()[2].index("^") == 4 + column - 1  # the caret sits under the column


def test_long_and_deep_inputs_are_refused_with_a_message() -> None:
    with pytest.raises(QueryError, match="at most"):
        compile_query("SELECT * FROM devices WHERE " + "x = 1 AND " * 3000 + "true")
    with pytest.raises(QueryError, match="nested more than"):
        compile_query("SELECT * FROM devices WHERE " + "(" * 200 + "true" + ")" * 200)


def test_target_conditions() -> None:
    assert compile_target("*").matches({}) and not compile_target("").matches({})
    modules = compile_target("from devices.modules where moduleId = 'm' and tags.building = 9")
    assert modules.source is Source.MODULES and modules.matches({"moduleId": "m", "tags": {"building": 9}})
    assert compile_target("tags.floor IN [1, 2]").matches(DEVICES[0])
    with pytest.raises(QueryError, match="devices.jobs"):
        compile_target("FROM devices.jobs WHERE x = 1")


def test_paging_walks_every_row_once_and_refuses_foreign_tokens() -> None:
    rows = list(range(23))
    seen, token = [], None
    while True:
        page = page_rows("q", rows, token, 10)
        seen += page.items
        token = page.continuation
        if token is None:
            break
    assert seen == rows
    assert page_rows("q", rows, None, None).continuation is None  # 100 a page by default
    first = page_rows("q", rows, None, 5)
    with pytest.raises(QueryError, match="does not belong"):
        page_rows("another query", rows, first.continuation, 5)
    with pytest.raises(QueryError, match="does not belong"):
        page_rows("q", rows, "not-a-token", 5)
