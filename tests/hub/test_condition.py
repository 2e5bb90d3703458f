"""Target conditions (pure): operators, three-valued logic, errors with a caret."""

from __future__ import annotations

import pytest

from edgegen.local.hubstandin.condition import ConditionError, compile_condition

TWIN = {
    "deviceId": "cam-7",
    "tags": {"environment": "prod", "floor": 3, "site": {"name": "north"}, "beta": True, "owner": None},
    "properties": {"desired": {}, "reported": {"fw": "1.2.0", "temp": 21.5}},
    "capabilities": {"iotEdge": True},
    "configurations": {"base-1": {"status": "Applied"}},
}

CASES = [
    ("tags.environment='prod'", True),
    ('tags.environment = "prod"', True),
    ("tags.environment != 'prod'", False),
    ("tags.environment <> 'dev'", True),
    ("tags.floor > 2 AND tags.floor <= 3", True),
    ("tags.floor < 3 OR tags.site.name = 'north'", True),
    ("NOT tags.environment = 'dev'", True),
    ("not (tags.floor >= 4)", True),
    ("tags.environment IN ['dev', 'prod']", True),
    ("deviceId NIN ['cam-7']", False),
    ("tags.beta = true AND capabilities.iotEdge = true", True),
    ("tags.owner = null", True),
    ("properties.reported.temp > 20.5", True),
    ("configurations.[[base-1]].status = 'Applied'", True),
    ("IS_DEFINED(tags.site.name) AND NOT IS_DEFINED(tags.missing)", True),
    ("STARTS_WITH(deviceId, 'cam-') and ends_with(properties.reported.fw, '.0')", True),
    # three-valued: a missing field is Undefined, and NOT Undefined stays Undefined (not targeted)
    ("tags.missing = 'x'", False),
    ("NOT tags.missing = 'x'", False),
    ("tags.missing = 'x' OR tags.floor = 3", True),
    ("tags.floor = '3'", False),  # no coercion between numbers and strings
    ("NOT tags.floor = '3'", False),
    ("*", True),
    ("", False),
]


@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_condition(condition: str, expected: bool) -> None:
    assert compile_condition(condition)(TWIN) is expected


@pytest.mark.parametrize(("condition", "column", "needle"), [
    ("tags.environment = = 'prod'", 20, "'==' is not an operator"),
    ("tags.environment = 'prod' tags.x = 1", 27, "after a complete condition"),
    ("tags.x = 'open", 10, "unterminated string"),
    ("FOO(tags.x)", 1, "unknown function"),
    ("IS_DEFINED(tags.x, tags.y)", 1, "takes 1 argument"),
    ("(tags.x = 1", 12, "expected ')'"),
])
def test_errors_point_at_the_problem(condition: str, column: int, needle: str) -> None:
    with pytest.raises(ConditionError) as exc:
        compile_condition(condition)
    assert needle in exc.value.message
    assert exc.value.location is not None and exc.value.location.column == column
    assert "^" in exc.value.render()


def test_module_target_conditions() -> None:
    matches = compile_condition("FROM devices.modules WHERE moduleId = 'sensor' AND tags.building = 9")
    assert matches({"moduleId": "sensor", "tags": {"building": 9}})
    assert not matches({"moduleId": "other", "tags": {"building": 9}})
