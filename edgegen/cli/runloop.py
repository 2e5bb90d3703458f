"""The long-running commands' stop switch: an asyncio.Event that SIGINT and SIGTERM set.

Imported only inside those commands (never at ``edgegen --help`` time).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An Event set by Ctrl-C or SIGTERM; call it inside the running loop. Where the loop cannot install
    signal handlers (NotImplementedError, e.g. Windows) the Event is returned anyway and Ctrl-C raises as usual."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
