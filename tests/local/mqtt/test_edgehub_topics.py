"""edgeHub's own MQTT topic tests, replayed from tests/local/mqtt/data/edgehub_topics.json (copied as data, MIT).

edgeHub reads a client's topic with URI path templates (``{name}`` is one topic level, ``[^/]*``; the first
template of its table that matches wins; a ``{params}`` level is a property bag). ``TopicTemplate`` below is that
behaviour written down for the tests, checked first against edgeHub's template tests; our gateway's parser is
then proven equal to edgeHub's real inbound table with it, and the telemetry, input-topic and bag vectors run
through the gateway's own functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
    parse_inbound,
    split_property_bag,
)
from edgegen.local.router import input_property_bag
from tests.support.profiles import PROPERTY

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "edgehub_topics.json").read_text(encoding="utf-8"))


class TopicTemplate:
    """A URI path template as edgeHub's protocol gateway compiles it (anchored at both ends here: we require the
    whole topic to match, edgeHub's regex is only anchored at the end)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.names = re.findall(r"\{([^}]*)\}", template)
        pattern = "".join("([^/]*)" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{[^}]*\})", template) if part)
        self.pattern = re.compile(f"^{pattern}$")

    def match(self, topic: str) -> dict[str, str] | None:
        found = self.pattern.match(topic)
        return None if found is None else dict(zip(self.names, found.groups(), strict=True))

    def bind(self, variables: dict[str, str]) -> str | None:
        out = self.template
        for name in self.names:
            if name not in variables:
                return None
            out = out.replace("{" + name + "}", variables[name])
        return out


def parse_with_templates(templates: list[str], topic: str) -> dict[str, str] | None:
    """edgeHub's TryParseProtocolMessagePropsFromAddress: the first matching template's variables, the
    ``params`` level deserialized into them."""
    for template in templates:
        found = TopicTemplate(template).match(topic)
        if found is not None:
            params = found.pop("params", None)
            if params:
                found.update(split_property_bag(params))
            return found
    return None


@pytest.mark.parametrize("case", VECTORS["template_parse"], ids=lambda c: c["source"].split(".")[1])
def test_template_parse_vectors(case: dict[str, Any]) -> None:
    assert parse_with_templates(case["templates"], case["address"]) == case["properties"]


@pytest.mark.parametrize("case", VECTORS["template_bind"], ids=lambda c: c["source"].split(".")[1])
def test_template_bind_vectors(case: dict[str, Any]) -> None:
    """Address building, with the extra properties serialized by our encoder (edgeHub's order and quoting)."""
    address = TopicTemplate(case["template"]).bind(case["system"])
    if address is not None and case["properties"]:
        address = f"{address.rstrip('/')}/{encode_property_bag(case['properties'])}"
    assert address == case["address"]


INBOUND = VECTORS["inbound_templates"][:-1]  # the telemetry templates; method responses are parsed apart


def reference_telemetry(topic: str, identity: Identity) -> str | None:
    """The bag edgeHub's inbound table finds for a telemetry topic of ``identity``; None when none matches it."""
    for template in INBOUND:
        found = TopicTemplate(template).match(topic)
        if found is None:
            continue
        if found.pop("deviceId") != identity.device_id or found.pop("moduleId", None) != identity.module_id:
            return None  # another identity's topic: refused
        return found.get("params", "")
    return None


def ours(topic: str, identity: Identity) -> str | None:
    inbound = parse_inbound(topic, identity)
    if inbound is None or inbound.kind is not InboundKind.TELEMETRY:
        return None
    return inbound.bag


MOD = Identity("dev1", "mod1")
DEV = Identity("dev1")
_LEVELS = st.sampled_from(["devices", "dev1", "dev2", "modules", "mod1", "messages", "events", "eve", "",
                           "a=1", "%24.ce=utf-8", "k", "a=1&b=", "x%2Fy=z"])


@given(st.lists(_LEVELS, min_size=1, max_size=9), st.sampled_from([MOD, DEV]), st.booleans())
@PROPERTY
def test_our_telemetry_parser_equals_edgehubs_inbound_templates(levels: list[str], identity: Identity,
                                                                 prefixed: bool) -> None:
    topic = "/".join(([*identity.topic_base.split("/"), "messages", "events"] if prefixed else []) + levels)
    assert ours(topic, identity) == reference_telemetry(topic, identity), topic


@pytest.mark.parametrize("topic", [
    "devices/dev1/modules/mod1/messages/events", "devices/dev1/modules/mod1/messages/events/",
    "devices/dev1/modules/mod1/messages/events//", "devices/dev1/modules/mod1/messages/events/%24.on=o/",
    "devices/dev1/modules/mod1/messages/events/%24.on=o", "devices/dev1/modules/mod1/messages/events/a/b",
    "devices/dev1/modules/mod1/messages/events/a/b/", "devices/dev1/modules/mod1/messages/eventsX",
])
def test_edge_topics_parse_like_edgehub(topic: str) -> None:
    assert ours(topic, MOD) == reference_telemetry(topic, MOD)


@pytest.mark.parametrize("case", VECTORS["telemetry"], ids=lambda c: c["source"].split(".")[1])
def test_telemetry_vectors(case: dict[str, Any]) -> None:
    identity = Identity(*case["identity"])
    inbound = parse_inbound(case["topic"], identity)
    if case.get("error"):
        assert inbound is None
        return
    assert inbound is not None and inbound.kind is InboundKind.TELEMETRY
    assert decode_property_bag(inbound.bag) == (case["system"], case["custom"])


@pytest.mark.parametrize("case", VECTORS["input_topics"], ids=lambda c: c["source"].split(".")[1])
def test_input_topics_are_written_as_edgehub_writes_them(case: dict[str, Any]) -> None:
    """Same message in, byte-identical topic out: property order, which system properties go, quoting."""
    bag = input_property_bag(case["properties"], dict(case["system"]))
    topic = f"devices/Device1/modules/Module1/inputs/input1/{encode_property_bag(bag)}"
    assert topic == case["topic"]
    received = Message(b"")  # and the Python SDK reads it back
    sdk.extract_message_properties_from_topic(topic, received)
    assert (received.message_id, received.content_type) == ("m1", "application/json")


@pytest.mark.parametrize("case", VECTORS["bags"], ids=lambda c: c["bag"][:20] or "empty")
def test_bag_vectors(case: dict[str, Any]) -> None:
    assert split_property_bag(case["bag"]) == case["properties"]
    if case["roundtrip"]:
        assert encode_property_bag(case["properties"]) == case["bag"]


@pytest.mark.parametrize("bag", ["a=1&", "&a=1", "a=1&&b=2", "=v", "a=b=c", "&", "a=1&=2"])
def test_malformed_bags_are_refused_as_the_csharp_serializer_refuses_them(bag: str) -> None:
    with pytest.raises(TopicError):
        split_property_bag(bag)


def test_bag_edge_cases() -> None:
    assert split_property_bag("k&v=") == {"k": "", "v": ""}  # no '=' and an empty value: both empty
    assert split_property_bag("a=1&a=2") == {"a": "2"}  # the last one wins
    assert split_property_bag("a%3Db=c%26d&e%2Ff=%2B") == {"a=b": "c&d", "e/f": "+"}  # encoded separators
    system, custom = decode_property_bag("%24.cdid=spoof&%24.ct=text%2Fplain&%24.cmid=x")
    assert system == {"$.ct": "text/plain"}  # a client cannot name the sender
    assert custom == {"$.cdid": "spoof", "$.cmid": "x"}


@given(st.text(alphabet="ab=&%24.$/+2F", max_size=30))
@PROPERTY
def test_any_bag_is_refused_or_survives_a_round_trip(bag: str) -> None:
    try:
        decoded = split_property_bag(bag)
    except TopicError as exc:
        assert "property bag" in exc.message
        return
    assert split_property_bag(encode_property_bag(decoded)) == decoded
