"""The SASL exchange in front of proton's engine (sans-I/O: bytes in, bytes out).

Why not proton's own SASL layer: without Cyrus it offers a server only ANONYMOUS and EXTERNAL, and its plugin
interface is not reachable from Python. IoT Hub's clients need more: ``uamqp`` (the Azure CLI, ``azure-iot-hub``)
insists on ``MSSBCBS`` before claims-based security, and the CLI's C2D and feedback commands use ``PLAIN`` with
``{policy}@sas.root.{hub}`` and a SAS token as the password. The exchange is three frames (mechanisms, init,
outcome); their bodies are encoded and decoded with proton's ``Data`` codec, only the 8-byte frame headers are
ours. After a successful outcome every byte (starting with the client's AMQP header) belongs to proton.

A client may also skip SASL and open with the plain AMQP header, as IoT Hub allows: the Node service SDK
(``azure-iothub``, rhea) does, and puts its token on ``$cbs`` like everyone else. Such a connection holds no
claim until it does.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

from proton import UNDESCRIBED, Array, Data, Described, symbol, ubyte, ulong

__all__ = ["AMQP_HEADER", "MECHANISMS", "SASL_HEADER", "SaslFailure", "SaslInit", "SaslServer"]

SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
MECHANISMS = ("MSSBCBS", "ANONYMOUS", "PLAIN")
MAX_FRAME = 65536  # SASL frames carry a token at most; anything bigger is not a client of ours
_MECHANISMS_CODE = 0x40
_INIT_CODE = 0x41
_OUTCOME_CODE = 0x44
_SASL_FRAME = 1


class SaslFailure(Exception):
    """The peer broke the SASL exchange; ``reply`` is what to send before closing (may be empty)."""

    def __init__(self, message: str, reply: bytes = b"") -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class SaslInit:
    mechanism: str
    initial_response: bytes
    hostname: str | None

    def plain_credentials(self) -> tuple[str, str]:
        """``authzid NUL authcid NUL password`` of a PLAIN initial response."""
        parts = self.initial_response.split(b"\x00")
        if len(parts) != 3:
            raise SaslFailure("PLAIN initial response is not authzid\\0authcid\\0password")
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")


class _State(enum.Enum):
    HEADER = "header"
    INIT = "init"
    DONE = "done"


def _frame(code: int, fields: list[object]) -> bytes:
    data = Data()
    data.put_object(Described(ulong(code), fields))
    body = bytes(data.encode())
    return struct.pack(">IBBH", 8 + len(body), 2, _SASL_FRAME, 0) + body


def mechanisms_frame(mechanisms: tuple[str, ...] = MECHANISMS) -> bytes:
    return _frame(_MECHANISMS_CODE, [Array(UNDESCRIBED, Data.SYMBOL, *(symbol(m) for m in mechanisms))])


def outcome_frame(ok: bool) -> bytes:
    return _frame(_OUTCOME_CODE, [ubyte(0 if ok else 1)])


def decode_init(body: bytes) -> SaslInit:
    data = Data()
    try:
        data.decode(body)
        value = data.get_object()
    except Exception as exc:  # proton raises its own DataException and friends
        raise SaslFailure(f"undecodable SASL frame: {exc}") from None
    if not isinstance(value, Described) or value.descriptor != _INIT_CODE or not isinstance(value.value, list):
        raise SaslFailure("expected sasl-init")
    fields = [*value.value, None, None, None]
    mechanism, response, hostname = fields[:3]
    if not isinstance(mechanism, str):
        raise SaslFailure("sasl-init without a mechanism")
    if isinstance(response, str):  # some clients send a string where the spec says binary
        response = response.encode()
    if response is not None and not isinstance(response, bytes | bytearray | memoryview):
        raise SaslFailure("sasl-init initial-response is not binary")
    return SaslInit(str(mechanism), bytes(response or b""), hostname if isinstance(hostname, str) else None)


class SaslServer:
    """Feed it what the client sends; it answers with bytes to write.

    ``authenticate(init)`` decides the outcome (True: ok). When ``done`` is set, ``rest`` holds the bytes that
    followed the exchange (the start of the AMQP connection) and ``init`` what the client chose (None: the
    client skipped SASL; ``rest`` then starts with its AMQP header).
    """

    def __init__(self, authenticate: Callable[[SaslInit], bool]) -> None:
        self._authenticate = authenticate
        self._buffer = b""
        self._state = _State.HEADER
        self.init: SaslInit | None = None
        self.rest = b""

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, data: bytes) -> bytes:
        if self._state is _State.DONE:
            raise SaslFailure("SASL exchange already finished")
        self._buffer += data
        out = b""
        if self._state is _State.HEADER:
            if len(self._buffer) < 8:
                if not SASL_HEADER.startswith(self._buffer) and not AMQP_HEADER.startswith(self._buffer):
                    raise SaslFailure("not an AMQP SASL header", SASL_HEADER)
                return out
            if self._buffer.startswith(AMQP_HEADER):  # no SASL: proton takes it from the header on
                self._state = _State.DONE
                self.rest, self._buffer = self._buffer, b""
                return out
            header, self._buffer = self._buffer[:8], self._buffer[8:]
            if header != SASL_HEADER:
                # answer with the header we want, as the spec says, then close
                raise SaslFailure(f"protocol header {header!r}: this endpoint speaks AMQP 1.0 (with or without "
                                  "SASL) over TLS", SASL_HEADER)
            out += SASL_HEADER + mechanisms_frame()
            self._state = _State.INIT
        while self._state is _State.INIT and len(self._buffer) >= 8:
            size, doff, ftype = struct.unpack(">IBB", self._buffer[:6])
            if size < 8 or size > MAX_FRAME or doff < 2 or doff * 4 > size:
                raise SaslFailure(f"bad SASL frame header (size {size}, doff {doff})")
            if ftype != _SASL_FRAME:
                raise SaslFailure(f"frame type {ftype} during SASL")
            if len(self._buffer) < size:
                break
            body, self._buffer = self._buffer[doff * 4:size], self._buffer[size:]
            if not body:  # an empty frame (heartbeat)
                continue
            init = decode_init(body)
            if init.mechanism not in MECHANISMS:
                raise SaslFailure(f"mechanism {init.mechanism!r} was not offered", out + outcome_frame(False))
            ok = self._authenticate(init)
            if not ok:
                raise SaslFailure(f"{init.mechanism} authentication failed", out + outcome_frame(False))
            self.init = init
            out += outcome_frame(True)
            self._state = _State.DONE
            self.rest, self._buffer = self._buffer, b""
        return out
