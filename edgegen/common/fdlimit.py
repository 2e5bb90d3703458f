"""Open files: raise the soft limit to the hard one, and how many connections a server may hold within it.

Every connection is a file descriptor. A server that meets the limit can no longer accept anything (not even its
REST API's clients) and cannot tell the client why, so servers stop taking connections ``RESERVE`` descriptors
short of it (stores, listeners, logs, the REST API and the connections being refused still fit) and answer
the ones beyond politely (MQTT: CONNACK "server unavailable").
"""

from __future__ import annotations

import resource

__all__ = ["RESERVE", "connection_capacity", "nofile_limits", "raise_nofile_limit"]

RESERVE = 64


def nofile_limits() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE; ``RLIM_INFINITY`` hard limits read as the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = soft
    return int(soft), int(hard)


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft limit to the hard one (always allowed); return (soft before, soft now)."""
    before, hard = nofile_limits()
    if before < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        except (OSError, ValueError):
            return before, before
    return before, nofile_limits()[0]


def connection_capacity(soft: int | None = None, reserve: int = RESERVE) -> int:
    """How many client connections fit in ``soft`` open files (default: the current soft limit)."""
    if soft is None:
        soft = nofile_limits()[0]
    return max(1, soft - max(reserve, soft // 20))
