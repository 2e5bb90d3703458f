"""The IoT Hub MQTT topic dialect (pure): identities, property bags, topic parsing, building and filter matching.

Telemetry topics are read as edgeHub reads them (its ``mqttTopicNameConversion`` inbound templates):
``{base}/messages/events``, ``…/events/``, ``…/events/{bag}`` and ``…/events/{bag}/`` — the Node.js SDK ends the
bag with ``/``, the Python SDK does not. The bag is one topic level: a ``/`` inside it (not percent-encoded)
matches no template, and the client is disconnected.

Property bags are ``key=value`` pairs joined by ``&``, each side percent-encoded with ``quote(safe='')`` and
decoded with ``unquote`` (never ``unquote_plus``: the SDK keeps ``+`` as it is). Decoding follows the C# SDK's
``UrlEncodedDictionarySerializer``, which edgeHub uses: keys in any order, the last of a repeated key wins, ``k``
and ``k=`` give an empty value (edgeHub holds null there; we hold ``''`` and write ``k=``, which both SDKs read
back as ``''``), and an empty entry (``a=1&``, ``&a``, ``a&&b``), a value without a key (``=v``) or a second
``=`` in one entry (``a=b=c``) make the bag malformed. Encoding keeps the order it is given; ``in_sdk_order``
puts system properties first, as the Python SDK writes them (``$.on $.mid $.cid $.uid $.ct $.ce $.ifid $.exp``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from edgegen.common.ids import ID_CHARS, MAX_ID_LENGTH, id_problem
from edgegen.local.mqtt.errors import MqttError

__all__ = [
    "CONNECTION_PROPERTY_KEYS",
    "SYSTEM_PROPERTY_KEYS",
    "SYSTEM_PROPERTY_NAMES",
    "Identity",
    "Inbound",
    "InboundKind",
    "TopicError",
    "decode_property_bag",
    "decode_query",
    "desired_patch_topic",
    "encode_property_bag",
    "in_sdk_order",
    "input_topic",
    "may_subscribe",
    "method_request_topic",
    "parse_inbound",
    "split_property_bag",
    "topic_matches",
    "twin_response_topic",
]

#: System property keys of the SDK's property bag, in the order the SDK writes them.
SYSTEM_PROPERTY_KEYS = ("$.on", "$.mid", "$.cid", "$.uid", "$.ct", "$.ce", "$.ifid", "$.exp")
#: Their names in IoT Hub's message model (what routes call them).
SYSTEM_PROPERTY_NAMES = {
    "$.on": "outputName",
    "$.mid": "messageId",
    "$.cid": "correlationId",
    "$.uid": "userId",
    "$.ct": "contentType",
    "$.ce": "contentEncoding",
    "$.ifid": "interfaceId",
    "$.exp": "absoluteExpiryTime",
    "$.to": "to",
    "$.schema": "messageSchema",
    "$.ctime": "creationTime",
    "$.sub": "dt-subject",
    "$.cdid": "connectionDeviceId",
    "$.cmid": "connectionModuleId",
}
#: Set by edgeHub from the connection; from a client they are custom properties (nobody can pose as another).
CONNECTION_PROPERTY_KEYS = frozenset(("$.cdid", "$.cmid"))
_SYSTEM_ORDER = {key: i for i, key in enumerate((*SYSTEM_PROPERTY_KEYS, "$.to", "$.cdid", "$.cmid"))}
_MQTT_WILDCARDS = frozenset("#+")  # IoT Hub allows them in ids, but no MQTT topic name may hold them


class TopicError(MqttError):
    """A client id, topic or property bag that does not follow the IoT Hub dialect."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on a connection: a device (``module_id`` None) or one of its modules.

    ``client_id`` (``{device}[/{module}]``) and ``topic_base`` (``devices/{d}[/modules/{m}]``) are computed once.
    """

    device_id: str
    module_id: str | None = None
    client_id: str = field(init=False, repr=False, compare=False)
    topic_base: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for label, value in (("device id", self.device_id), ("module id", self.module_id)):
            if value is None and label == "module id":
                continue
            problem = id_problem(value, label)
            if problem is None and value is not None and _MQTT_WILDCARDS & set(value):
                problem = f"the {label} {value!r} has an MQTT wildcard ('#' or '+'), which no topic may hold"
            if problem is not None:
                raise TopicError(problem, hint=f"ids are 1-{MAX_ID_LENGTH} ASCII letters, digits and {ID_CHARS} "
                                 "(IoT Hub's rule), without '#' or '+' over MQTT")
        if self.module_id:
            object.__setattr__(self, "client_id", f"{self.device_id}/{self.module_id}")
            object.__setattr__(self, "topic_base", f"devices/{self.device_id}/modules/{self.module_id}")
        else:
            object.__setattr__(self, "client_id", self.device_id)
            object.__setattr__(self, "topic_base", f"devices/{self.device_id}")

    @classmethod
    def from_client_id(cls, client_id: str) -> Identity:
        """``{device}/{module}`` or ``{device}``."""
        device, sep, module = client_id.partition("/")
        if sep and not module:
            raise TopicError(f"client id {client_id!r} has an empty module id", hint="use {device}/{module}")
        return cls(device, module if sep else None)

    def resource(self, host: str) -> str:
        """The SAS resource URI this identity signs: ``{host}/devices/{d}[/modules/{m}]``."""
        return f"{host}/{self.topic_base}"

    def __str__(self) -> str:
        return self.client_id


# --------------------------------------------------------------------------------------------------- property bags


def split_property_bag(bag: str) -> dict[str, str]:
    """Every ``key=value`` of a bag, decoded (see the module docstring); TopicError when it is malformed."""
    out: dict[str, str] = {}
    if not bag:
        return out
    for entry in bag.split("&"):
        key, _, value = entry.partition("=")
        if not key:
            raise TopicError(f"property bag {bag!r} has an empty entry or a value without a key",
                             hint="write key=value pairs joined by '&', each side percent-encoded")
        if "=" in value:
            raise TopicError(f"property bag {bag!r} has a second '=' in the entry of {key!r}",
                             hint="percent-encode '=' inside keys and values (%3D)")
        out[_unquote(key)] = _unquote(value)
    return out


def decode_query(query: str) -> dict[str, str]:
    """The ``$rid=…&$version=…`` after the ``?`` of a ``$iothub/…`` topic, read leniently (empty entries skipped)."""
    out: dict[str, str] = {}
    for entry in query.split("&"):
        if entry:
            key, _, value = entry.partition("=")
            out[_unquote(key)] = _unquote(value)
    return out


# Property keys and most values repeat from message to message: remember their (un)quoted forms.
_QUOTED: dict[str, str] = {}
_UNQUOTED: dict[str, str] = {}
_MEMO_LIMIT = 4096


def _quote(text: str) -> str:
    done = _QUOTED.get(text)
    if done is None:
        done = quote(text, safe="")
        if len(_QUOTED) >= _MEMO_LIMIT:
            _QUOTED.clear()
        _QUOTED[text] = done
    return done


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    done = _UNQUOTED.get(text)
    if done is None:
        done = unquote(text)
        if len(_UNQUOTED) >= _MEMO_LIMIT:
            _UNQUOTED.clear()
        _UNQUOTED[text] = done
    return done


def decode_property_bag(bag: str) -> tuple[dict[str, str], dict[str, str]]:
    """A bag into (system properties keyed ``$.mid`` …, custom properties); TopicError when it is malformed."""
    system: dict[str, str] = {}
    custom: dict[str, str] = {}
    for key, value in split_property_bag(bag).items():
        if key in SYSTEM_PROPERTY_NAMES and key not in CONNECTION_PROPERTY_KEYS:
            system[key] = value
        else:
            custom[key] = value
    return system, custom


def encode_property_bag(properties: Mapping[str, str]) -> str:
    """``key=value&…`` in the order given, each side quoted."""
    if not properties:
        return ""
    return "&".join([f"{_quote(str(k))}={_quote(str(v))}" for k, v in properties.items()])


def in_sdk_order(properties: Mapping[str, str]) -> dict[str, str]:
    """System keys first in the Python SDK's order, then the others as given."""
    order = _SYSTEM_ORDER
    last = len(order)
    return dict(sorted(properties.items(), key=lambda kv: order.get(kv[0], last)))  # stable: custom keys keep order


# --------------------------------------------------------------------------------------------------- topics out


def input_topic(identity: Identity, input_name: str, properties: Mapping[str, str]) -> str:
    if not identity.module_id:
        raise TopicError(f"{identity} is a device; only modules have inputs")
    if not input_name or "/" in input_name or "#" in input_name or "+" in input_name:
        raise TopicError(f"input name {input_name!r} is not valid")
    return f"{identity.topic_base}/inputs/{input_name}/{encode_property_bag(properties)}"


def twin_response_topic(status: int, rid: str, version: int | None = None) -> str:
    topic = f"$iothub/twin/res/{status}/?$rid={quote(rid, safe='')}"
    return topic if version is None else f"{topic}&$version={version}"


def desired_patch_topic(version: int) -> str:
    return f"$iothub/twin/PATCH/properties/desired/?$version={version}"


def method_request_topic(name: str, rid: str) -> str:
    return f"$iothub/methods/POST/{quote(name, safe='')}/?$rid={quote(rid, safe='')}"


# --------------------------------------------------------------------------------------------------- topics in


class InboundKind(enum.Enum):
    TELEMETRY = "telemetry"
    TWIN_GET = "twin-get"
    TWIN_REPORTED = "twin-reported"
    METHOD_RESPONSE = "method-response"


@dataclass(frozen=True, slots=True)
class Inbound:
    kind: InboundKind
    bag: str = ""  # telemetry: the raw property bag
    rid: str = ""  # twin and method replies: the request id
    status: int = 0  # method responses


def _query(topic: str) -> dict[str, str]:
    _, _, query = topic.partition("?")
    return decode_query(query)


def parse_inbound(topic: str, identity: Identity, events_prefix: str | None = None) -> Inbound | None:
    """What a client's PUBLISH means, or None when no template of its identity matches (then it is refused).

    ``events_prefix`` (``{topic_base}/messages/events``, no trailing ``/``) may be passed pre-computed.
    The bag is returned raw; ``decode_property_bag`` checks it.
    """
    prefix = events_prefix or f"{identity.topic_base}/messages/events"
    if topic.startswith(prefix):
        tail = topic[len(prefix):]
        if not tail or tail == "/":
            return Inbound(InboundKind.TELEMETRY)
        if tail[0] != "/":
            return None
        bag = tail[1:-1] if tail[-1] == "/" else tail[1:]
        return None if "/" in bag else Inbound(InboundKind.TELEMETRY, bag=bag)
    if not topic.startswith("$iothub/"):
        return None
    path, _, _ = topic.partition("?")
    if path == "$iothub/twin/GET/":
        return Inbound(InboundKind.TWIN_GET, rid=_query(topic).get("$rid", ""))
    if path == "$iothub/twin/PATCH/properties/reported/":
        return Inbound(InboundKind.TWIN_REPORTED, rid=_query(topic).get("$rid", ""))
    if path.startswith("$iothub/methods/res/"):
        status = path[len("$iothub/methods/res/"):].rstrip("/")
        if status.lstrip("-").isdigit():
            return Inbound(InboundKind.METHOD_RESPONSE, rid=_query(topic).get("$rid", ""), status=int(status))
    return None


_SUBSCRIBABLE_IOTHUB = ("$iothub/twin/res/", "$iothub/twin/PATCH/properties/desired/", "$iothub/methods/POST/")


def may_subscribe(identity: Identity, topic_filter: str) -> bool:
    """Whether a connection with ``identity`` may subscribe ``topic_filter`` (only its own topics)."""
    if not _valid_filter(topic_filter):
        return False
    if topic_filter.startswith("$iothub/"):
        return topic_filter.startswith(_SUBSCRIBABLE_IOTHUB)
    base = identity.topic_base + "/"
    if not topic_filter.startswith(base):
        return False
    rest = topic_filter[len(base):]
    if identity.module_id:
        return rest.startswith("inputs/")
    return rest.startswith("messages/devicebound/")


def _valid_filter(topic_filter: str) -> bool:
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 filter matching (``+`` one level, ``#`` the rest; wildcards never match a leading ``$``)."""
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    flevels = topic_filter.split("/")
    tlevels = topic.split("/")
    for i, flevel in enumerate(flevels):
        if flevel == "#":
            return True
        if i >= len(tlevels):
            return False
        if flevel != "+" and flevel != tlevels[i]:
            return False
    return len(flevels) == len(tlevels)
