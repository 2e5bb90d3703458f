"""Loopback addresses and ports for tests. Everything binds to 127.x; nothing else is ever contacted."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from edgegen.common.loopback import first_free_address, loopback_candidate

__all__ = ["closed_port", "free_loopback_address", "free_port", "wait_for_port"]

_counter = itertools.count(1)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: bound here and never listened on, so no other
    process (parallel test runs, other servers) can take it between choosing it and using it, as with free_port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield int(s.getsockname()[1])


def free_loopback_address(port: int = 8883, *more: int) -> str:
    """A 127.x.y.z address whose ``port`` (and ``more`` ports) are free (the device SDK's MQTT port 8883 is fixed).

    Addresses are spread by pid so parallel test runs do not collide.
    """
    addr = first_free_address((loopback_candidate(next(_counter)) for _ in range(500)), port, *more)
    if addr is None:
        raise RuntimeError(f"no free 127.x address for port {port}")
    return addr


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)
