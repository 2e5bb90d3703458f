"""monitor — relays every message it receives to output ``upstream`` (routed to ``$upstream``) with its origin.

A standalone IoT Edge module (azure-iot-device only). Each message received on any input is forwarded with the
body, content type/encoding, message id and application properties unchanged, plus:
  originDeviceId / originModuleId   the sender, from the connection properties edgeHub adds ($.cdid / $.cmid)
  receivedTime                      when the monitor got it (ISO 8601, UTC)
  sequenceNumber                    per origin (device/module), from 1
  inputName                         the input it arrived on
A message that cannot be forwarded is retried with backoff, in order, until it goes (never dropped silently).
Every ``heartbeatSeconds`` (twin desired; env HEARTBEAT_SECONDS, default 60; 0 = off) a heartbeat with per-origin
counts goes to ``upstream`` with property ``messageType=heartbeat``.
Environment: OUTPUT_NAME (default upstream), MESSAGE_LOG_LEVEL for the one-line summary per message (default INFO;
twin desired ``messageLogLevel``), LOG_LEVEL (default INFO), REPORT_INTERVAL seconds (default 10),
DRAIN_SECONDS (default 8): on SIGTERM the monitor unsubscribes from its inputs (edgeHub keeps what follows for its
next run), forwards everything it has already taken (the SDK acknowledges a message on receipt, so a message taken
and not forwarded would be lost) for up to DRAIN_SECONDS, and logs the count and ids of anything it could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.iot.device import Message
from azure.iot.device.aio import IoTHubModuleClient

log = logging.getLogger("monitor")
MAX_BACKOFF = 30.0
DRAIN_SECONDS = 8.0  # the runtime (docker stop, edgegen's agent) sends SIGKILL 10 s after SIGTERM


async def sdk_call(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """Await an SDK call for at most ``timeout`` s without cancelling it: a cancelled SDK future is completed
    later from the SDK's thread anyway (``InvalidStateError``), so a late call is left to finish or to be cancelled
    by ``client.shutdown()``. Raises TimeoutError when it did not finish in time."""
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
    broker's UNSUBACK): they are acknowledged already, so they must be forwarded like any other. azure-iot-device
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


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def level_of(name: Any, default: int) -> int:
    value = logging.getLevelName(str(name).upper()) if name else default
    return value if isinstance(value, int) else default


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
class Pending:
    message: Message
    origin: str
    attempts: int = 0


class Monitor:
    def __init__(self, client: IoTHubModuleClient) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.output = os.environ.get("OUTPUT_NAME") or "upstream"
        self.message_level = level_of(os.environ.get("MESSAGE_LOG_LEVEL"), logging.INFO)
        self.heartbeat_seconds = float(os.environ.get("HEARTBEAT_SECONDS") or 60)
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.received: Counter[str] = Counter()  # per origin
        self.forwarded = 0
        self.retries = 0
        self.rejected = 0
        self.heartbeats = 0
        self.current: Pending | None = None  # the message being forwarded
        self.stop = asyncio.Event()  # SIGTERM / SIGINT
        self.closing = asyncio.Event()  # the drain is over: stop retrying
        self.heartbeat_changed = asyncio.Event()

    # -- SDK thread: enqueue only -----------------------------------------------------------------------------------
    def on_message(self, message: Message) -> None:
        try:
            self.loop.call_soon_threadsafe(self.accept, message, now())
        except RuntimeError:  # the loop is closed (after shutdown): cannot happen before client.shutdown()
            print(f"monitor: message {message.message_id} arrived after shutdown and was not forwarded",
                  file=sys.stderr)

    def on_twin_patch(self, patch: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.apply_desired, patch)

    # -- loop -------------------------------------------------------------------------------------------------------
    def apply_desired(self, desired: dict[str, Any]) -> None:
        if "heartbeatSeconds" in desired:
            try:
                value = float(desired["heartbeatSeconds"])
                if value < 0:
                    raise ValueError
                self.heartbeat_seconds = value
                log.info("heartbeatSeconds = %s", value)
                self.heartbeat_changed.set()
            except (TypeError, ValueError):
                log.error("ignoring twin desired heartbeatSeconds=%r: not a number >= 0", desired["heartbeatSeconds"])
        if "messageLogLevel" in desired:
            self.message_level = level_of(desired["messageLogLevel"], self.message_level)

    def accept(self, message: Message, received_time: str) -> None:
        props = message.custom_properties
        device = props.pop("$.cdid", None) or "unknown"
        module = props.pop("$.cmid", None)
        origin = f"{device}/{module}" if module else device
        self.received[origin] += 1
        props["originDeviceId"] = device
        if module:
            props["originModuleId"] = module
        props["receivedTime"] = received_time
        props["sequenceNumber"] = str(self.received[origin])
        if message.input_name:
            props["inputName"] = message.input_name
        message.output_name = None
        size = len(message.data) if isinstance(message.data, (bytes, str)) else 0
        log.log(self.message_level, "%s #%d from %s via %s: %d bytes %s", message.message_id or "-",
                self.received[origin], origin, message.input_name, size, message.content_type or "")
        self.queue.put_nowait(Pending(message, origin))

    async def forward(self) -> None:
        """One message at a time, in order; a failed send is retried with backoff until it goes or the drain at
        shutdown is over (``closing``); the message is then left in ``current`` for the final account."""
        while not self.closing.is_set():
            self.current = item = await self.queue.get()
            delay = 0.2
            while True:
                try:
                    await self.client.send_message_to_output(item.message, self.output)
                    self.forwarded += 1
                    break
                except ValueError as exc:  # the SDK refuses it (over 256 KB): retrying cannot help
                    self.rejected += 1
                    log.error("cannot forward %s from %s, rejected by the client: %s; body starts %.200r",
                              item.message.message_id or "-", item.origin, exc, item.message.data)
                    break
                except Exception as exc:
                    if self.closing.is_set():
                        return
                    item.attempts += 1
                    self.retries += 1
                    log.warning("forwarding %s from %s failed (attempt %d, %d queued behind it): %s; retrying in "
                                "%.1f s", item.message.message_id or "-", item.origin, item.attempts,
                                self.queue.qsize(), exc, delay)
                    try:
                        await asyncio.wait_for(self.closing.wait(), delay)
                        return
                    except TimeoutError:
                        pass
                    delay = min(delay * 2, MAX_BACKOFF)
            self.current = None

    def unforwarded(self) -> list[Pending]:
        return ([self.current] if self.current else []) + list(self.queue._queue)  # type: ignore[attr-defined]

    def status(self) -> dict[str, Any]:
        return {"received": sum(self.received.values()), "forwarded": self.forwarded, "retries": self.retries,
                "rejected": self.rejected,
                "pending": len(self.unforwarded()), "perOrigin": dict(self.received),
                "heartbeats": self.heartbeats, "heartbeatSeconds": self.heartbeat_seconds}

    async def heartbeat(self) -> None:
        while True:
            self.heartbeat_changed.clear()
            waiter = asyncio.ensure_future(self.heartbeat_changed.wait())
            timeout = self.heartbeat_seconds if self.heartbeat_seconds > 0 else None
            done, _ = await asyncio.wait([waiter], timeout=timeout)
            waiter.cancel()
            if done or self.heartbeat_seconds <= 0:
                continue  # the period changed: start over with the new one
            self.heartbeats += 1
            body = {"type": "heartbeat", "time": now(), **self.status()}
            msg = Message(json.dumps(body), content_encoding="utf-8", content_type="application/json")
            msg.custom_properties["messageType"] = "heartbeat"
            msg.custom_properties["sequenceNumber"] = str(self.heartbeats)
            # Through the same queue as everything else, so it is retried the same way.
            self.queue.put_nowait(Pending(msg, "monitor"))

    async def report(self, timeout: float = 10) -> None:
        try:
            await sdk_call(self.client.patch_twin_reported_properties({"monitor": self.status()}), timeout)
        except Exception as exc:
            log.warning("could not report twin properties: %s", exc)

    async def reporter(self, interval: float) -> None:
        """Until SIGTERM; stopped by the event, never cancelled inside an SDK call."""
        last: Any = None
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), interval)
                return
            except TimeoutError:
                pass
            current = self.status()
            if current != last:
                await self.report()
                last = current

    async def drain(self, drain_seconds: float) -> None:
        """SIGTERM: take no new input, forward what was taken, for at most ``drain_seconds``."""
        deadline = time.monotonic() + drain_seconds
        log.info("stopping: taking no new input; forwarding the %d message(s) taken and not yet forwarded "
                 "(up to %g s)", len(self.unforwarded()), drain_seconds)
        try:  # unsubscribe; messages the broker still has for us wait in edgeHub for the next run
            await in_thread(lambda: setattr(self.client, "on_message_received", None), max(0.5, drain_seconds))
        except Exception as exc:
            log.warning("could not unsubscribe from the inputs (%s: %s); forwarding what was taken anyway",
                        type(exc).__name__, exc)
        while True:
            for message in leftover_inputs(self.client):
                self.accept(message, now())
            if not self.unforwarded() or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)


async def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    patch_paho_tls_eof()
    client = IoTHubModuleClient.create_from_edge_environment()
    try:
        await client.connect()
    except Exception as exc:
        log.error("cannot connect to edgeHub (%s: %s); exiting so the restart policy applies", type(exc).__name__, exc)
        await client.shutdown()
        return 1
    monitor = Monitor(client)
    drain_seconds = float(os.environ.get("DRAIN_SECONDS") or DRAIN_SECONDS)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, monitor.stop.set)
    forwarder: asyncio.Task[None] | None = None
    others: list[asyncio.Task[None]] = []
    try:
        try:
            twin = await sdk_call(client.get_twin(), 30)
            monitor.apply_desired(twin.get("desired", {}))
        except TimeoutError:
            log.warning("no twin reply within 30 s; starting with the environment's settings")
        await loop.run_in_executor(None, setattr, client, "on_twin_desired_properties_patch_received",
                                   monitor.on_twin_patch)
        await loop.run_in_executor(None, setattr, client, "on_message_received", monitor.on_message)
        forwarder = asyncio.ensure_future(monitor.forward())
        others = [asyncio.ensure_future(monitor.heartbeat()),
                  asyncio.ensure_future(monitor.reporter(float(os.environ.get("REPORT_INTERVAL") or 10)))]
        await monitor.report()
        log.info("monitor started: forwarding every input to output %s, heartbeat every %s s", monitor.output,
                 monitor.heartbeat_seconds or "never")
        await monitor.stop.wait()
        others[0].cancel()  # no more heartbeats; the reporter ends on its own (never cancelled inside a call)
        await monitor.drain(drain_seconds)
        monitor.closing.set()
        await monitor.report(timeout=1)
    finally:
        monitor.stop.set()
        monitor.closing.set()
        try:  # completes (or cancels) every SDK operation still pending, so nothing is left to cancel below
            await sdk_call(client.shutdown(), 10)
        except Exception as exc:
            log.warning("shutdown: %s", exc)
        if forwarder is not None:
            await asyncio.wait({forwarder, *others}, timeout=2)
            for task in (forwarder, *others):
                task.cancel()  # only ever waiting on the queue or a timer by now
    for message in leftover_inputs(client):  # taken during shutdown: cannot be forwarded any more
        monitor.accept(message, now())
    left = monitor.unforwarded()
    if left:
        log.error("stopped with %d message(s) taken but not forwarded (edgeHub did not take them within %g s): %s",
                  len(left), drain_seconds, ", ".join(f"{p.message.message_id or '-'} from {p.origin}" for p in left))
    else:
        log.info("drained: every message taken was forwarded")
    log.info("stopped: %s", monitor.status())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
