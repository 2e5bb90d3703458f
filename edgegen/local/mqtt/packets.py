"""MQTT 3.1.1 packets as plain dataclasses, the packet type numbers, and the codec's one error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from edgegen.local.mqtt.errors import MqttError

__all__ = [
    "Connack",
    "ConnackCode",
    "Connect",
    "Disconnect",
    "MqttCodecError",
    "Packet",
    "PacketType",
    "Pingreq",
    "Pingresp",
    "Puback",
    "Publish",
    "Suback",
    "SubackCode",
    "Subscribe",
    "Unsuback",
    "Unsubscribe",
]



class PacketType(IntEnum):
    """The control packet type (the fixed header's high nibble). IntEnum: on the wire it is the same number."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class ConnackCode(IntEnum):
    """CONNACK return codes (MQTT 3.1.1 section 3.2.2.3)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_CREDENTIALS = 4
    NOT_AUTHORIZED = 5


class SubackCode(IntEnum):
    """SUBACK return codes: the granted QoS, or FAILURE."""

    QOS0 = 0
    QOS1 = 1
    QOS2 = 2
    FAILURE = 0x80


# the packet types the codec speaks, as short names (the same IntEnum members)
CONNECT, CONNACK, PUBLISH, PUBACK = PacketType.CONNECT, PacketType.CONNACK, PacketType.PUBLISH, PacketType.PUBACK
SUBSCRIBE, SUBACK = PacketType.SUBSCRIBE, PacketType.SUBACK
UNSUBSCRIBE, UNSUBACK = PacketType.UNSUBSCRIBE, PacketType.UNSUBACK
PINGREQ, PINGRESP, DISCONNECT = PacketType.PINGREQ, PacketType.PINGRESP, PacketType.DISCONNECT
DEFAULT_MAX_PACKET = 1024 * 1024  # IoT Hub caps messages at 256 KB; a bit of room for topics


class MqttCodecError(MqttError):
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
