"""A tiny blocking MQTT client built on our codec, for tests that need to misbehave (raw TLS socket)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

from edgegen.local.mqtt.codec import Connack, Connect, Packet, PacketReader, encode


class RawClient:
    def __init__(self, host: str, ca_file: Path, port: int = 8883, timeout: float = 5.0) -> None:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.reader = PacketReader()
        self.pending: list[Packet] = []

    def send(self, *packets: Packet) -> None:
        self.sock.sendall(b"".join(encode(p) for p in packets))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float = 5.0) -> Packet:
        """The next packet; raises ConnectionError when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no packet from the server")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except (ssl.SSLError, OSError) as exc:
                raise ConnectionError(str(exc)) from exc
            if not data:
                raise ConnectionError("server closed the connection")
            self.pending.extend(self.reader.feed(data))
        return self.pending.pop(0)

    def connect(self, client_id: str, username: str | None, password: str | None, *, clean: bool = False,
                keepalive: int = 60) -> Connack:
        self.send(Connect(client_id, clean, keepalive, username, password.encode() if password else None))
        ack = self.recv()
        assert isinstance(ack, Connack), ack
        return ack

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                self.recv(timeout)
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
