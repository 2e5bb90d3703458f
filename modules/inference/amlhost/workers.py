"""The threads ``init()`` and ``run()`` execute in: a fixed pool of daemon threads.

Like ``ThreadPoolExecutor`` (which ``loop.run_in_executor`` accepts as well), except that the threads are daemons:
a ``run()`` that never returns cannot keep the process from exiting after a stop (``ThreadPoolExecutor`` joins its
threads at interpreter exit). With one thread (the default, as azmlinfsrv's one worker), ``init()`` and every
``run()`` share a thread, which frameworks with thread-bound state (TensorFlow 1 graphs and sessions) expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Generic, ParamSpec, TypeVar

__all__ = ["Job", "RunThreads"]

P = ParamSpec("P")
T = TypeVar("T")


class Job(Generic[T]):
    """A call handed to a thread: its future, and when the thread started it (``time.monotonic()``; None while it
    waits for a free thread), so a timeout can count from the start of the call, not from the queue."""

    __slots__ = ("future", "started")

    def __init__(self, future: asyncio.Future[T]) -> None:
        self.future = future
        self.started: float | None = None


class RunThreads(Executor):
    def __init__(self, count: int = 1, name: str = "run") -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any] | asyncio.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue())
        self._closed = False
        self._busy = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: Future[T] = Future()
        self._work.put((future, lambda: fn(*args, **kwargs)))
        return future

    def call_soon(self, loop: asyncio.AbstractEventLoop, fn: Callable[[Any], T], arg: Any) -> Job[T]:
        """``fn(arg)`` in a thread, as an asyncio future settled straight from that thread (one wake-up of the loop,
        none of ``run_in_executor``'s chaining). A future already done (a timeout gave up on it) stays as it is."""
        if self._closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        job: Job[T] = Job(loop.create_future())

        def call() -> T:
            job.started = time.monotonic()
            return fn(arg)

        self._work.put((job.future, call))
        return job

    def busy(self) -> int:
        """How many calls are running now."""
        return self._busy

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None and isinstance(item[0], Future):
                    item[0].cancel()
                elif item is not None:
                    with contextlib.suppress(RuntimeError):  # its loop is closed already
                        item[0].get_loop().call_soon_threadsafe(item[0].cancel)
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, call = item
            if isinstance(future, asyncio.Future):
                self._run_for_loop(future, call)
                continue
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._busy += 1
            try:
                result = call()
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                with self._lock:
                    self._busy -= 1

    def _run_for_loop(self, future: asyncio.Future[Any], call: Callable[[], Any]) -> None:
        with self._lock:
            self._busy += 1
        try:
            result, error = call(), None
        except BaseException as exc:  # handed to the loop
            result, error = None, exc
        finally:
            with self._lock:
                self._busy -= 1
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            future.get_loop().call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
