"""edgeHub's own routing test suite, replayed from tests/conformance/routing: one parametrized test per file.

Every vector must pass: true/false/undefined results, compile failures (RouteError at compile time), no-throw
cases, source matches and valid/invalid routes.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from edgegen.routing import (
    FALSE,
    TRUE,
    UNDEFINED,
    Message,
    ModuleInputEndpoint,
    RouteError,
    UpstreamEndpoint,
    compile_condition,
    message_source,
    normalize_source,
    parse_route,
    source_matches,
)
from edgegen.routing.route import brokered_endpoint
from edgegen.routing.sources import is_telemetry
from tests.conftest import CONFORMANCE

VECTORS = CONFORMANCE / "routing"
RESULT = {"true": TRUE, "false": FALSE, "undefined": UNDEFINED}


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _params(name: str, build: Any) -> list[Any]:
    return build(_load(name))


def _message(spec: dict[str, Any]) -> Message:
    encoding = "utf-16-le" if "UTF-16LE" in spec.get("body_encoding", "") else "utf-8"
    return Message(dict(spec.get("properties", {})), dict(spec.get("system_properties", {})),
                   spec.get("body", "").encode(encoding))


# -- conditions.json ---------------------------------------------------------------------------------------
def _condition_cases(d: dict[str, Any]) -> list[Any]:
    out = []
    for c in d["success_cases"] + d["fact_cases"]:
        out.append(pytest.param(("result", c["condition"], c["expected"]), id=f"L{c['source_line']}:{c['condition']}"))
    for c in d["compile_failure_cases"]:
        out.append(pytest.param(("error", c["condition"], None), id=f"L{c['source_line']}:error:{c['condition']}"))
    for i, cond in enumerate(d["no_throw_cases"]["conditions"]):
        out.append(pytest.param(("nothrow", cond, None), id=f"nothrow{i}:{cond}"))
    return out


@pytest.mark.parametrize("case", _params("conditions.json", _condition_cases))
def test_conditions(case: Any) -> None:
    data = _load("conditions.json")
    message = _message(data["message"])
    kind, condition, expected = case
    if kind == "error":
        with pytest.raises(RouteError):
            compile_condition(condition, body_query=False)
        return
    result = compile_condition(condition, body_query=False)(message)
    if kind == "result":
        assert result is RESULT[expected]
    else:
        assert result in (TRUE, FALSE, UNDEFINED)


# -- body_queries.json -------------------------------------------------------------------------------------
def _body_cases(d: dict[str, Any]) -> list[Any]:
    return [pytest.param(c, id=f"{c['source_file']}:L{c['source_line']}:{c['condition']}") for c in d["cases"]]


@pytest.mark.parametrize("case", _params("body_queries.json", _body_cases))
def test_body_queries(case: dict[str, Any]) -> None:
    data = _load("body_queries.json")
    message = _message(data["messages"][case["message"]])
    body_query = case["flags"] == "BodyQuery"
    if case.get("error"):
        with pytest.raises(RouteError):
            compile_condition(case["condition"], body_query=body_query)
        return
    condition = compile_condition(case["condition"], body_query=body_query)
    assert condition(message) is RESULT[case["expected"]]
    assert message.body_parse_count <= 1


# -- twin_change_includes.json -----------------------------------------------------------------------------
def _twin_cases(d: dict[str, Any]) -> list[Any]:
    return [pytest.param(c, id=f"L{c['source_line']}:{c['condition']}") for c in d["cases"]]


@pytest.mark.parametrize("case", _params("twin_change_includes.json", _twin_cases))
def test_twin_change_includes(case: dict[str, Any]) -> None:
    data = _load("twin_change_includes.json")
    spec = case["message"]
    message = _message(data["messages"][spec] if isinstance(spec, str) else (spec or {}))
    flag = case["flags"] == "TwinChangeIncludes"
    if case.get("error"):
        with pytest.raises(RouteError):
            compile_condition(case["condition"], twin_change_includes=flag, source=case["route_source"])
        return
    condition = compile_condition(case["condition"], twin_change_includes=flag, source=case["route_source"])
    assert condition(message) is RESULT[case["expected"]]


# -- message_sources.json ----------------------------------------------------------------------------------
def _source_cases(d: dict[str, Any]) -> list[Any]:
    out = []
    for c in d["pattern_cases"]:
        out.append(pytest.param(("match", c["route_source"], c["message_source"], c["expected_match"]),
                                id=f"pattern:{c['route_source']}~{c['message_source']}"))
    for c in d["typed_source_cases"]["cases"]:
        out.append(pytest.param(("match", c["route_source"], c["message_source"], c["expected_match"]),
                                id=f"typed:{c['route_source']}~{c['message_source']}"))
    for c in d["is_telemetry_cases"]["cases"]:
        out.append(pytest.param(("telemetry", c["message_source"], None, c["is_telemetry"]),
                                id=f"telemetry:{c['message_source']}"))
    for c in d["json_roundtrip_cases"]["cases"]:
        out.append(pytest.param(("match", c["matcher"], c["serialized"]["source"], c["expected_match"]),
                                id=f"roundtrip:{c['serialized']['kind']}"))
    for i, c in enumerate(d["source_from_system_properties_cases"]["cases"]):
        out.append(pytest.param(("system", c["system_properties"], None, c["expected_source"]), id=f"system{i}"))
    return out


@pytest.mark.parametrize("case", _params("message_sources.json", _source_cases))
def test_message_sources(case: Any) -> None:
    kind, a, b, expected = case
    if kind == "match":
        assert source_matches(a, b) is expected
        if not a.endswith("/"):  # edgeHub's route grammar needs a segment after every '/'
            assert parse_route(f"FROM {a} INTO $upstream").matches_source(b) is expected
    elif kind == "telemetry":
        assert is_telemetry(a) is expected
    else:
        assert message_source(a) == expected
        assert Message(system_properties=dict(a)).source == expected


# -- routes.json -------------------------------------------------------------------------------------------
def _route_cases(d: dict[str, Any]) -> list[Any]:
    out = []
    for c in d["valid_routes"]:
        out.append(pytest.param(("valid", c), id=f"valid:L{c['source_line']}:{c['route']}"))
    for c in d["invalid_routes"]:
        out.append(pytest.param(("invalid", c), id=f"invalid:L{c['source_line']}:{c['route']}"))
    ef = d["endpoint_factory"]
    for c in ef["system_endpoint_ok"] + ef["system_endpoint_invalid"]:
        out.append(pytest.param(("system_endpoint", c), id=f"system_endpoint:{c['name']}"))
    for c in ef["function_endpoint_ok"] + ef["function_endpoint_invalid"]:
        out.append(pytest.param(("function_endpoint", c), id=f"function_endpoint:{c['function']}:{c['address']}"))
    for i, c in enumerate(ef["function_endpoint_equality"]):
        out.append(pytest.param(("equality", c), id=f"equality{i}"))
    return out


def _sink(function: str | None, address: str) -> str:
    return f'{function}("{address}")' if function is not None else f'"{address}"'


@pytest.mark.parametrize("case", _params("routes.json", _route_cases))
def test_routes(case: Any) -> None:
    kind, c = case
    if kind == "valid":
        route = parse_route(c["route"])
        assert route.source.lower() == normalize_source(c["expected_source"]).lower()
        assert route.source.lower() == c["expected_source_normalized"].lower()
        assert (route.condition if route.condition is not None else "true") == c["condition"]
        if c["sink"]["kind"] == "system":
            assert route.sink == UpstreamEndpoint()
        else:
            derived = c["sink"]["brokered_endpoint_derived"]
            assert route.sink == ModuleInputEndpoint(derived["module_id"], derived["input"])
    elif kind == "invalid":
        with pytest.raises(RouteError):
            parse_route(c["route"])
    elif kind == "system_endpoint":
        text = f"FROM /messages INTO {c['name'] or ''}"
        if c.get("expected"):
            assert parse_route(text).sink == UpstreamEndpoint()
        else:
            with pytest.raises(RouteError):
                parse_route(text)
    elif kind == "function_endpoint":
        text = f"FROM /messages INTO {_sink(c['function'], c['address'])}"
        if c.get("error"):
            with pytest.raises(RouteError):
                parse_route(text)
        else:
            sink = parse_route(text).sink
            assert isinstance(sink, ModuleInputEndpoint)
            assert sink.input == c["expected_input"]
            assert f"Device1/{sink.module}/{sink.input}" == c["expected_endpoint_id"]
    else:
        a = brokered_endpoint(c["a"][1])
        b = brokered_endpoint(c["b"][1])
        assert (a == b) is c["equal"]
