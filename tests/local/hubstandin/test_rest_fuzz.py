"""Hypothesis fuzzing of the stand-in's REST API in-process (aiohttp's test server on 127.0.0.1, the real app and
backend, an in-memory store): any route, any id (valid, too long, with ``/``, ``%2F``, non-ASCII), any body (JSON
of any shape, known bodies with fields of the wrong type, 50,000-deep nesting, bytes that are not UTF-8 or not
JSON, oversized) and odd headers. Every answer is below 500 and, when an error, IoT Hub's JSON error body.

How many examples: the ``FUZZ`` setting of tests/support/profiles.py (10,000 derandomized in CI,
``EDGEGEN_FUZZ_EXAMPLES`` when set).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from edgegen.common.sas import generate_sas_token
from edgegen.local.hubstandin.auth import ServiceAuthenticator
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.bodies import CONFIGURATION, DEVICE, MODULE, TWIN
from edgegen.local.hubstandin.http import make_app
from edgegen.local.hubstandin.rights import REST_RIGHTS
from edgegen.local.hubstandin.store import MemoryHubStore
from tests.support.profiles import FUZZ

pytestmark = pytest.mark.integration  # an in-process REST server on loopback

HOST = "127.0.0.1:8443"
REQUEST_BOUND = 10.0  # seconds: a request that takes longer is a hang


class Api:
    """The app on its own loop; ``call`` sends one request and returns (status, headers, body bytes)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.backend = HubBackend(MemoryHubStore(), HOST)
        app = make_app(self.backend, ServiceAuthenticator((HOST,), self.backend.policies))
        self.client = TestClient(TestServer(app, host="127.0.0.1"), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())
        key = self.backend.policies["iothubowner"]["primaryKey"]
        self.token = generate_sas_token(HOST, key, key_name="iothubowner", ttl=24 * 3600)
        for device in ("d1", "edge1"):  # something to find, update and delete
            self.backend.put_device(device, {"capabilities": {"iotEdge": device == "edge1"}})
        self.backend.put_module("edge1", "m1", {})

    def call(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        async def go() -> tuple[int, Any, bytes]:
            h = {"Authorization": self.token, "Content-Type": "application/json", **headers}
            async with self.client.request(method, path, data=data, headers=h,
                                           params={"api-version": "2021-04-12"}) as resp:
                return resp.status, resp.headers, await resp.read()

        return self.loop.run_until_complete(asyncio.wait_for(go(), REQUEST_BOUND))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    running = Api()
    status, _, raw = running.call("GET", "/devices/d1", None, {})
    assert status == 200, raw  # the token is good: fuzzed requests reach the handlers, not only the auth check
    yield running
    running.close()


_ID_CHARS = st.sampled_from("abcXYZ019-:.+%_#*?!(),=@$'")
ids = st.one_of(
    st.sampled_from(["d1", "edge1", "m1", "$edgeAgent", "$edgeHub", "ghost", "a/b", "edge1/m1", "", ".", "..",
                     "$edgegen-monitor", "x" * 129, "x" * 128, "é", "\x00", "a b", "%2F", "a;b"]),
    st.text(_ID_CHARS, min_size=1, max_size=20),
    st.text(max_size=40),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def _with_fields(shape: dict[str, Any]) -> st.SearchStrategy[Any]:
    """An object with some of ``shape``'s fields, each any JSON value (or, for nested shapes, a fuzzed object)."""
    def field(want: Any) -> st.SearchStrategy[Any]:
        return st.one_of(_with_fields(want), json_values) if isinstance(want, dict) else json_values

    return st.fixed_dictionaries({}, optional={name: field(want) for name, want in shape.items()})


def _deep(n: int, kind: str) -> bytes:
    return (("[" * n + "]" * n) if kind == "list" else ('{"a":' * n + "1" + "}" * n)).encode()


bodies = st.one_of(
    st.none(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([DEVICE, MODULE, TWIN, CONFIGURATION]).flatmap(_with_fields).map(lambda v: json.dumps(v).encode()),
    st.builds(_deep, st.integers(1, 60_000), st.sampled_from(["list", "dict"])),
    st.binary(max_size=64),
    st.integers(0, 3).map(lambda k: b'{"tags": {"x": "' + b"y" * (400_000 * k) + b'"}}'),
    st.just(b'{"modulesContent": {"$edgeAgent": {"properties.desired": []}}}'),
    st.just(b'[{"id": "b1", "importMode": "create", "authentication": {"symmetricKey": {"primaryKey": 5}}}]'),
)
headers = st.fixed_dictionaries({}, optional={
    "If-Match": st.sampled_from(["*", '"*"', "", "bogus", '"AAAA"']),
    "x-ms-max-item-count": st.sampled_from(["1", "0", "-1", "x", "99999999999999999999"]),
    "x-ms-continuation": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
})


@FUZZ
@given(route=st.sampled_from(sorted(REST_RIGHTS)), device=ids, module=ids, body=bodies, extra=headers,
       encode=st.booleans())
def test_rest_api_never_answers_500(api: Api, route: tuple[str, str], device: str, module: str, body: bytes | None,
                                    extra: dict[str, str], encode: bool) -> None:
    method, template = route
    quote_id = (lambda v: quote(v, safe="")) if encode else (lambda v: quote(v, safe="/"))
    path = template.replace("{id}", quote_id(device)).replace("{mid}", quote_id(module))
    path = path.replace("{name}", quote_id(device))
    status, resp_headers, raw = api.call(method, path, body, extra)
    assert status < 500, (method, path, body[:200] if body else body, status, raw[:300])
    if status >= 400:
        document = json.loads(raw)
        if route == ("POST", "/devices") and status == 400 and "isSuccessful" in document:
            assert document["isSuccessful"] is False and document["errors"]  # IoT Hub's bulk result
            return
        assert set(document) == {"Message", "ExceptionMessage"}, document
        assert resp_headers.get("iothub-errorcode"), resp_headers
