"""The threads ``init()`` and ``run()`` execute in: a fixed pool of daemon threads.

Like ``ThreadPoolExecutor`` (which ``loop.run_in_executor`` accepts as well), except that the threads are daemons:
a ``run()`` that never returns cannot keep the process from exiting after a stop (``ThreadPoolExecutor`` joins its
threads at interpreter exit). With one thread (the default, as azmlinfsrv's one worker), ``init()`` and every
``run()`` share a thread, which frameworks with thread-bound state (TensorFlow 1 graphs and sessions) expect.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["RunThreads"]

P = ParamSpec("P")
T = TypeVar("T")


class RunThreads(Executor):
    def __init__(self, count: int = 1, name: str = "run") -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
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
                if item is not None:
                    item[0].cancel()
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
