"""Ordered, pipelined sends to one module output, and the SDK helpers a clean SIGTERM needs.

``OrderedSender`` keeps the order of an output's messages across reconnects: while the client is connected it lets up
to ``window`` sends await the broker's ack at once (MQTT keeps them in order on one connection); when a send fails,
nothing new starts until the failed ones went again, in their order, one at a time (stop-and-wait) while the client
is disconnected or retrying. A send the SDK refuses outright (``ValueError``: over 256 KB) cannot succeed later and is
counted and logged; any other failure is retried with backoff until it goes or the drain at shutdown is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from azure.iot.device import Message
from azure.iot.device.aio import IoTHubModuleClient

__all__ = ["OrderedSender", "in_thread", "leftover_inputs", "patch_paho_tls_eof", "sdk_call"]

log = logging.getLogger("inference")
MAX_BACKOFF = 30.0


async def sdk_call(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """Await an SDK call for at most ``timeout`` s without cancelling it: the SDK completes its future from its own
    thread even after a cancel (``InvalidStateError``), so a late call is left to finish or to be cancelled by
    ``client.shutdown()``. Raises TimeoutError when it did not finish in time."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" noise
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return task.result()


async def in_thread(function: Callable[[], Any], timeout: float) -> Any:
    """Run a blocking SDK call (handler setters wait for the broker) in a daemon thread, so a call that never
    returns (edgeHub gone) cannot hold up the interpreter's exit the way the default executor would."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error else future.set_result(result)

    def target() -> None:
        try:
            result, error = function(), None
        except BaseException as exc:  # handed to the loop
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, daemon=True, name="sdk-call").start()
    return await asyncio.wait_for(asyncio.shield(future), timeout)


def leftover_inputs(client: IoTHubModuleClient) -> list[Message]:
    """Input messages the SDK took after the handler was removed (between the handler's runner stopping and the
    broker's UNSUBACK): they are acknowledged already, so they must be processed like any other. azure-iot-device
    2.14 keeps them in its unified inbox; an SDK without it yields nothing."""
    try:
        inbox = client._inbox_manager.unified_message_inbox._queue.sync_q  # type: ignore[attr-defined]
    except AttributeError:
        return []
    found: list[Message] = []
    while True:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return found
        if isinstance(item, Message):
            found.append(item)


def patch_paho_tls_eof() -> None:
    """paho-mqtt 1.6 (pinned < 2 by azure-iot-device 2.14) treats only ``ConnectionError`` as a lost connection in
    its network loop: an ``ssl.SSLEOFError`` from writing to a TLS socket whose broker just went away kills paho's
    thread, and the SDK then believes it is connected forever (no reconnect; sends never complete). paho 2 fixed it.
    Turn TLS errors on an established connection (``SSLWant*`` never get here: paho maps them to BlockingIOError)
    into ``ConnectionResetError`` so paho reports the loss and the SDK reconnects."""
    import ssl

    import paho.mqtt
    import paho.mqtt.client as paho_client

    cls = paho_client.Client
    if not paho.mqtt.__version__.startswith("1.") or getattr(cls, "_tls_eof_patched", False):
        return

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any) -> Any:
            try:
                return method(self, *args)
            except ssl.SSLError as exc:  # EOF, BAD_LENGTH after a broken write …: the connection is unusable
                raise ConnectionResetError(f"TLS connection failed: {exc}") from exc
        return call

    cls._sock_send = wrap(cls._sock_send)  # type: ignore[method-assign]
    cls._sock_recv = wrap(cls._sock_recv)  # type: ignore[method-assign]
    cls._tls_eof_patched = True  # type: ignore[attr-defined]


@dataclass
class Outgoing:
    message: Message
    outcome: str  # the counter to bump once the broker has it ("scored" / "failed")
    attempts: int = 0


class OrderedSender:
    def __init__(self, client: IoTHubModuleClient, output: str, on_sent: Callable[[str], None],
                 on_rejected: Callable[[], None], window: int = 64) -> None:
        self.client = client
        self.output = output
        self.on_sent = on_sent
        self.on_rejected = on_rejected
        self.window = window
        self.waiting: deque[Outgoing] = deque()  # not started yet, in order
        self.in_flight: deque[tuple[Outgoing, asyncio.Future[None]]] = deque()  # started, in order
        self.retrying = False  # after a failure: one at a time until a send succeeds
        self.closing = asyncio.Event()  # the drain is over: start nothing, retry nothing
        self.wakeup = asyncio.Event()
        self.retries = 0
        self.sequence = 0  # stamped on every message as ``outputSequence`` (per output, from 1)

    def put(self, message: Message, outcome: str) -> None:
        self.sequence += 1
        message.custom_properties["outputSequence"] = str(self.sequence)
        self.waiting.append(Outgoing(message, outcome))
        self.wakeup.set()

    def backlog(self) -> list[Outgoing]:
        return [item for item, _ in self.in_flight] + list(self.waiting)

    def _limit(self) -> int:
        return self.window if self.client.connected and not self.retrying else 1

    def _start(self) -> None:
        while self.waiting and len(self.in_flight) < self._limit() and not self.closing.is_set():
            item = self.waiting.popleft()
            task = asyncio.ensure_future(self.client.send_message_to_output(item.message, self.output))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self.in_flight.append((item, task))

    def _settled(self, item: Outgoing, task: asyncio.Future[None]) -> bool:
        """Account for a finished send; False when it must be sent again."""
        exc = task.exception()
        if exc is None:
            self.on_sent(item.outcome)
            return True
        if isinstance(exc, ValueError):  # the SDK refuses it (over 256 KB): retrying cannot help
            self.on_rejected()
            log.error("cannot send to output %s, rejected by the client: %s; message %s: %.200r", self.output, exc,
                      item.message.correlation_id, item.message.data)
            return True
        item.attempts += 1
        return False

    async def run(self) -> None:
        delay = 0.2
        while True:
            self._start()
            if not self.in_flight:
                if self.closing.is_set():
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            item, task = self.in_flight[0]
            if not task.done():  # wait for the head's ack (never cancel an SDK call) or for new work to start
                self.wakeup.clear()
                more = asyncio.ensure_future(self.wakeup.wait())
                await asyncio.wait({task, more}, return_when=asyncio.FIRST_COMPLETED)
                more.cancel()
                if not task.done():
                    continue
            self.in_flight.popleft()
            if self._settled(item, task):
                if self.retrying and task.exception() is None:
                    self.retrying = False
                    delay = 0.2
                continue
            # A failure: let the rest of the window settle, then send the failed ones again first, in order.
            failed = [item]
            rest = list(self.in_flight)
            self.in_flight.clear()
            if rest:
                await asyncio.wait({t for _, t in rest})
            for other, other_task in rest:
                if not self._settled(other, other_task):
                    failed.append(other)
                elif other_task.exception() is None:
                    log.warning("output %s: message %s was acked while an earlier one failed", self.output,
                                other.message.correlation_id)
            self.waiting.extendleft(reversed(failed))
            self.retrying = True
            self.retries += 1
            if self.closing.is_set():
                return
            log.warning("send to output %s failed (%s: %s); %d message(s) wait; retrying in order in %.1f s",
                        self.output, type(task.exception()).__name__, task.exception(), len(self.waiting), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), delay)
            delay = min(delay * 2, MAX_BACKOFF)
