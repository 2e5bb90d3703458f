"""The message model: case-insensitive names, null vs absent, and a body parsed at most once, lazily."""

from __future__ import annotations

import json

import pytest

from edgegen.routing import ABSENT, TRUE, UNDEFINED, Message, RouteTable, compile_condition, message_source
from edgegen.routing.message import BodyUnavailable

JSON_SYS = {"contentType": "application/json", "contentEncoding": "utf-8"}


def test_lookup_is_case_insensitive_and_null_is_not_absent() -> None:
    m = Message({"Temp": "1", "n": None}, {"ConnectionModuleId": "m"})
    assert m.get_property("TEMP") == "1"
    assert m.get_property("n") is None
    assert m.get_property("x") is ABSENT
    assert m.get_system_property("connectionmoduleid") == "m"


@pytest.mark.parametrize("encoding", ["utf-8", "UTF-16", "utf-32"])
def test_body_encodings(encoding: str) -> None:
    codec = {"utf-8": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}[encoding.lower()]
    m = Message({}, {"contentType": "Application/JSON", "contentEncoding": encoding},
                json.dumps({"t": "é", "n": 5}).encode(codec))
    assert compile_condition("$body.t = 'é' AND $body.n = 5")(m) is TRUE


@pytest.mark.parametrize(
    ("sysp", "body", "reason"),
    [
        ({"contentType": "text/plain", "contentEncoding": "utf-8"}, b'{"a": 1}', "not application/json"),
        ({"contentType": "application/json"}, b'{"a": 1}', "no contentEncoding"),
        ({"contentType": "application/json", "contentEncoding": "latin-1"}, b'{"a": 1}', "not utf-8"),
        (JSON_SYS, b"not json", "not valid JSON"),
        (JSON_SYS, b"[1, 2]", "not an object"),
        ({}, b'{"a": 1}', "no contentType"),
    ],
)
def test_body_unavailable_means_undefined(sysp: dict[str, str], body: bytes, reason: str) -> None:
    m = Message({}, sysp, body)
    assert compile_condition("$body.a = 1")(m) is UNDEFINED
    parsed = m.json_body()
    assert isinstance(parsed, BodyUnavailable) and reason in parsed.reason


def test_body_parsed_at_most_once_and_only_when_needed() -> None:
    table = RouteTable.from_routes({
        "a": "FROM /messages WHERE $body.x = 1 INTO $upstream",
        "b": "FROM /messages WHERE $body.y = 'z' INTO BrokeredEndpoint('/modules/m/inputs/i')",
        "c": "FROM /messages WHERE k = 'v' INTO BrokeredEndpoint('/modules/m/inputs/j')",
    })
    m = Message({"k": "v"}, dict(JSON_SYS), b'{"x": 1, "y": "z"}')
    assert len(table.match(m)) == 3
    assert m.body_parse_count == 1
    plain = Message({"k": "v"}, dict(JSON_SYS), b"{}")
    only_props = RouteTable.from_routes({"c": "FROM /messages WHERE k = 'v' INTO $upstream"})
    assert only_props.match(plain) and plain.body_parse_count == 0


def test_body_values_follow_newtonsoft() -> None:
    m = Message({}, dict(JSON_SYS), json.dumps({"d": "2017-03-09T00:00:00Z", "o": {"a": 1}, "l": [1, {"b": 2}],
                                                 "big": 10, "f": 1.5, "b": True, "n": None}).encode())
    cases = {
        "$body.d = '2017-03-09T00:00:00Z'": UNDEFINED,  # dates are not strings to edgeHub
        "$body.o = 1": UNDEFINED,  # objects are undefined
        "$body.l[1].b = 2": TRUE,
        "$body.l[5] = null": TRUE,  # no match is null
        "$body.big = 10.0": TRUE,
        "$body.f * 2 = 3": TRUE,
        "$body.b": TRUE,
        "$body.n = null": TRUE,
        "$body.missing.deeper = null": TRUE,
        "$body.big = '10'": compile_condition("false")(m),  # different JSON types are never equal
    }
    for text, expected in cases.items():
        assert compile_condition(text)(m) is expected, text


def test_from_dict_and_source() -> None:
    m = Message.from_dict({"properties": {"a": 1, "b": True, "c": None},
                           "systemProperties": {"connectionModuleId": "s", "outputName": "o"},
                           "body": {"x": 1}})
    assert m.properties == {"a": "1", "b": "true", "c": None}
    assert m.body == b'{"x": 1}'
    assert m.source == message_source(m.system_properties) == "/messages/modules/s/outputs/o"
