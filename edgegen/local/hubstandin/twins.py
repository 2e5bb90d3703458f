"""Twins as IoT Hub keeps and returns them, pure: versions, ``$metadata``, etag, the documents queries see.

Stored record (one per device or module identity; JSON in the store)::

    {"tags", "desired", "reported",            the properties, without any $-keys
     "desiredVersion", "reportedVersion",      each section's $version (1 when created)
     "version",                                the twin's version: +1 on every change of tags or properties
     "desiredMeta", "reportedMeta",            $metadata trees (see below)
     "configurations"}                         {configurationId: {"status": "Targeted"|"Applied"}}

``$metadata`` mirrors the properties: every object node has ``$lastUpdated`` (ISO 8601 UTC) — in ``desired``
also ``$lastUpdatedVersion`` — and a child node per key. A patch touches the nodes on the way to each key it
sets (so an object's ``$lastUpdated`` is its newest descendant's); nodes of removed keys go. A twin never
updated shows ``0001-01-01T00:00:00Z``, as IoT Hub does. The twin's ``etag`` is its version as 8 big-endian
bytes in base64 (``AAAAAAAAAAE=``).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

__all__ = [
    "NEVER",
    "device_twin_properties",
    "full_meta",
    "new_twin",
    "touch_meta",
    "twin_document",
    "twin_etag",
]

NEVER = "0001-01-01T00:00:00Z"


def new_twin() -> dict[str, Any]:
    return {"tags": {}, "desired": {}, "reported": {}, "desiredVersion": 1, "reportedVersion": 1, "version": 1,
            "desiredMeta": {"$lastUpdated": NEVER}, "reportedMeta": {"$lastUpdated": NEVER},
            "configurations": {}}


def twin_etag(twin: Mapping[str, Any]) -> str:
    return base64.b64encode(int(twin["version"]).to_bytes(8, "big")).decode()


def full_meta(value: Any, when: str, version: int | None) -> dict[str, Any]:
    """The metadata node of a value written whole at ``when`` (``version``: desired only)."""
    node: dict[str, Any] = {"$lastUpdated": when}
    if version is not None:
        node["$lastUpdatedVersion"] = version
    if isinstance(value, Mapping):
        for key, child in value.items():
            node[key] = full_meta(child, when, version)
    return node


def touch_meta(meta: Mapping[str, Any], patch: Mapping[str, Any], after: Mapping[str, Any], when: str,
               version: int | None) -> dict[str, Any]:
    """The metadata after ``patch`` (a JSON merge patch) turned the properties into ``after``."""
    node = dict(meta)
    node["$lastUpdated"] = when
    if version is not None:
        node["$lastUpdatedVersion"] = version
    for key, value in patch.items():
        if key not in after:
            node.pop(key, None)
            continue
        old = node.get(key)
        if isinstance(value, Mapping) and isinstance(after[key], Mapping) and isinstance(old, Mapping):
            node[key] = touch_meta(old, value, after[key], when, version)
        else:
            node[key] = full_meta(after[key], when, version)
    for key in [k for k in node if not k.startswith("$") and k not in after]:
        node.pop(key)
    return node


def _section(values: Mapping[str, Any], meta: Mapping[str, Any] | None, version: int) -> dict[str, Any]:
    out = dict(values)
    if meta is not None:
        out["$metadata"] = meta
    out["$version"] = version
    return out


def twin_document(device: Mapping[str, Any], module: Mapping[str, Any] | None, twin: Mapping[str, Any], *,
                  copy_values: bool = True) -> dict[str, Any]:
    """The twin as ``GET /twins/{id}[/modules/{mid}]`` and queries return it.

    With ``copy_values=False`` the document shares the stored values (cheap, for evaluating conditions:
    the caller must not change it)."""
    take = copy.deepcopy if copy_values else (lambda v: v)
    record = module if module is not None else device
    doc: dict[str, Any] = {"deviceId": device["deviceId"]}
    if module is not None:
        doc["moduleId"] = module["moduleId"]
    doc.update({
        "etag": twin_etag(twin),
        "deviceEtag": device["etag"],
        "status": device["status"],
        "statusUpdateTime": device.get("statusUpdatedTime"),
        "connectionState": record.get("connectionState", "Disconnected"),
        "lastActivityTime": record.get("lastActivityTime"),
        "cloudToDeviceMessageCount": record.get("cloudToDeviceMessageCount", 0),
        "authenticationType": (record.get("authentication") or {}).get("type", "sas"),
        "x509Thumbprint": {"primaryThumbprint": None, "secondaryThumbprint": None},
        "modelId": "",
        "version": twin["version"],
        "tags": take(twin["tags"]),
        "properties": {
            "desired": _section(take(twin["desired"]), take(twin.get("desiredMeta")), twin["desiredVersion"]),
            "reported": _section(take(twin["reported"]), take(twin.get("reportedMeta")), twin["reportedVersion"]),
        },
    })
    if module is None:
        doc["capabilities"] = take(device["capabilities"])
        doc["deviceScope"] = device.get("deviceScope")
        doc["parentScopes"] = list(device.get("parentScopes") or [])
    if twin.get("configurations"):
        doc["configurations"] = take(twin["configurations"])
    return doc


def device_twin_properties(twin: Mapping[str, Any]) -> dict[str, Any]:
    """What a device or module gets on ``$iothub/twin/GET``: both sections with ``$version``, no metadata."""
    return {"desired": _section(copy.deepcopy(twin["desired"]), None, twin["desiredVersion"]),
            "reported": _section(copy.deepcopy(twin["reported"]), None, twin["reportedVersion"])}
