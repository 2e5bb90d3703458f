"""Monitoring a real Azure IoT Hub through its Event Hub-compatible endpoint (``azure-eventhub``, optional).

The service SDK cannot read device-to-cloud messages; Azure exposes them on the built-in endpoint
``messages/events`` (consumer group ``$Default``). Its connection string is the hub's "Event Hub-compatible
endpoint" (Azure portal: IoT Hub → Built-in endpoints), given as ``IOTHUB_EVENTHUB_CONNECTION_STRING``
in the environment or ``.env``. The local stand-in serves the same endpoint (``edgegen hub serve`` prints its
connection string), which is how the test suite exercises this path; the stand-in's CA (``target.ca_file``)
is then what the client trusts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError

__all__ = ["monitor_eventhub"]


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
                     output_format: str, echo: Callable[[str], None], connection_string: str | None = None,
                     consumer_group: str = "$Default", from_start: bool = False) -> int:
    try:
        from azure.eventhub import EventHubConsumerClient
    except ImportError:
        raise HubClientError("monitoring Azure needs the optional package azure-eventhub",
                             hint="pip install 'edgegen[eventhub]'") from None
    from edgegen.hub.events import FeedMessage, format_event, render_event

    options: dict[str, Any] = {"connection_verify": target.ca_file} if target.ca_file else {}
    client = EventHubConsumerClient.from_connection_string(connection_string or _endpoint(),
                                                           consumer_group=consumer_group, **options)
    shown = 0
    done = threading.Event()

    def on_event(partition_context: Any, event: Any) -> None:
        nonlocal shown
        if event is None:  # max_wait_time passed with nothing new
            done.set()
            client.close()
            return
        sysprops = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in (event.system_properties or {}).items()}
        for amqp_name, name in (("content-type", "content_type"), ("content-encoding", "content_encoding"),
                                ("message-id", "message_id"), ("correlation-id", "correlation_id")):
            if amqp_name in sysprops:
                sysprops[name] = sysprops.pop(amqp_name)
        app = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
               for k, v in (event.properties or {}).items()}
        message = FeedMessage(0, str(sysprops.get("iothub-connection-device-id", "")),
                              sysprops.get("iothub-connection-module-id"), str(sysprops.get("iothub-enqueuedtime", "")),
                              sysprops, app, b"".join(event.body) if not isinstance(event.body, bytes) else event.body)
        if not filt.matches(message):
            return
        echo(render_event(format_event(message, filt), output_format))
        shown += 1
        if count is not None and shown >= count:
            done.set()
            client.close()

    with client:
        client.receive(on_event=on_event, starting_position="-1" if from_start else "@latest",
                       max_wait_time=timeout)
    return shown
