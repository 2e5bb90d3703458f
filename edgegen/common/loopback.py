"""Free 127.x.y.z addresses on this machine: the one picker the device runtime and the tests share.

The device SDK's MQTT port (8883) is fixed, so parallel edge hubs each need their own loopback address.
Candidates are spread by pid so parallel processes do not collide. Nothing here ever leaves 127/8.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

__all__ = ["can_bind", "first_free_address", "loopback_candidate"]


def loopback_candidate(n: int) -> str:
    """The ``n``-th candidate address of this process: 127.<pid-based>.<n // 250>.<n % 250 + 2>."""
    base = os.getpid() % 200 + 20
    return f"127.{base}.{(n // 250) % 250}.{n % 250 + 2}"


def first_free_address(addresses: Iterable[str], *ports: int) -> str | None:
    """The first of ``addresses`` where every one of ``ports`` can be bound (tried lazily, in order), or None."""
    for addr in addresses:
        if all(can_bind(addr, port) for port in ports):
            return addr
    return None


def can_bind(addr: str, port: int) -> bool:
    """Whether a TCP socket can bind ``addr:port`` right now (nobody listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        return True
