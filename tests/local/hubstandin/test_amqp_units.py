"""Pure parts of the AMQP endpoint and the stream/C2D backend: SASL front, selector filters, performative
completion, retention, the C2D queue and its feedback (no sockets)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proton import Data, Described, symbol, ulong

from edgegen.local.hubstandin.amqp.completer import FULL_ARITY, FrameCompleter, complete_frame
from edgegen.local.hubstandin.amqp.filters import FilterError, StartPosition, parse_selector
from edgegen.local.hubstandin.amqp.sasl import SASL_HEADER, SaslFailure, SaslServer, mechanisms_frame
from edgegen.local.hubstandin.c2d import MAX_QUEUE_DEPTH, CloudToDevice
from edgegen.local.hubstandin.errors import NotFound, QueueFull
from edgegen.local.hubstandin.store import MemoryHubStore, SqliteHubStore, StoredMessage
from tests.support.profiles import PROPERTY


def sasl_init(mechanism: str, response: bytes = b"") -> bytes:
    data = Data()
    data.put_object(Described(ulong(0x41), [symbol(mechanism), response]))
    body = bytes(data.encode())
    return struct.pack(">IBBH", 8 + len(body), 2, 1, 0) + body


def test_sasl_plain_then_rest_goes_to_the_engine() -> None:
    seen = []
    server = SaslServer(lambda init: seen.append(init) or init.plain_credentials()[1] == "tok")
    out = server.feed(SASL_HEADER)
    assert out == SASL_HEADER + mechanisms_frame()
    out = server.feed(sasl_init("PLAIN", b"\x00iothubowner@sas.root.hub\x00tok") + b"AMQP\x00\x01\x00\x00")
    assert server.done and server.rest == b"AMQP\x00\x01\x00\x00"
    assert decoded(out) == ([0], b"")  # sasl-outcome, code ok
    assert seen[0].plain_credentials() == ("iothubowner@sas.root.hub", "tok")


@pytest.mark.parametrize(("first", "needle"), [(b"AMQP\x00\x02\x00\x00", "speaks AMQP 1.0"),
                                               (b"GET / HTTP", "speaks AMQP 1.0"), (b"GET", "not an AMQP")])
def test_sasl_refuses_other_protocols(first: bytes, needle: str) -> None:
    with pytest.raises(SaslFailure, match=needle):
        SaslServer(lambda init: True).feed(first)


def test_no_sasl_hands_everything_to_the_engine() -> None:
    """The Node service SDK opens with the plain AMQP header (no SASL), as IoT Hub allows."""
    server = SaslServer(lambda init: pytest.fail("no SASL exchange to authenticate"))
    assert server.feed(b"AMQP\x00") == b"" and not server.done
    assert server.feed(b"\x01\x00\x00" + b"\x00\x00\x00\x08") == b""
    assert server.done and server.init is None and server.rest == b"AMQP\x00\x01\x00\x00\x00\x00\x00\x08"


def test_sasl_refused_mechanism_and_credentials() -> None:
    server = SaslServer(lambda init: False)
    server.feed(SASL_HEADER)
    with pytest.raises(SaslFailure) as exc:
        server.feed(sasl_init("PLAIN", b"\x00u\x00bad"))
    assert exc.value.reply  # a failed outcome goes out before the close
    with pytest.raises(SaslFailure, match="not offered"):
        s2 = SaslServer(lambda init: True)
        s2.feed(SASL_HEADER)
        s2.feed(sasl_init("GSSAPI"))


@PROPERTY
@given(st.binary(max_size=300))
def test_sasl_fuzz_fails_cleanly(data: bytes) -> None:
    server = SaslServer(lambda init: True)
    try:
        server.feed(SASL_HEADER)
        server.feed(data)
    except SaslFailure:
        pass


@pytest.mark.parametrize(("text", "expected"), [
    (None, StartPosition("start")),
    ("amqp.annotation.x-opt-offset > '-1'", StartPosition("start")),
    ("amqp.annotation.x-opt-offset > '@latest'", StartPosition("end")),
    ("amqp.annotation.x-opt-offset >= '42'", StartPosition("offset", 42, True)),
    ("amqp.annotation.x-opt-enqueued-time > '1700000000000'", StartPosition("time", 1700000000000)),
    ("amqp.annotation.x-opt-enqueuedtimeutc > 1700000000000", StartPosition("time", 1700000000000)),
    ("amqp.annotation.x-opt-sequence-number > '5'", StartPosition("sequence", 5)),
])
def test_selectors_the_clients_send(text, expected) -> None:
    assert parse_selector(text) == expected


@PROPERTY
@given(st.text(max_size=300))
def test_selector_fuzz(text: str) -> None:
    with contextlib.suppress(FilterError):
        assert isinstance(parse_selector(text), StartPosition)


def frame(code: int, fields: list, payload: bytes = b"") -> bytes:
    data = Data()
    data.put_object(Described(ulong(code), fields))
    body = bytes(data.encode()) + payload
    return struct.pack(">IBBH", 8 + len(body), 2, 0, 3) + body


def decoded(raw: bytes) -> tuple[list, bytes]:
    data = Data()
    n = data.decode(raw[8:])
    fields = [bytes(f) if isinstance(f, memoryview) else f for f in data.get_object().value]  # views die with data
    return fields, raw[8 + n:]


def test_completer_pads_performatives_and_keeps_payload() -> None:
    transfer = frame(0x14, [0, 1, b"t"], b"PAYLOAD")
    fields, payload = decoded(complete_frame(transfer))
    assert len(fields) == FULL_ARITY[0x14] and fields[:2] == [0, 1] and bytes(fields[2]) == b"t"
    assert payload == b"PAYLOAD"
    whole = frame(0x10, ["c"] + [None] * 8 + [{symbol("a"): "b"}])
    assert complete_frame(whole) == whole
    stream = b"AMQP\x00\x01\x00\x00" + transfer + frame(0x16, [0, True]) + b"\x00\x00\x00\x08\x02\x00\x00\x00"
    completer = FrameCompleter()
    out = b"".join(completer.feed(stream[i:i + 5]) for i in range(0, len(stream), 5))
    assert out.startswith(b"AMQP\x00\x01\x00\x00") and out.endswith(b"\x00\x00\x00\x08\x02\x00\x00\x00")
    detach = out[8 + len(complete_frame(transfer)):-8]
    assert len(decoded(detach)[0]) == 3


@pytest.mark.parametrize("make", [MemoryHubStore, "sqlite"])
def test_stream_partitions_positions_and_retention(make, tmp_path) -> None:
    store = SqliteHubStore(tmp_path / "hub.sqlite") if make == "sqlite" else make()
    for i in range(6):
        store.append_message(StoredMessage(0, "d", None, "t", {}, {}, b"x" * 100, partition=i % 2,
                                           enqueued_ms=1000 * i))
    assert [m.pseq for m in store.partition_messages(1, 0, 10)] == [0, 1, 2]
    assert store.first_pseq(0, after_seq=3) == 2 and store.first_pseq(0, after_ms=1500) == 1
    assert store.partition_info(1)[1].seq == 6
    assert store.prune(2000, 10**9) == 2  # older than the cut-off
    assert store.partition_info(0)[0] == 1
    assert store.prune(0, 250) >= 1  # over the byte budget: oldest first
    remaining = store.messages(0, 100)
    assert remaining and remaining[-1].seq == 6
    store.append_message(StoredMessage(0, "d", None, "t", {}, {}, b"y", partition=0, enqueued_ms=9000))
    assert store.partition_info(0)[1].pseq == 3  # numbers go on after retention
    store.close()


def test_c2d_queue_locks_feedback_and_limits() -> None:
    now = [1000.0]
    c2d = CloudToDevice(MemoryHubStore(), lambda d: "gen" if d == "dev" else (_ for _ in ()).throw(
        NotFound("no")), lambda: now[0])
    with pytest.raises(NotFound):
        c2d.send("ghost", b"x")
    for i in range(MAX_QUEUE_DEPTH):
        c2d.send("dev", f"m{i}".encode(), ack="full", message_id=f"id{i}")
    with pytest.raises(QueueFull):
        c2d.send("dev", b"one more")
    first, second, third = c2d.lock_next("dev", 3)
    assert [m.delivery_count for m in (first, second, third)] == [1, 1, 1]
    c2d.complete("dev", first.lock_token)
    c2d.reject("dev", second.lock_token)
    c2d.abandon("dev", third.lock_token)
    assert c2d.lock_next("dev", 1)[0].message_id == "id2" and third.delivery_count == 2
    with pytest.raises(NotFound):
        c2d.complete("dev", first.lock_token)
    batch = c2d.take_feedback()
    assert [r["statusCode"] for r in batch.records] == ["Success", "Rejected"]
    c2d.settle_feedback(batch.token, consumed=False)  # released: readable again
    again = c2d.take_feedback()
    assert [r["originalMessageId"] for r in again.records] == ["id0", "id1"]
    c2d.settle_feedback(again.token, consumed=True)
    now[0] += 3601  # past the default time to live
    assert c2d.pending("dev") == []
    expired = c2d.take_feedback(limit=100)
    assert [r["statusCode"] for r in expired.records] == ["Expired"] * (MAX_QUEUE_DEPTH - 2)
    c2d.settle_feedback(expired.token, consumed=True)
    assert c2d.take_feedback() is None
