"""Monitoring a real Azure IoT Hub through its Event Hub-compatible endpoint (``azure-eventhub``, optional).

The service SDK cannot read device-to-cloud messages; Azure exposes them on the built-in endpoint
``messages/events`` (consumer group ``$Default``). Its connection string is the hub's "Event Hub-compatible
endpoint" (Azure portal: IoT Hub → Built-in endpoints), given as ``IOTHUB_EVENTHUB_CONNECTION_STRING``
in the environment or ``.env``. The local stand-in serves the same endpoint (``edgegen hub serve`` prints its
connection string), which is how the test suite exercises this path; the stand-in's CA (``target.ca_file``)
is then what the client trusts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError

__all__ = ["feed_message", "monitor_eventhub"]


def _endpoint() -> str:
    value = os.environ.get("IOTHUB_EVENTHUB_CONNECTION_STRING")
    if not value and Path(".env").is_file():
        from dotenv import dotenv_values

        value = dotenv_values(".env").get("IOTHUB_EVENTHUB_CONNECTION_STRING")
    if not value:
        raise HubClientError(
            "monitoring an Azure IoT Hub needs its Event Hub-compatible endpoint",
            hint="set IOTHUB_EVENTHUB_CONNECTION_STRING (portal: IoT Hub → Built-in endpoints → "
                 "Event Hub-compatible endpoint) in the environment or .env")
    return value


def monitor_eventhub(target: HubTarget, filt: Any, *, timeout: float | None, count: int | None,
                     on_event: Callable[[dict[str, Any]], None], connection_string: str | None = None,
                     consumer_group: str = "$Default", from_start: bool = False) -> int:
    """Hand events (``format_event``'s dicts) to ``on_event`` until ``count`` or ``timeout`` seconds pass with
    nothing new on any partition.

    The asyncio client of azure-eventhub reads every partition in a task of its own. Its synchronous client
    polls the partitions in turn from one thread, waiting its 0.2 s socket timeout on each partition with
    nothing to read before it hands over the next event of a busy one: with three idle partitions of four
    that is about 1.6 events/s, against IoT Hub as against the stand-in (Azure/azure-sdk-for-python#27314)."""
    try:
        from azure.eventhub.aio import EventHubConsumerClient
    except ImportError:
        raise HubClientError("monitoring Azure needs the optional package azure-eventhub",
                             hint="pip install 'edgegen[eventhub]'") from None
    options: dict[str, Any] = {"connection_verify": target.ca_file} if target.ca_file else {}
    client = EventHubConsumerClient.from_connection_string(connection_string or _endpoint(),
                                                           consumer_group=consumer_group, **options)
    return asyncio.run(_monitor(client, filt, timeout=timeout, count=count, deliver=on_event,
                                from_start=from_start))


async def _monitor(client: Any, filt: Any, *, timeout: float | None, count: int | None,
                   deliver: Callable[[dict[str, Any]], None], from_start: bool) -> int:
    from edgegen.hub.events import format_event

    loop = asyncio.get_running_loop()
    shown = 0
    last = loop.time()
    done = asyncio.Event()
    failure: list[BaseException] = []

    async def on_event(partition_context: Any, event: Any) -> None:
        nonlocal shown, last
        last = loop.time()
        if event is None or done.is_set():
            return
        message = feed_message(event)
        if not filt.matches(message):
            return
        deliver(format_event(message, filt))
        shown += 1
        if count is not None and shown >= count:
            done.set()

    async def on_error(partition_context: Any, error: Exception) -> None:
        # called once the client's own retries are spent (a refused token, an unknown consumer group …)
        failure.append(error)
        done.set()

    async with client:
        receiving = asyncio.create_task(client.receive(
            on_event=on_event, on_error=on_error, starting_position="-1" if from_start else "@latest"))
        try:
            while not done.is_set() and not receiving.done():
                wait = None if timeout is None else max(0.0, last + timeout - loop.time())
                if wait == 0.0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), min(wait, 1.0) if wait is not None else 1.0)
        finally:
            await client.close()
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
    if failure:
        raise HubClientError(f"reading the Event Hub-compatible endpoint failed: {failure[0]}",
                             hint="check the connection string (a policy with ServiceConnect), the consumer "
                                  "group and, for the local stand-in, its CA") from None
    return shown


def feed_message(event: Any) -> Any:
    """An ``EventData`` as the monitor's ``FeedMessage`` (IoT Hub's names for the system properties)."""
    from edgegen.hub.events import FeedMessage

    sysprops = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else v)
                for k, v in (event.system_properties or {}).items()}
    for amqp_name, name in (("content-type", "content_type"), ("content-encoding", "content_encoding"),
                            ("message-id", "message_id"), ("correlation-id", "correlation_id")):
        if amqp_name in sysprops:
            sysprops[name] = sysprops.pop(amqp_name)
    app = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
           for k, v in (event.properties or {}).items()}
    body = event.body if isinstance(event.body, bytes) else b"".join(event.body)
    return FeedMessage(0, str(sysprops.get("iothub-connection-device-id", "")),
                       sysprops.get("iothub-connection-module-id"), str(sysprops.get("iothub-enqueuedtime", "")),
                       sysprops, app, body)
