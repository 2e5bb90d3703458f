"""The shared 127.x picker: candidates stay inside 127/8 and a port someone listens on is skipped."""

from __future__ import annotations

import ipaddress
import socket

from edgegen.common.loopback import can_bind, first_free_address, loopback_candidate


def test_candidates_are_loopback_and_distinct() -> None:
    addrs = [loopback_candidate(n) for n in range(1, 600)]
    assert len(set(addrs)) == len(addrs)
    assert all(ipaddress.ip_address(a).is_loopback for a in addrs)


def test_busy_address_is_skipped_and_none_when_all_busy() -> None:
    busy, free = loopback_candidate(997), loopback_candidate(998)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((busy, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert first_free_address([busy, free], port) == free
        assert first_free_address([busy], port) is None


def test_every_port_must_be_free() -> None:
    first, second = loopback_candidate(995), loopback_candidate(996)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((first, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((first, 0))
            other = probe.getsockname()[1]
        assert can_bind(first, other) and not can_bind(first, busy)
        assert first_free_address([first, second], other) == first
        assert first_free_address([first, second], other, busy) == second
