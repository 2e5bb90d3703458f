"""MQTT 3.1.1 wire codec, sans-I/O: bytes in, packets out; packets (or fast-path arguments) in, bytes out.

Covers what IoT Hub speaks: CONNECT CONNACK PUBLISH PUBACK SUBSCRIBE SUBACK UNSUBSCRIBE UNSUBACK PINGREQ PINGRESP
DISCONNECT. QoS 2 flows (PUBREC/PUBREL/PUBCOMP, or a QoS 2 PUBLISH) are refused with ``MqttCodecError`` since
IoT Hub does not support them either. Every malformed input raises ``MqttCodecError`` and nothing else.
"""

from __future__ import annotations

import struct

from edgegen.local.mqtt.packets import (
    CONNACK,
    CONNECT,
    DEFAULT_MAX_PACKET,
    DISCONNECT,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    Connack,
    Connect,
    Disconnect,
    MqttCodecError,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    SubackCode,
    Subscribe,
    Unsuback,
    Unsubscribe,
)

__all__ = [
    "PINGREQ_BYTES",
    "PINGRESP_BYTES",
    "Connack",
    "Connect",
    "Disconnect",
    "MqttCodecError",
    "Packet",
    "PacketReader",
    "Pingreq",
    "Pingresp",
    "Puback",
    "Publish",
    "Suback",
    "Subscribe",
    "Unsuback",
    "Unsubscribe",
    "encode",
    "encode_connack",
    "encode_puback",
    "encode_publish",
    "encode_suback",
    "encode_unsuback",
]

_U16 = struct.Struct("!H")


# --------------------------------------------------------------------------------------------------- decoding


class _Body:
    """A cursor over one packet's variable header and payload."""

    __slots__ = ("data", "end", "kind", "pos")

    def __init__(self, data: bytes, kind: str) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.kind = kind

    def u8(self) -> int:
        if self.pos >= self.end:
            raise MqttCodecError(f"{self.kind} packet is truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self) -> int:
        if self.pos + 2 > self.end:
            raise MqttCodecError(f"{self.kind} packet is truncated")
        value = (self.data[self.pos] << 8) | self.data[self.pos + 1]
        self.pos += 2
        return value

    def blob(self) -> bytes:
        n = self.u16()
        if self.pos + n > self.end:
            raise MqttCodecError(f"{self.kind} packet is truncated (a field claims {n} bytes)")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def text(self) -> str:
        return _utf8(self.blob(), self.kind)

    def rest(self) -> bytes:
        value = self.data[self.pos :]
        self.pos = self.end
        return value

    def done(self) -> None:
        if self.pos != self.end:
            raise MqttCodecError(f"{self.kind} packet has {self.end - self.pos} unexpected trailing bytes")


def _utf8(raw: bytes, kind: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MqttCodecError(f"{kind} packet carries a string that is not valid UTF-8") from exc
    if "\x00" in text:
        raise MqttCodecError(f"{kind} packet carries a string with U+0000")
    return text


def _packet_id(body: _Body) -> int:
    pid = body.u16()
    if pid == 0:
        raise MqttCodecError(f"{body.kind} packet has packet identifier 0")
    return pid


def _decode_connect(flags: int, data: bytes) -> Connect:
    if flags:
        raise MqttCodecError("CONNECT fixed header flags must be 0")
    b = _Body(data, "CONNECT")
    name = b.text()
    level = b.u8()
    if name not in ("MQTT", "MQIsdp"):
        raise MqttCodecError(f"CONNECT protocol name {name!r} is not MQTT")
    cflags = b.u8()
    keepalive = b.u16()
    if level != 4:  # the server answers return code 1; nothing else in the packet matters then
        return Connect(client_id="", keepalive=keepalive, protocol_name=name, protocol_level=level)
    if cflags & 0x01:
        raise MqttCodecError("CONNECT reserved flag must be 0")
    will = bool(cflags & 0x04)
    will_qos = (cflags >> 3) & 0x03
    will_retain = bool(cflags & 0x20)
    if not will and (will_qos or will_retain):
        raise MqttCodecError("CONNECT has will QoS/retain without a will")
    if will_qos == 3:
        raise MqttCodecError("CONNECT will QoS 3 is invalid")
    has_password = bool(cflags & 0x40)
    has_username = bool(cflags & 0x80)
    if has_password and not has_username:
        raise MqttCodecError("CONNECT has a password without a user name")
    client_id = b.text()
    will_topic = will_payload = None
    if will:
        will_topic = b.text()
        will_payload = b.blob()
    username = b.text() if has_username else None
    password = b.blob() if has_password else None
    b.done()
    return Connect(
        client_id, bool(cflags & 0x02), keepalive, username, password, will_topic, will_payload, will_qos,
        will_retain, name, level,
    )


def _decode_publish(flags: int, data: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MqttCodecError("PUBLISH QoS 3 is invalid")
    if qos == 2:
        raise MqttCodecError("PUBLISH QoS 2 is not supported (IoT Hub speaks QoS 0 and 1)")
    if len(data) < 2:
        raise MqttCodecError("PUBLISH packet is truncated")
    n = (data[0] << 8) | data[1]
    end = 2 + n
    if end > len(data):
        raise MqttCodecError("PUBLISH packet is truncated (topic)")
    topic = _utf8(data[2:end], "PUBLISH")
    if not topic or "+" in topic or "#" in topic:
        raise MqttCodecError(f"PUBLISH topic {topic!r} is empty or has a wildcard")
    pid = None
    if qos:
        if end + 2 > len(data):
            raise MqttCodecError("PUBLISH packet is truncated (packet identifier)")
        pid = (data[end] << 8) | data[end + 1]
        if pid == 0:
            raise MqttCodecError("PUBLISH packet has packet identifier 0")
        end += 2
    elif flags & 0x08:
        raise MqttCodecError("PUBLISH QoS 0 must not have DUP set")
    return Publish(topic, data[end:], qos, pid, bool(flags & 0x08), bool(flags & 0x01))


def _decode_subscribe(data: bytes) -> Subscribe:
    b = _Body(data, "SUBSCRIBE")
    pid = _packet_id(b)
    topics = []
    while b.pos < b.end:
        topic = b.text()
        qos = b.u8()
        if qos & 0xFC or not topic:
            raise MqttCodecError(f"SUBSCRIBE entry {topic!r} has an empty filter or invalid QoS byte {qos}")
        topics.append((topic, qos))
    if not topics:
        raise MqttCodecError("SUBSCRIBE has no topic filter")
    return Subscribe(pid, topics)


def _decode_unsubscribe(data: bytes) -> Unsubscribe:
    b = _Body(data, "UNSUBSCRIBE")
    pid = _packet_id(b)
    topics = []
    while b.pos < b.end:
        topics.append(b.text())
    if not topics:
        raise MqttCodecError("UNSUBSCRIBE has no topic filter")
    return Unsubscribe(pid, topics)


def _decode_ack(kind: str, data: bytes) -> int:
    b = _Body(data, kind)
    pid = _packet_id(b)
    b.done()
    return pid


def _decode_suback(data: bytes) -> Suback:
    b = _Body(data, "SUBACK")
    pid = _packet_id(b)
    codes = list(b.rest())
    if not codes or any(c not in SubackCode._value2member_map_ for c in codes):
        raise MqttCodecError(f"SUBACK return codes {codes} are invalid")
    return Suback(pid, codes)


def _decode_connack(data: bytes) -> Connack:
    b = _Body(data, "CONNACK")
    ack_flags = b.u8()
    rc = b.u8()
    b.done()
    if ack_flags & 0xFE:
        raise MqttCodecError("CONNACK reserved flags must be 0")
    return Connack(bool(ack_flags & 1), rc)


_NAMES = {t.value: t.name for t in PacketType}


def decode_packet(first: int, data: bytes) -> Packet:
    """One packet from its first header byte and its body (the bytes after the remaining length)."""
    ptype, flags = first >> 4, first & 0x0F
    if ptype == PUBLISH:
        return _decode_publish(flags, data)
    name = _NAMES.get(ptype)
    if name is None:
        raise MqttCodecError(f"packet type {ptype} is reserved")
    expected_flags = 0x02 if ptype in (SUBSCRIBE, UNSUBSCRIBE, PacketType.PUBREL) else 0
    if flags != expected_flags:
        raise MqttCodecError(f"{name} fixed header flags {flags:#x} are invalid")
    if ptype == PUBACK:
        return Puback(_decode_ack("PUBACK", data))
    if ptype == SUBSCRIBE:
        return _decode_subscribe(data)
    if ptype in (PINGREQ, PINGRESP, DISCONNECT):
        if data:
            raise MqttCodecError(f"{name} must have no body")
        return Pingreq() if ptype == PINGREQ else Pingresp() if ptype == PINGRESP else Disconnect()
    if ptype == CONNECT:
        return _decode_connect(flags, data)
    if ptype == CONNACK:
        return _decode_connack(data)
    if ptype == UNSUBSCRIBE:
        return _decode_unsubscribe(data)
    if ptype == SUBACK:
        return _decode_suback(data)
    if ptype == UNSUBACK:
        return Unsuback(_decode_ack("UNSUBACK", data))
    raise MqttCodecError(f"{name} (QoS 2 flow) is not supported")


class PacketReader:
    """Incremental decoder: ``feed(bytes)`` returns every packet completed so far, keeps the remainder."""

    __slots__ = ("_buf", "max_packet_size")

    def __init__(self, max_packet_size: int = DEFAULT_MAX_PACKET) -> None:
        self._buf = bytearray()
        self.max_packet_size = max_packet_size

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            first = buf[pos]
            # remaining length: up to 4 bytes, 7 bits each
            length = 0
            shift = 0
            i = pos + 1
            complete = False
            while i < n:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    raise MqttCodecError("remaining length is longer than 4 bytes")
            if not complete:
                break
            if length > self.max_packet_size:
                raise MqttCodecError(
                    f"packet of {length} bytes exceeds the limit of {self.max_packet_size}",
                    hint="IoT Hub messages are at most 256 KB",
                )
            end = i + length
            if end > n:
                break
            out.append(decode_packet(first, bytes(buf[i:end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


# --------------------------------------------------------------------------------------------------- encoding


def _remaining_length(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise MqttCodecError("string longer than 65535 bytes cannot be encoded")
    return _U16.pack(len(raw)) + raw


def _blob(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise MqttCodecError("field longer than 65535 bytes cannot be encoded")
    return _U16.pack(len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    if len(body) > 268_435_455:
        raise MqttCodecError("packet too large for MQTT")
    return bytes((first,)) + _remaining_length(len(body)) + body


PINGREQ_BYTES = b"\xc0\x00"
PINGRESP_BYTES = b"\xd0\x00"
_CONNACKS = {(sp, rc): bytes((0x20, 2, int(sp), rc)) for sp in (False, True) for rc in range(6)}


def encode_connack(session_present: bool, return_code: int) -> bytes:
    return _CONNACKS.get((bool(session_present), return_code)) or bytes((0x20, 2, int(session_present), return_code))


def encode_puback(packet_id: int) -> bytes:
    return b"\x40\x02" + _U16.pack(packet_id)


def encode_unsuback(packet_id: int) -> bytes:
    return b"\xb0\x02" + _U16.pack(packet_id)


def encode_suback(packet_id: int, return_codes: list[int]) -> bytes:
    return _packet(0x90, _U16.pack(packet_id) + bytes(return_codes))


def encode_publish(
    topic: bytes, payload: bytes, qos: int = 0, packet_id: int | None = None, dup: bool = False, retain: bool = False
) -> bytes:
    """Fast path: ``topic`` already UTF-8 encoded (callers cache encoded topics)."""
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    if qos:
        if not packet_id:
            raise MqttCodecError("a QoS 1 PUBLISH needs a packet identifier")
        head = _U16.pack(len(topic)) + topic + _U16.pack(packet_id)
    else:
        head = _U16.pack(len(topic)) + topic
    size = len(head) + len(payload)
    if size < 128:
        return bytes((first, size)) + head + payload
    return bytes((first,)) + _remaining_length(size) + head + payload


def _encode_connect(p: Connect) -> bytes:
    flags = 0
    if p.clean_session:
        flags |= 0x02
    payload = _str(p.client_id)
    if p.will_topic is not None:
        flags |= 0x04 | (p.will_qos << 3) | (0x20 if p.will_retain else 0)
        payload += _str(p.will_topic) + _blob(p.will_payload or b"")
    if p.username is not None:
        flags |= 0x80
        payload += _str(p.username)
    if p.password is not None:
        flags |= 0x40
        payload += _blob(p.password)
    header = _str(p.protocol_name) + bytes((p.protocol_level, flags)) + _U16.pack(p.keepalive)
    return _packet(0x10, header + payload)


def encode(packet: Packet) -> bytes:
    """Any packet to bytes (both directions, so tests and tools can play the client)."""
    if isinstance(packet, Publish):
        return encode_publish(
            packet.topic.encode("utf-8"), packet.payload, packet.qos, packet.packet_id, packet.dup, packet.retain
        )
    if isinstance(packet, Puback):
        return encode_puback(packet.packet_id)
    if isinstance(packet, Connect):
        return _encode_connect(packet)
    if isinstance(packet, Connack):
        return encode_connack(packet.session_present, packet.return_code)
    if isinstance(packet, Subscribe):
        body = _U16.pack(packet.packet_id) + b"".join(_str(t) + bytes((q,)) for t, q in packet.topics)
        return _packet(0x82, body)
    if isinstance(packet, Suback):
        return encode_suback(packet.packet_id, packet.return_codes)
    if isinstance(packet, Unsubscribe):
        return _packet(0xA2, _U16.pack(packet.packet_id) + b"".join(_str(t) for t in packet.topics))
    if isinstance(packet, Unsuback):
        return encode_unsuback(packet.packet_id)
    if isinstance(packet, Pingreq):
        return PINGREQ_BYTES
    if isinstance(packet, Pingresp):
        return PINGRESP_BYTES
    if isinstance(packet, Disconnect):
        return b"\xe0\x00"
    raise MqttCodecError(f"cannot encode {type(packet).__name__}")
