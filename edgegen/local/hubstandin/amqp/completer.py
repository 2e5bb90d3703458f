"""Whole performatives on the way out (sans-I/O: bytes in, bytes out).

AMQP lets an encoder leave out a list's trailing null fields, and proton does. ``azure-eventhub``'s pure-Python
AMQP reads performatives by index (``begin`` field 7, ``transfer`` field 11 for the payload, ``detach`` field
2 …) and fails on shorter lists, while the service it was written against always sends them whole. So each
frame proton writes is re-encoded with its list padded to the performative's full arity: decoded and encoded
by proton's own ``Data`` codec; only the 8-byte frame header is ours.
"""

from __future__ import annotations

import struct

from proton import Data, Described

__all__ = ["FULL_ARITY", "FrameCompleter"]

# descriptor code -> number of fields: open, begin, attach, flow, transfer, disposition, detach, end, close
FULL_ARITY = {0x10: 10, 0x11: 8, 0x12: 14, 0x13: 11, 0x14: 11, 0x15: 6, 0x16: 3, 0x17: 1, 0x18: 1}


def complete_frame(frame: bytes) -> bytes:
    _size, doff, ftype, channel = struct.unpack(">IBBH", frame[:8])
    body = frame[doff * 4:]
    if ftype != 0 or not body:
        return frame
    data = Data()
    consumed = data.decode(body)
    value = data.get_object()
    if not isinstance(value, Described) or not isinstance(value.value, list):
        return frame
    arity = FULL_ARITY.get(int(value.descriptor))
    fields = value.value
    if arity is None or len(fields) >= arity:
        return frame
    out = Data()
    out.put_object(Described(value.descriptor, fields + [None] * (arity - len(fields))))
    performative = bytes(out.encode())
    rest = body[consumed:]
    return struct.pack(">IBBH", 8 + len(performative) + len(rest), 2, 0, channel) + performative + rest


class FrameCompleter:
    """Feed proton's output; get it back with every performative whole. Partial frames wait for the rest."""

    def __init__(self) -> None:
        self._buffer = b""
        self._header = 8  # proton writes the AMQP protocol header first

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer + data
        out = []
        if self._header:
            n = min(self._header, len(buffer))
            out.append(buffer[:n])
            buffer = buffer[n:]
            self._header -= n
        while len(buffer) >= 8:
            size = struct.unpack(">I", buffer[:4])[0]
            if len(buffer) < size:
                break
            out.append(complete_frame(buffer[:size]))
            buffer = buffer[size:]
        self._buffer = buffer
        return b"".join(out)
