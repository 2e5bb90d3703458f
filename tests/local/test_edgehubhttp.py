"""The method request body as edgeHub's MethodRequestValidator checks it (the endpoint itself runs in
tests/local/device/test_methods.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.local.edgehubhttp import BadMethodCall, MethodCall, parse_method_call
from tests.support.profiles import PROPERTY


def test_defaults_and_values() -> None:
    assert parse_method_call(b'{"methodName": "m"}') == MethodCall("m", None, 30.0, 0.0)
    body = {"methodName": "m", "payload": {"a": [1]}, "responseTimeoutInSeconds": 300, "connectTimeoutInSeconds": 5}
    assert parse_method_call(json.dumps(body).encode()) == MethodCall("m", {"a": [1]}, 300.0, 5.0)


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[1]", b'{"payload": 1}', b'{"methodName": "  "}', b'{"methodName": 7}',
    json.dumps({"methodName": "x" * 101}).encode(),
    b'{"methodName": "m", "responseTimeoutInSeconds": 4}', b'{"methodName": "m", "responseTimeoutInSeconds": 301}',
    b'{"methodName": "m", "connectTimeoutInSeconds": -1}', b'{"methodName": "m", "connectTimeoutInSeconds": 301}',
    b'{"methodName": "m", "responseTimeoutInSeconds": "10"}', b'{"methodName": "m", "responseTimeoutInSeconds": true}',
    json.dumps({"methodName": "m", "payload": "x" * (128 * 1024)}).encode(),
])
def test_refused_bodies(body: bytes) -> None:
    with pytest.raises(BadMethodCall):
        parse_method_call(body)


@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
@PROPERTY
def test_any_body_is_a_call_or_a_400(body: bytes) -> None:
    try:
        call = parse_method_call(body)
    except BadMethodCall as exc:
        assert str(exc)
        return
    assert call.name.strip() and 5 <= call.response_timeout <= 300 and 0 <= call.connect_timeout <= 300
