"""Which TCP sockets processes listen on, from /proc (Linux): to prove that nothing of ours listens beyond
127.0.0.0/8 (or ::1). Reading other processes' fds needs the same user or root."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Listener", "beyond_loopback", "listeners_of", "listening", "process_tree"]

Listener = tuple[str, int, int]  # address, port, pid
_LISTEN = "0A"


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # IPv6: four 32-bit words, each in host (little-endian) order
    return str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))


def listening() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every TCP socket in LISTEN state in this network namespace."""
    out: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                addr, port = fields[1].rsplit(":", 1)
                out[int(fields[9])] = (_address(addr), int(port, 16))
    return out


def process_tree(roots: Iterable[int]) -> set[int]:
    """``roots`` and every process descending from them."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = {p for p in roots if p in parents}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree and pid not in tree}
        tree |= more
        grew = bool(more)
    return tree


def listeners_of(pids: Iterable[int]) -> list[Listener]:
    """The TCP listening sockets the processes ``pids`` hold."""
    table = listening()
    found: list[Listener] = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in table:
                    found.append((*table[inode], pid))
    return found


def beyond_loopback(listeners: Iterable[Listener]) -> list[Listener]:
    """The listeners reachable from other hosts: any address outside 127.0.0.0/8 and ::1 (including 0.0.0.0/::)."""
    out = []
    for addr, port, pid in listeners:
        ip = ipaddress.ip_address(addr)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            out.append((addr, port, pid))
    return out
