"""The IoT Hub topic dialect, checked against the device SDK's own topic functions."""

from __future__ import annotations

import pytest
from azure.iot.device import Message
from azure.iot.device.iothub.pipeline import mqtt_topic_iothub as sdk
from hypothesis import given
from hypothesis import strategies as st

from edgegen.local.mqtt.topics import (
    Identity,
    InboundKind,
    TopicError,
    decode_property_bag,
    encode_property_bag,
    in_sdk_order,
    input_topic,
    may_subscribe,
    method_request_topic,
    parse_inbound,
    topic_matches,
    twin_response_topic,
)
from tests.support.profiles import PROPERTY

MOD = Identity("dev1", "mod1")
DEV = Identity("dev1")


def test_identity_from_client_id() -> None:
    assert Identity.from_client_id("dev1/mod1") == MOD
    assert Identity.from_client_id("dev1") == DEV
    assert Identity.from_client_id("dev1/$edgeAgent").module_id == "$edgeAgent"
    assert MOD.resource("hub") == "hub/devices/dev1/modules/mod1"
    assert DEV.topic_base == "devices/dev1"
    for bad in ("dev1/", "", "/mod", "a/b/c", "a#/b"):
        with pytest.raises(TopicError):
            Identity.from_client_id(bad)


def test_telemetry_topic_written_by_the_sdk_decodes() -> None:
    message = Message(b"x", message_id="m 1", content_encoding="utf-8", content_type="application/json",
                      output_name="out1")
    message.correlation_id = "c&1"
    message.custom_properties.update({"z": "last", "a": "50%+", "é": "ü=?"})
    topic = sdk.encode_message_properties_in_topic(message, sdk.get_telemetry_topic_for_publish("dev1", "mod1"))
    inbound = parse_inbound(topic, MOD)
    assert inbound is not None and inbound.kind is InboundKind.TELEMETRY
    system, custom = decode_property_bag(inbound.bag)
    assert system == {"$.on": "out1", "$.mid": "m 1", "$.cid": "c&1", "$.ct": "application/json", "$.ce": "utf-8"}
    assert custom == {"z": "last", "a": "50%+", "é": "ü=?"}


def test_our_property_bag_matches_the_sdk_byte_for_byte() -> None:
    message = Message(b"x", message_id="id", content_encoding="utf-8", content_type="application/json")
    message.custom_properties.update({"b": "2 3", "a": "x/y"})
    expected = sdk.encode_message_properties_in_topic(message, "")
    ours = encode_property_bag(
        in_sdk_order({"$.ce": "utf-8", "a": "x/y", "$.mid": "id", "b": "2 3", "$.ct": "application/json"}))
    assert ours == expected  # system keys in the SDK's order, then custom keys (sorted here by the caller)


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=5))
@PROPERTY
def test_inputs_we_encode_decode_in_the_sdk(custom: dict[str, str]) -> None:
    custom = {k: v for k, v in custom.items() if not k.startswith("$.") and k != "iothub-ack"}
    props = {"$.ct": "application/json", "$.mid": "m&1", **custom}
    topic = input_topic(MOD, "input1", props)
    assert sdk.is_input_topic(topic, "dev1", "mod1")
    assert sdk.get_input_name_from_topic(topic) == "input1"
    received = Message(b"")
    sdk.extract_message_properties_from_topic(topic, received)
    assert received.content_type == "application/json"
    assert received.message_id == "m&1"
    assert received.custom_properties == custom


def test_twin_and_method_topics_parse_in_the_sdk() -> None:
    topic = twin_response_topic(204, "r 1", 7)
    assert sdk.is_twin_response_topic(topic)
    assert sdk.get_twin_request_id_from_topic(topic) == "r 1"
    assert sdk.get_twin_status_code_from_topic(topic) == "204"
    topic = method_request_topic("do it", "42")
    assert sdk.is_method_topic(topic)
    assert sdk.get_method_name_from_topic(topic) == "do it"
    assert sdk.get_method_request_id_from_topic(topic) == "42"


def test_inbound_topics() -> None:
    get = parse_inbound(sdk.get_twin_topic_for_publish("GET", "/", "9"), MOD)
    assert get is not None and (get.kind, get.rid) == (InboundKind.TWIN_GET, "9")
    rep = parse_inbound(sdk.get_twin_topic_for_publish("PATCH", "/properties/reported/", "r2"), MOD)
    assert rep is not None and (rep.kind, rep.rid) == (InboundKind.TWIN_REPORTED, "r2")
    res = parse_inbound(sdk.get_method_topic_for_publish("abc", "200"), MOD)
    assert res is not None and (res.kind, res.rid, res.status) == (InboundKind.METHOD_RESPONSE, "abc", 200)
    assert parse_inbound("devices/dev1/messages/events/a=1", DEV).bag == "a=1"  # type: ignore[union-attr]
    assert parse_inbound("devices/dev1/messages/events/a=1/", DEV).bag == "a=1"  # type: ignore[union-attr]
    assert parse_inbound("devices/dev1/messages/events", DEV).bag == ""  # type: ignore[union-attr]
    for foreign in ("devices/dev1/modules/mod2/messages/events/", "devices/dev1/messages/events/",
                    "$iothub/twin/PATCH/properties/desired/?$version=1", "$iothub/methods/POST/x/?$rid=1",
                    "$iothub/methods/res/abc/?$rid=1", "devices/dev1/modules/mod1/inputs/x/",
                    "devices/dev1/modules/mod1/messages/events/a=1/b=2", "devices/dev1/modules/mod1/messages/eventsX"):
        assert parse_inbound(foreign, MOD) is None, foreign


def test_subscription_scope() -> None:
    assert may_subscribe(MOD, "devices/dev1/modules/mod1/inputs/#")
    assert may_subscribe(MOD, "$iothub/methods/POST/#")
    assert may_subscribe(MOD, "$iothub/twin/res/#")
    assert may_subscribe(MOD, "$iothub/twin/PATCH/properties/desired/#")
    assert may_subscribe(DEV, "devices/dev1/messages/devicebound/#")
    for bad in ("#", "+/#", "devices/#", "devices/dev1/modules/mod2/inputs/#", "devices/dev1/modules/mod1/#",
                "$iothub/#", "devices/dev1/modules/mod1/inputs/a#", "devices/dev1/modules/mod1/inputs/#/x"):
        assert not may_subscribe(MOD, bad), bad
    assert not may_subscribe(DEV, "devices/dev1/modules/mod1/inputs/#")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("a/#", "a", True), ("a/#", "a/b/c", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False),
        ("+/+", "a/b", True), ("#", "$iothub/x", False), ("+/x", "$SYS/x", False), ("$iothub/#", "$iothub/x", True),
        ("a/b", "a/b", True), ("a/b", "a/c", False), ("a/+/c", "a//c", True), ("a/b/c", "a/b", False),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches
