"""monitor --timeout counts from the last message shown: a stream that -d/-m filter out entirely still ends."""

from __future__ import annotations

import queue
import threading
from typing import Any

from edgegen.hub.monitor import FeedMessage, MonitorFilter, show_messages


class _Stream:
    """Messages the way LocalFeed hands them over (next_message with a timeout), from a thread, every 50 ms."""

    def __init__(self, device: str, n: int) -> None:
        self.inbox: queue.Queue[FeedMessage] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, args=(device, n), daemon=True)
        self.thread.start()

    def _send(self, device: str, n: int) -> None:
        for i in range(n):
            self.inbox.put(FeedMessage(i, device, "m", "", {"message_id": str(i)}, {}, b"{}"))
            if self.stop.wait(0.05):
                return

    def next_message(self, timeout: float | None) -> FeedMessage | None:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None


def test_timeout_fires_while_every_message_is_filtered_out() -> None:
    shown: list[dict[str, Any]] = []
    stream = _Stream("other-device", 2000)  # a message every 50 ms for 100 s, none of them for cam-*
    count = show_messages(stream, MonitorFilter(device="cam-*"), timeout=1.0, count=None, on_event=shown.append)
    assert count == 0 and shown == []
    assert stream.thread.is_alive()  # it returned while messages were still arriving: the timeout ended it
    stream.stop.set()


def test_each_shown_message_restarts_the_timeout_and_count_stops() -> None:
    shown: list[dict[str, Any]] = []
    assert show_messages(_Stream("cam-1", 30), MonitorFilter(device="cam-*"), timeout=1.0, count=None,
                         on_event=shown.append) == 30
    assert show_messages(_Stream("cam-1", 30), MonitorFilter(), timeout=5.0, count=3,
                         on_event=shown.append) == 3
