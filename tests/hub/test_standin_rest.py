"""The stand-in's REST wire seen raw (requests): IoT Hub's JSON error shape on every 4xx/5xx — unknown paths
and methods included —, ``GET /devices/``, query paging headers, and twin documents as IoT Hub returns them."""

from __future__ import annotations

import re

import pytest
import requests

from edgegen.common.sas import generate_sas_token

pytestmark = pytest.mark.integration

ERROR_MESSAGE = re.compile(r"^ErrorCode:(?P<code>[A-Za-z]+);.+", re.S)
TRACKING = re.compile(r"^Tracking ID:[0-9a-f]{32}-G:0-TimeStamp:\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$")


@pytest.fixture
def rest(hub):
    info = hub.info
    key = hub.standin.backend.policies["iothubowner"]["primaryKey"]
    token = generate_sas_token(info.host_name, key, key_name="iothubowner", quote_resource_plus=True)

    def call(method: str, path: str, body=None, headers=None, auth: bool = True, data=None) -> requests.Response:
        h = {"Authorization": token} if auth else {}
        h.update(headers or {})
        return requests.request(method, f"https://{info.host_name}{path}", params={"api-version": "2021-04-12"},
                                json=body, data=data, headers=h, verify=info.ca_file, timeout=10)

    return call


def assert_iothub_error(resp: requests.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["iothub-errorcode"] == code
    body = resp.json()
    assert set(body) == {"Message", "ExceptionMessage"}
    match = ERROR_MESSAGE.match(body["Message"])
    assert match and match.group("code") == code, body
    assert TRACKING.match(body["ExceptionMessage"]), body


def test_every_error_is_iothub_json(rest) -> None:
    assert_iothub_error(rest("GET", "/nothing/here"), 404, "NotFound")
    assert_iothub_error(rest("DELETE", "/devices"), 405, "MethodNotAllowed")
    assert_iothub_error(rest("GET", "/devices", auth=False), 401, "IotHubUnauthorizedAccess")
    assert_iothub_error(rest("GET", "/nothing", auth=False), 401, "IotHubUnauthorizedAccess")
    assert_iothub_error(rest("GET", "/devices/nobody"), 404, "DeviceNotFound")
    assert_iothub_error(rest("PUT", "/devices/d1", data=b"{not json"), 400, "ArgumentInvalid")
    assert_iothub_error(rest("POST", "/devices/query", {"query": "SELECT * FROM devices WHERE"}), 400,
                        "ArgumentInvalid")
    assert_iothub_error(rest("POST", "/devices/query", {"nothing": 1}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("POST", "/devices/query", {"query": "SELECT * FROM devices"},
                             headers={"x-ms-max-item-count": "-1"}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("POST", "/devices/query", {"query": "SELECT * FROM devices"},
                             headers={"x-ms-continuation": "bogus"}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/configurations/c1", {"content": {"modulesContent": {}},
                                                            "targetCondition": "tags.x = = 1"}), 400, "ArgumentInvalid")


def test_listing_with_a_slash_query_pages_and_twin_shape(rest) -> None:
    for i in range(5):
        assert rest("PUT", f"/devices/d{i}", {"deviceId": f"d{i}"}).status_code == 200
    assert [d["deviceId"] for d in rest("GET", "/devices/").json()] == [f"d{i}" for i in range(5)]
    seen, token = [], None
    while True:
        headers = {"x-ms-max-item-count": "2", **({"x-ms-continuation": token} if token else {})}
        resp = rest("POST", "/devices/query", {"query": "SELECT deviceId FROM devices"}, headers=headers)
        assert resp.status_code == 200 and resp.headers["x-ms-item-type"] == "Raw"
        seen += resp.json()
        token = resp.headers.get("x-ms-continuation")
        if not token:
            break
    assert seen == [{"deviceId": f"d{i}"} for i in range(5)]
    resp = rest("POST", "/devices/query", {"query": "SELECT * FROM devices WHERE deviceId = 'd0'"})
    assert resp.headers["x-ms-item-type"] == "Twin"
    twin = resp.json()[0]
    assert twin == rest("GET", "/twins/d0").json()
    for key in ("deviceId", "etag", "deviceEtag", "status", "statusUpdateTime", "connectionState",
                "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint", "modelId",
                "version", "tags", "properties", "capabilities", "deviceScope", "parentScopes"):
        assert key in twin, key
    assert set(twin["properties"]["desired"]) == {"$metadata", "$version"}
    stats = rest("GET", "/statistics/devices").json()
    assert stats == {"totalDeviceCount": 5, "enabledDeviceCount": 5, "disabledDeviceCount": 0}


def test_bad_bodies_and_ids_are_400_never_500(rest) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    assert_iothub_error(rest("PUT", "/devices/d1", data=deep), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d1", data=b'{"a":' * 50_000 + b"1" + b"}" * 50_000), 400,
                        "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d1", [1, 2]), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d1", {"capabilities": 5}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d1", {"authentication": {"symmetricKey": {"primaryKey": "short"}}}),
                        400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d1", data=b"\xff\xfe"), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/" + "x" * 129, {}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/a%2Fb", {}), 400, "ArgumentInvalid")  # no '/' in ids: no collisions
    assert_iothub_error(rest("PUT", "/devices/%C3%A9", {}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/$edgegen-monitor", {}), 400, "ArgumentInvalid")
    assert rest("PUT", "/devices/" + "x" * 128, {}).status_code == 200
    assert rest("PUT", "/devices/a-b:c.d+e%25f_g#h*i?j!k(l)m,n=o@p$q'r".replace("#", "%23").replace("?", "%3F"),
                {}).status_code == 200
    assert rest("PUT", "/devices/d1", {}).status_code == 200
    assert_iothub_error(rest("PATCH", "/twins/d1", {"tags": "x"}), 400, "ArgumentInvalid")
    deep_tags: dict = {}
    node = deep_tags
    for _ in range(11):
        node["a"] = {}
        node = node["a"]
    assert_iothub_error(rest("PATCH", "/twins/d1", {"tags": deep_tags}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PATCH", "/twins/d1", {"properties": {"desired": {"x": "y" * 33_000}}}), 400,
                        "ArgumentInvalid")
    assert_iothub_error(rest("POST", "/devices/query", ["SELECT * FROM devices"]), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/configurations/c1", {"content": [], "priority": "x"}), 400, "ArgumentInvalid")
    assert_iothub_error(rest("PUT", "/devices/d2", data=b"{" * 2_000_000), 413, "RequestEntityTooLarge")
    assert rest("GET", "/devices/d1").json()["deviceId"] == "d1"  # and the hub still answers
