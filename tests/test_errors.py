"""The error base: relocating with .at() keeps the type, notes add context, and every area roots its errors."""

from __future__ import annotations

import pytest

from edgegen.errors import EdgegenError, Location
from edgegen.generator.errors import RenderError, UnresolvedError
from edgegen.hub.errors import (
    HubBadRequest,
    HubClientError,
    HubConflict,
    HubNotFound,
    HubPreconditionFailed,
    HubThrottled,
    HubUnauthorized,
    HubUnavailable,
    hub_error,
)
from edgegen.local.hubstandin.errors import (
    DeviceNotOnline,
    HubError,
    InvalidArgument,
    MethodTimeout,
    ServiceUnavailable,
    Unauthorized,
    from_gateway,
)
from edgegen.local.mqtt import AuthError, MqttCodecError, TopicError
from edgegen.local.mqtt.errors import (
    GatewayError,
    GatewayUnavailable,
    InvalidRequest,
    MethodTimeoutError,
    MqttError,
    NotConnected,
    NotPermitted,
    Revoked,
)


def test_at_relocates_without_retyping() -> None:
    err = UnresolvedError("no module x", name="MODULES.x", hint="add it")
    moved = err.at("deployment.template.json", line=12, column=5)
    assert moved is err and type(moved) is UnresolvedError and moved.name == "MODULES.x"
    assert moved.location == Location(file="deployment.template.json", line=12, column=5)
    assert moved.render() == "deployment.template.json:12:5: no module x\nhint: add it"


def test_at_keywords_change_one_part_and_a_new_line_drops_the_old_column() -> None:
    err = RenderError("bad", location=Location(file="a.json", line=3, column=7, source_line="x"))
    assert err.at(json_path="$.modulesContent").location == Location(file="a.json", line=3, column=7,
                                                                      json_path="$.modulesContent")
    assert err.at(line=9).location == Location(file="a.json", line=9, json_path="$.modulesContent")
    assert err.at(Location(file="b.json")).location == Location(file="b.json")


def test_at_on_an_error_without_location() -> None:
    err = EdgegenError("oops")
    assert err.at(json_path="$.a").render() == "$.a: oops"


def test_notes_are_rendered_after_the_caret_and_kept_in_to_dict() -> None:
    err = RenderError("undefined", location=Location(file="t.json", line=2, column=3, source_line='  "a": $X'))
    err.add_note("while rendering fleet.yaml: group prod")
    assert err.render().splitlines() == ["t.json:2:3: undefined", '      "a": $X', "      ^",
                                         "while rendering fleet.yaml: group prod"]
    assert err.to_dict()["notes"] == ["while rendering fleet.yaml: group prod"]
    assert "notes" not in EdgegenError("plain").to_dict()


@pytest.mark.parametrize("cls", [MqttCodecError, TopicError, AuthError, GatewayError, InvalidRequest, Revoked,
                                 NotPermitted, NotConnected, GatewayUnavailable, MethodTimeoutError])
def test_the_mqtt_area_has_one_root(cls: type[Exception]) -> None:
    assert issubclass(cls, MqttError) and issubclass(cls, EdgegenError)


def test_gateway_errors_carry_their_status_by_type() -> None:
    statuses = {cls: cls("x").status for cls in (GatewayError, InvalidRequest, Revoked, NotPermitted, NotConnected,
                                                  GatewayUnavailable, MethodTimeoutError)}
    assert statuses == {GatewayError: 500, InvalidRequest: 400, Revoked: 401, NotPermitted: 403, NotConnected: 404,
                        GatewayUnavailable: 503, MethodTimeoutError: 504}
    with pytest.raises(TypeError):
        GatewayError("no status argument any more", 404)  # type: ignore[misc]


@pytest.mark.parametrize(("gateway", "hub", "code"), [
    (NotConnected("d is not connected", hint="start it"), DeviceNotOnline, "DeviceNotOnline"),
    (MethodTimeoutError("no answer"), MethodTimeout, "GatewayTimeout"),
    (GatewayUnavailable("the gateway stopped"), ServiceUnavailable, "ServiceUnavailable"),
    (InvalidRequest("bad input"), InvalidArgument, "ArgumentInvalid"),
    (Revoked("disabled"), Unauthorized, "IotHubUnauthorizedAccess"),
    (GatewayError("unknown"), HubError, "ServerError"),
])
def test_the_standin_maps_gateway_errors_by_type(gateway: GatewayError, hub: type[HubError], code: str) -> None:
    mapped = from_gateway(gateway, connect_timeout=30)
    assert type(mapped) is hub and mapped.code == code
    assert mapped.message == gateway.message and mapped.hint == gateway.hint


def test_device_not_online_keeps_the_connect_timeout() -> None:
    mapped = from_gateway(NotConnected("d is not connected"), connect_timeout=90)
    assert isinstance(mapped, DeviceNotOnline)
    assert '"timeout":"00:01:30"' in mapped.body()["Message"]


@pytest.mark.parametrize(("status", "cls"), [
    (400, HubBadRequest), (401, HubUnauthorized), (403, HubUnauthorized), (404, HubNotFound), (409, HubConflict),
    (412, HubPreconditionFailed), (429, HubThrottled), (500, HubUnavailable), (503, HubUnavailable),
    (418, HubClientError),
])
def test_hub_answers_become_subclasses(status: int, cls: type[HubClientError]) -> None:
    err = hub_error("creating device 'd': the hub answered", status, code="SomeCode")
    assert type(err) is cls and err.status == status and err.code == "SomeCode"
