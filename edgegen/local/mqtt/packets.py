"""MQTT 3.1.1 packets as plain dataclasses, the packet type numbers, and the codec's one error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgegen.errors import EdgegenError

__all__ = [
    "Connack",
    "Connect",
    "Disconnect",
    "MqttCodecError",
    "Packet",
    "Pingreq",
    "Pingresp",
    "Puback",
    "Publish",
    "Suback",
    "Subscribe",
    "Unsuback",
    "Unsubscribe",
]

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
DEFAULT_MAX_PACKET = 1024 * 1024  # IoT Hub caps messages at 256 KB; a bit of room for topics


class MqttCodecError(EdgegenError):
    """Bytes that are not a valid MQTT 3.1.1 packet (the connection is then closed)."""


@dataclass(slots=True)
class Connect:
    client_id: str
    clean_session: bool = True
    keepalive: int = 60
    username: str | None = None
    password: bytes | None = None
    will_topic: str | None = None
    will_payload: bytes | None = None
    will_qos: int = 0
    will_retain: bool = False
    protocol_name: str = "MQTT"
    protocol_level: int = 4


@dataclass(slots=True)
class Connack:
    session_present: bool
    return_code: int


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    packet_id: int | None = None
    dup: bool = False
    retain: bool = False


@dataclass(slots=True)
class Puback:
    packet_id: int


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    topics: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class Suback:
    packet_id: int
    return_codes: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    topics: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Unsuback:
    packet_id: int


@dataclass(slots=True)
class Pingreq:
    pass


@dataclass(slots=True)
class Pingresp:
    pass


@dataclass(slots=True)
class Disconnect:
    pass


Packet = (
    Connect | Connack | Publish | Puback | Subscribe | Suback | Unsubscribe | Unsuback | Pingreq | Pingresp | Disconnect
)
