"""The local IoT Hub stand-in (REST, MQTT). Its public contract for clients is what this package exports:
``hub.json`` discovery (``HubInfo``, ``read_hub_info``) and the live feed (``edgegen.local.hubstandin.feed``).
Importing the package does not import the server (aiohttp); ``server.HubStandIn`` and ``runner.run_hub`` run it.
"""

from edgegen.local.hubstandin.feed import (
    FEED_DEVICE,
    FEED_INPUT,
    MQTT_PORT,
    feed_client_id,
    feed_envelope,
    feed_resource,
    feed_session,
    feed_start,
    feed_topic,
)
from edgegen.local.hubstandin.info import HubInfo, read_hub_info

__all__ = [
    "FEED_DEVICE",
    "FEED_INPUT",
    "MQTT_PORT",
    "HubInfo",
    "feed_client_id",
    "feed_envelope",
    "feed_resource",
    "feed_session",
    "feed_start",
    "feed_topic",
    "read_hub_info",
]
