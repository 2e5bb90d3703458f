"""The one event-loop-in-a-thread harness: servers under test run on a private asyncio loop while the test (and
the real SDK clients it drives, which block) stay on the main thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tests.support.waits import LOOP_CALL, LOOP_JOIN

T = TypeVar("T")

__all__ = ["LoopThread"]


class LoopThread:
    """``with LoopThread("name") as lt:`` — a loop running forever in a daemon thread; ``run`` a coroutine on it,
    ``call`` a plain function on it (both wait for the result). Leaving stops the loop, joins and closes it."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, daemon=True, name=name)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(LOOP_JOIN)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = LOOP_CALL) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = LOOP_CALL) -> T:
        async def wrap() -> T:
            return fn(*args)

        return self.run(wrap(), timeout)
