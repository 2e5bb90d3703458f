"""The stand-in's live feed, as its clients (``edgegen monitor``, ``edgegen up``) see it: the public contract.

A monitor connects over MQTT (TLS, port 8883) as module ``{FEED_DEVICE}/{session}``, signing a SAS token with a key
of a shared access policy with the ServiceConnect right (naming it in ``skn``), and subscribes to its own
``inputs/{FEED_INPUT}/#``. Every stored device-to-cloud message is delivered there, in ``seq`` order, as a JSON
envelope (``feed_envelope``; QoS 1, persistent session). The session id ends with ``.now`` (only new messages),
``.all`` (every stored message first), ``.<seq>`` (after that sequence number) or ``.t<epoch ms>`` (from the first
message enqueued at or after that time).

The feed is a cursor over the hub's message store with flow control: at most ``FEED_WINDOW`` messages are on
their way to a monitor and not yet acknowledged (PUBACK), the rest wait in the store. A monitor that reads
slowly (or is paused) only holds the feed back; a monitor that reconnects goes on after the last message it
acknowledged. The one way to miss messages is retention removing them before they were read: the monitor then
gets a gap notice (``feed_gap_envelope``: ``{"seq": last, "gap": {"first": …, "last": …}}``) in their place.

Imports nothing of the stand-in's server: clients use this module, the stand-in's gateway implements it.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgegen.local.hubstandin.store import StoredMessage

__all__ = ["FEED_DEVICE", "FEED_INPUT", "FEED_WINDOW", "MQTT_PORT", "feed_client_id", "feed_envelope",
           "feed_gap_envelope", "feed_resource", "feed_session", "feed_since", "feed_start", "feed_topic"]

FEED_DEVICE = "$edgegen-monitor"
FEED_INPUT = "events"
MQTT_PORT = 8883
FEED_WINDOW = 1000


def feed_session(*, from_start: bool = False, after_seq: int | None = None, since_ms: int | None = None) -> str:
    """A new monitor session id: a random part, then where the feed starts (``all``, a sequence number,
    ``t`` and a time in epoch milliseconds, ``now``)."""
    if since_ms is not None:
        start = f"t{since_ms}"
    else:
        start = "all" if from_start else (str(after_seq) if after_seq is not None else "now")
    return f"{uuid.uuid4().hex[:12]}.{start}"


def feed_start(session: str) -> int | None:
    """Where a session's feed starts: 0 (replay everything), a sequence number to replay after, None (only new,
    or from a time: ``feed_since``)."""
    start = session.rsplit(".", 1)[-1] if "." in session else "now"
    if start == "now":
        return None
    return 0 if start == "all" else int(start) if start.isdigit() else None


def feed_since(session: str) -> int | None:
    """The time (epoch milliseconds) a ``.t<ms>`` session's feed starts from, else None."""
    start = session.rsplit(".", 1)[-1] if "." in session else ""
    return int(start[1:]) if start[:1] == "t" and start[1:].isdigit() else None


def feed_client_id(session: str) -> str:
    return f"{FEED_DEVICE}/{session}"


def feed_topic(session: str) -> str:
    """The topic filter a monitor subscribes to."""
    return f"devices/{FEED_DEVICE}/modules/{session}/inputs/{FEED_INPUT}/#"


def feed_resource(host: str, session: str) -> str:
    """The SAS token resource (``sr``) of a monitor's session on ``host``."""
    return f"{host}/devices/{FEED_DEVICE}/modules/{session}"


def feed_envelope(message: StoredMessage) -> bytes:
    """How a stored message travels on the live feed (JSON; the body base64-encoded)."""
    return json.dumps({
        "seq": message.seq, "deviceId": message.device_id, "moduleId": message.module_id,
        "enqueuedTime": message.enqueued_time, "systemProperties": message.system_properties,
        "properties": message.properties, "body": base64.b64encode(message.body).decode(),
    }, separators=(",", ":")).encode()


def feed_gap_envelope(first: int, last: int) -> bytes:
    """In place of messages ``first``…``last`` that retention removed before the monitor read them."""
    return json.dumps({"seq": last, "gap": {"first": first, "last": last}}, separators=(",", ":")).encode()
