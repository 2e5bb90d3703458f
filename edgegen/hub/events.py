"""Device-to-cloud messages as the monitors see them, and the events they become (shaped like
``az iot hub monitor-events``): shared by the local feed (``edgegen.hub.monitor``) and Event Hubs
(``edgegen.hub.eventhub``).

Each event is ``{"event": {"origin", "module", "interface", "component", "properties"?, "payload"}}``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeedMessage", "MonitorFilter", "format_event"]


@dataclass(frozen=True)
class FeedMessage:
    """One device-to-cloud message as a monitor sees it."""

    seq: int
    device_id: str
    module_id: str | None
    enqueued_time: str
    system_properties: dict[str, Any]
    properties: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str | None:
        return self.system_properties.get("message_id")

    @classmethod
    def from_envelope(cls, raw: bytes) -> FeedMessage:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeedMessage:
        return cls(int(d.get("seq") or 0), d["deviceId"], d.get("moduleId"), d.get("enqueuedTime") or "",
                   dict(d.get("systemProperties") or {}), dict(d.get("properties") or {}),
                   base64.b64decode(d.get("body") or ""))


@dataclass(frozen=True)
class MonitorFilter:
    device: str | None = None  # wildcards * and ? like az
    module: str | None = None
    properties: set[str] = field(default_factory=set)  # {"sys", "app", "all"}
    content_type: str | None = None

    def matches(self, message: FeedMessage) -> bool:
        if self.device and not fnmatch.fnmatchcase(message.device_id, self.device):
            return False
        return not (self.module and not fnmatch.fnmatchcase(message.module_id or "", self.module))


def _payload(message: FeedMessage, content_type: str | None) -> Any:
    ctype = (content_type or message.system_properties.get("content_type") or "").lower()
    text = message.body.decode("utf-8", "replace")
    if "json" in ctype:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def format_event(message: FeedMessage, filt: MonitorFilter) -> dict[str, Any]:
    event: dict[str, Any] = {"origin": message.device_id, "module": message.module_id or "", "interface": "",
                             "component": ""}
    wanted = filt.properties
    if wanted:
        props: dict[str, Any] = {}
        if wanted & {"sys", "all"}:
            props["system"] = dict(message.system_properties)
        if wanted & {"app", "all"}:
            props["application"] = dict(message.properties)
        event["properties"] = props
    event["payload"] = _payload(message, filt.content_type)
    return {"event": event}
