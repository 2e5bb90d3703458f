"""Message sources: how edgeHub names where a message came from, and how a route's FROM path matches it."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "TWIN_CHANGE_SOURCE",
    "is_telemetry",
    "is_twin_change_source",
    "message_source",
    "normalize_source",
    "source_matches",
]

TWIN_CHANGE_SOURCE = "/twinChangeNotifications"


def _get_ci(props: Mapping[str, str | None], name: str) -> str | None:
    if name in props:
        return props[name]
    lname = name.lower()
    for key, value in props.items():
        if key.lower() == lname:
            return value
    return None


def message_source(system_properties: Mapping[str, str | None]) -> str:
    """The source string edgeHub gives a message, from its system properties.

    ``messageType`` = twinChangeNotification (any case) → ``/twinChangeNotifications``; else with
    ``connectionModuleId`` → ``/messages/modules/{m}`` plus ``/outputs/{outputName}`` when there is an output;
    else ``/messages`` (a leaf device's telemetry).
    """
    mtype = _get_ci(system_properties, "messageType")
    if mtype is not None and mtype.lower() == "twinchangenotification":
        return TWIN_CHANGE_SOURCE
    module = _get_ci(system_properties, "connectionModuleId")
    if module:
        output = _get_ci(system_properties, "outputName")
        if output:
            return f"/messages/modules/{module}/outputs/{output}"
        return f"/messages/modules/{module}"
    return "/messages"


def normalize_source(path: str) -> str:
    """A route FROM path as edgeHub compares it: trimmed, trailing ``*`` then ``/`` dropped, one ``/`` appended."""
    p = path.strip().rstrip("*").rstrip("/")
    return p + "/"


def source_matches(route_source: str, msg_source: str) -> bool:
    """True when a message from ``msg_source`` is taken by a route FROM ``route_source`` (case-insensitive prefix)."""
    return (msg_source.rstrip("/") + "/").lower().startswith(normalize_source(route_source).lower())


def is_telemetry(source: str) -> bool:
    return (source.rstrip("/") + "/").startswith("/messages/")


def is_twin_change_source(route_source: str) -> bool:
    return normalize_source(route_source).lower() == TWIN_CHANGE_SOURCE.lower() + "/"
