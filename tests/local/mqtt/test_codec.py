"""The sans-I/O MQTT 3.1.1 codec: known bytes, round trips, incremental feeding, errors, fuzz."""

from __future__ import annotations

import contextlib
import socket

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.local.mqtt.codec import (
    Connack,
    Connect,
    Disconnect,
    MqttCodecError,
    PacketReader,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    encode,
    encode_publish,
)
from tests.support.profiles import FUZZ, PROPERTY

# Bytes taken from the MQTT 3.1.1 specification's layouts (and what paho 1.6 sends).
KNOWN = [
    (Pingreq(), b"\xc0\x00"),
    (Pingresp(), b"\xd0\x00"),
    (Disconnect(), b"\xe0\x00"),
    (Puback(0x1234), b"\x40\x02\x12\x34"),
    (Unsuback(7), b"\xb0\x02\x00\x07"),
    (Connack(True, 0), b"\x20\x02\x01\x00"),
    (Connack(False, 5), b"\x20\x02\x00\x05"),
    (Publish("a/b", b"hi", 0), b"\x30\x07\x00\x03a/bhi"),
    (Publish("a/b", b"hi", 1, 10, dup=True, retain=True), b"\x3b\x09\x00\x03a/b\x00\x0ahi"),
    (Subscribe(1, [("a/#", 1)]), b"\x82\x08\x00\x01\x00\x03a/#\x01"),
    (Suback(1, [1, 0x80]), b"\x90\x04\x00\x01\x01\x80"),
    (Unsubscribe(2, ["a/+"]), b"\xa2\x07\x00\x02\x00\x03a/+"),
    (
        Connect("d/m", False, 60, "u", b"p"),
        b"\x10\x15\x00\x04MQTT\x04\xc0\x00\x3c\x00\x03d/m\x00\x01u\x00\x01p",
    ),
]


@pytest.mark.parametrize(("packet", "wire"), KNOWN, ids=[type(p).__name__ for p, _ in KNOWN])
def test_known_bytes_both_ways(packet: object, wire: bytes) -> None:
    assert encode(packet) == wire  # type: ignore[arg-type]
    assert PacketReader().feed(wire) == [packet]


def test_a_connect_from_paho_decodes() -> None:
    client = paho.Client(client_id="dev1/mod1", clean_session=False, protocol=paho.MQTTv311)
    client.username_pw_set("hub/dev1/mod1/?api-version=2019-10-01", "SharedAccessSignature sr=x&sig=y&se=1")
    client.will_set("w/t", b"bye", qos=1, retain=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client.connect("127.0.0.1", listener.getsockname()[1], keepalive=60)  # sends CONNECT right away
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            reader = PacketReader()
            packets: list[object] = []
            while not packets:
                packets = list(reader.feed(conn.recv(4096)))
        client.disconnect()
    assert packets == [Connect(
        "dev1/mod1", False, 60, "hub/dev1/mod1/?api-version=2019-10-01", b"SharedAccessSignature sr=x&sig=y&se=1",
        "w/t", b"bye", 1, True,
    )]


def test_feeding_byte_by_byte_and_large_lengths() -> None:
    big = Publish("t", b"x" * 300_000, 1, 9)
    wire = encode(Pingreq()) + encode(big) + encode(Puback(3))
    reader = PacketReader()
    out = []
    for i in range(0, len(wire), 7):
        out.extend(reader.feed(wire[i : i + 7]))
    assert out == [Pingreq(), big, Puback(3)]
    assert reader.buffered == 0
    assert encode_publish(b"t", b"x" * 300_000, 1, 9) == encode(big)
    # the 4-byte remaining-length boundary
    huge = PacketReader(max_packet_size=300_000_000)
    header = b"\x30\xff\xff\xff\x7f"
    assert huge.feed(header) == []  # waits for 268 MB that never come
    assert huge.buffered == len(header)


BAD = [
    (b"\x00\x00", "reserved"),
    (b"\xf0\x00", "reserved"),
    (b"\x10\xff\xff\xff\xff\x7f", "longer than 4 bytes"),
    (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
    (b"\x34\x05\x00\x01a\x00\x01", "QoS 2"),
    (b"\x50\x02\x00\x01", "QoS 2"),  # PUBREC
    (b"\x38\x03\x00\x01a", "DUP"),
    (b"\x32\x03\x00\x01a", "truncated"),
    (b"\x32\x05\x00\x01a\x00\x00", "identifier 0"),
    (b"\x30\x03\x00\x01#", "wildcard"),
    (b"\x30\x04\x00\x02\xff\xfe", "UTF-8"),
    (b"\x30\x03\x00\x01\x00", "U\\+0000"),
    (b"\x80\x05\x00\x01\x00\x01a", "flags"),  # SUBSCRIBE without 0b0010
    (b"\x82\x02\x00\x01", "no topic"),
    (b"\x82\x06\x00\x01\x00\x01a\x04", "QoS byte"),
    (b"\xa2\x02\x00\x01", "no topic"),
    (b"\x40\x03\x00\x01\x00", "trailing"),
    (b"\xc0\x01\x00", "no body"),
    (b"\x10\x0c\x00\x04MQTT\x04\x01\x00\x3c\x00\x00", "reserved flag"),
    (b"\x10\x0c\x00\x04MQTT\x04\x40\x00\x3c\x00\x00", "password without"),
    (b"\x10\x0c\x00\x04MQTT\x04\x08\x00\x3c\x00\x00", "without a will"),
    (b"\x10\x0c\x00\x04HTTP\x04\x00\x00\x3c\x00\x00", "protocol name"),
]


@pytest.mark.parametrize(("wire", "words"), BAD, ids=[w.replace("\\", "") for _, w in BAD])
def test_malformed_packets_raise_the_codec_error(wire: bytes, words: str) -> None:
    with pytest.raises(MqttCodecError, match=words):
        PacketReader().feed(wire)


def test_the_size_limit_is_checked_before_buffering() -> None:
    with pytest.raises(MqttCodecError, match="exceeds the limit"):
        PacketReader(max_packet_size=100).feed(b"\x30\xe8\x07")


def test_an_old_protocol_level_still_parses_for_a_refusal() -> None:
    wire = b"\x10\x0c\x00\x06MQIsdp\x03\x02\x00\x3c"
    (packet,) = PacketReader().feed(wire)
    assert isinstance(packet, Connect) and packet.protocol_level == 3


# ------------------------------------------------------------------------------------------ properties

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
_topic = _text.filter(lambda t: t and "+" not in t and "#" not in t)
_pid = st.integers(1, 65535)
_packets = st.one_of(
    st.builds(Publish, _topic, st.binary(max_size=300), st.just(0)),
    st.builds(lambda t, p, i, d, r: Publish(t, p, 1, i, d, r), _topic, st.binary(max_size=300), _pid, st.booleans(),
              st.booleans()),
    st.builds(Puback, _pid),
    st.builds(Subscribe, _pid, st.lists(st.tuples(_text.filter(bool), st.integers(0, 2)), min_size=1, max_size=4)),
    st.builds(Suback, _pid, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=4)),
    st.builds(Unsubscribe, _pid, st.lists(_text, min_size=1, max_size=4)),
    st.builds(Unsuback, _pid),
    st.builds(Connack, st.booleans(), st.integers(0, 5)),
    st.builds(Connect, _text, st.booleans(), st.integers(0, 65535), st.none() | _text, st.none()),
    st.just(Pingreq()),
    st.just(Pingresp()),
    st.just(Disconnect()),
)


@given(st.lists(_packets, max_size=6), st.integers(1, 50))
@PROPERTY
def test_round_trip_in_arbitrary_chunks(packets: list[object], chunk: int) -> None:
    wire = b"".join(encode(p) for p in packets)  # type: ignore[arg-type]
    reader = PacketReader()
    out = []
    for i in range(0, len(wire), chunk):
        out.extend(reader.feed(wire[i : i + chunk]))
    assert out == packets


@given(st.binary(max_size=400))
@FUZZ
def test_fuzz_never_raises_anything_but_the_codec_error(data: bytes) -> None:
    reader = PacketReader(max_packet_size=1000)
    with contextlib.suppress(MqttCodecError):
        reader.feed(data)


@given(_packets, st.integers(0, 40), st.binary(min_size=1, max_size=4))
@FUZZ
def test_fuzz_mutated_valid_packets(packet: object, at: int, junk: bytes) -> None:
    wire = bytearray(encode(packet))  # type: ignore[arg-type]
    pos = at % len(wire)
    wire[pos : pos + len(junk)] = junk
    with contextlib.suppress(MqttCodecError):
        PacketReader().feed(bytes(wire))
