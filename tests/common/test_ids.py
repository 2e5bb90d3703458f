"""edgegen.common.ids: device and module ids as IoT Hub's identity registry takes them, at every entry point."""

from __future__ import annotations

import pytest

from edgegen.common.ids import MAX_ID_LENGTH, InvalidIdError, check_device_id, check_module_id, id_problem
from edgegen.local.hubstandin.bodies import check_id
from edgegen.local.hubstandin.errors import InvalidArgument
from edgegen.local.mqtt.topics import Identity, TopicError

VALID = ["d1", "edge-1", "a.b", "$edgeAgent", "x" * MAX_ID_LENGTH, "A+b%c_d#e*f?g!h(i)j,k:l=m@n$o'p"]
INVALID = ["", "x" * (MAX_ID_LENGTH + 1), "a/b", "a b", "caf\u00e9", "a\x00b", "tab\t", "a;b", "a&b", "a\\b", "é"]


@pytest.mark.parametrize("value", VALID)
def test_iot_hub_ids_are_taken(value: str) -> None:
    assert check_device_id(value) == value and check_module_id(value) == value and id_problem(value) is None


@pytest.mark.parametrize("value", INVALID)
def test_other_ids_are_refused_with_the_rule(value: str) -> None:
    with pytest.raises(InvalidIdError) as info:
        check_device_id(value)
    assert info.value.message.startswith("the device id") and "letters, digits" in info.value.hint
    with pytest.raises(InvalidArgument):  # the stand-in's REST layer: a 400 with the same words
        check_id(value, "module id")


def test_the_offending_character_and_length_are_named() -> None:
    assert id_problem("a/b", "module id") == "the module id 'a/b' has '/', which IoT Hub does not allow in ids"
    assert id_problem("m" * 300) == "the device id is 300 characters long; IoT Hub allows at most 128"
    assert id_problem(5) == "the device id must be a string, not int"


@pytest.mark.parametrize(("device", "module"), [("a/b", None), ("dev", "a/b"), ("x" * 129, None), ("dev", "é"),
                                                ("d#1", None), ("dev", "m+1")])
def test_mqtt_identities_take_only_valid_ids(device: str, module: str | None) -> None:
    """A CONNECT's client id (``device/module``) is checked as IoT Hub checks ids; ``#`` and ``+`` are allowed in
    IoT Hub ids but can never be in an MQTT topic, so MQTT refuses them too."""
    with pytest.raises(TopicError):
        Identity(device, module)


def test_a_slash_can_never_make_two_ids_share_a_path() -> None:
    """``a/b`` as a device would otherwise be the same client id, topic and storage key as module ``b`` of ``a``."""
    module = Identity("a", "b")
    assert module.client_id == "a/b"
    with pytest.raises(TopicError):
        Identity.from_client_id("a/b/c")
    with pytest.raises(InvalidIdError):
        check_device_id("a/b")
