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
twin desired ``messageLogLevel``), LOG_LEVEL (default INFO), REPORT_INTERVAL seconds (default 10).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.iot.device import Message
from azure.iot.device.aio import IoTHubModuleClient

log = logging.getLogger("monitor")
MAX_BACKOFF = 30.0


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def level_of(name: Any, default: int) -> int:
    value = logging.getLevelName(str(name).upper()) if name else default
    return value if isinstance(value, int) else default


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
        self.in_flight = False
        self.stop = asyncio.Event()
        self.heartbeat_changed = asyncio.Event()

    # -- SDK thread: enqueue only -----------------------------------------------------------------------------------
    def on_message(self, message: Message) -> None:
        self.loop.call_soon_threadsafe(self.accept, message, now())

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
        """One message at a time, in order; a failed send is retried with backoff until it goes."""
        while True:
            item = await self.queue.get()
            self.in_flight = True
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
                    item.attempts += 1
                    self.retries += 1
                    log.warning("forwarding %s from %s failed (attempt %d, %d queued behind it): %s; retrying in "
                                "%.1f s", item.message.message_id or "-", item.origin, item.attempts,
                                self.queue.qsize(), exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
            self.in_flight = False

    def status(self) -> dict[str, Any]:
        return {"received": sum(self.received.values()), "forwarded": self.forwarded, "retries": self.retries,
                "rejected": self.rejected,
                "pending": self.queue.qsize() + int(self.in_flight), "perOrigin": dict(self.received),
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

    async def report(self) -> None:
        try:
            await asyncio.wait_for(self.client.patch_twin_reported_properties({"monitor": self.status()}), 10)
        except Exception as exc:
            log.warning("could not report twin properties: %s", exc)

    async def reporter(self, interval: float) -> None:
        last: Any = None
        while True:
            await asyncio.sleep(interval)
            current = self.status()
            if current != last:
                await self.report()
                last = current


async def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    client = IoTHubModuleClient.create_from_edge_environment()
    try:
        await client.connect()
    except Exception as exc:
        log.error("cannot connect to edgeHub (%s: %s); exiting so the restart policy applies", type(exc).__name__, exc)
        await client.shutdown()
        return 1
    monitor = Monitor(client)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, monitor.stop.set)
    tasks: list[asyncio.Task[None]] = []
    try:
        try:
            twin = await asyncio.wait_for(client.get_twin(), 30)
            monitor.apply_desired(twin.get("desired", {}))
        except TimeoutError:
            log.warning("no twin reply within 30 s; starting with the environment's settings")
        await loop.run_in_executor(None, setattr, client, "on_twin_desired_properties_patch_received",
                                   monitor.on_twin_patch)
        await loop.run_in_executor(None, setattr, client, "on_message_received", monitor.on_message)
        tasks = [asyncio.ensure_future(monitor.forward()), asyncio.ensure_future(monitor.heartbeat()),
                 asyncio.ensure_future(monitor.reporter(float(os.environ.get("REPORT_INTERVAL") or 10)))]
        await monitor.report()
        log.info("monitor started: forwarding every input to output %s, heartbeat every %s s", monitor.output,
                 monitor.heartbeat_seconds or "never")
        await monitor.stop.wait()
        deadline = time.monotonic() + 10
        while (not monitor.queue.empty() or monitor.in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = monitor.queue.qsize() + int(monitor.in_flight)
        if left:
            log.error("stopping with %d message(s) not forwarded", left)
        await monitor.report()
    finally:
        for task in tasks:
            task.cancel()
        try:
            await asyncio.wait_for(client.shutdown(), 10)
        except Exception as exc:
            log.warning("shutdown: %s", exc)
    log.info("stopped: %s", monitor.status())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
