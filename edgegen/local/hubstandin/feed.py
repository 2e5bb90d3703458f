"""The stand-in's live feed, as its clients (``edgegen monitor``, ``edgegen up``) see it: the public contract.

A monitor connects over MQTT (TLS, port 8883) as module ``{FEED_DEVICE}/{session}``, signing a SAS token with a key
of a shared access policy with the ServiceConnect right (naming it in ``skn``), and subscribes to its own
``inputs/{FEED_INPUT}/#``. Every stored device-to-cloud message is delivered there as a JSON envelope
(``feed_envelope``; QoS 1, persistent session, so a monitor that reconnects after a hub restart misses nothing). The
session id ends with ``.now`` (only new messages), ``.all`` (replay every stored message first) or ``.<seq>``
(replay after that sequence number).

Imports nothing of the stand-in's server: clients use this module, the stand-in's gateway implements it.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgegen.local.hubstandin.store import StoredMessage

__all__ = ["FEED_DEVICE", "FEED_INPUT", "MQTT_PORT", "feed_client_id", "feed_envelope", "feed_resource",
           "feed_session", "feed_start", "feed_topic"]

FEED_DEVICE = "$edgegen-monitor"
FEED_INPUT = "events"
MQTT_PORT = 8883


def feed_session(*, from_start: bool = False, after_seq: int | None = None) -> str:
    """A new monitor session id: a random part, then where the feed starts (``all``, a sequence number, ``now``)."""
    start = "all" if from_start else (str(after_seq) if after_seq is not None else "now")
    return f"{uuid.uuid4().hex[:12]}.{start}"


def feed_start(session: str) -> int | None:
    """Where a session's feed starts: 0 (replay everything), a sequence number to replay after, None (only new)."""
    start = session.rsplit(".", 1)[-1] if "." in session else "now"
    if start == "now":
        return None
    return 0 if start == "all" else int(start) if start.isdigit() else None


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
