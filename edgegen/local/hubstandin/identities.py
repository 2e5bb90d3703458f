"""Device and module identity records as IoT Hub returns them (``/devices/{id}``, ``/devices/{id}/modules/{m}``),
built from a request body and the previous record. Pure: the backend supplies etags, times and scopes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from edgegen.common.sas import generate_key
from edgegen.local.hubstandin.errors import InvalidArgument

__all__ = ["device_record", "module_record", "symmetric_keys"]

_NO_THUMBPRINT = {"primaryThumbprint": None, "secondaryThumbprint": None}


def symmetric_keys(body: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, str]:
    auth = body.get("authentication") or {}
    if not isinstance(auth, Mapping):
        raise InvalidArgument("authentication must be an object")
    auth_type = auth.get("type") or "sas"
    if auth_type != "sas":
        raise InvalidArgument(f"authentication type {auth_type!r} is not supported by the local stand-in",
                              hint="use symmetric keys (sas)")
    keys = dict(auth.get("symmetricKey") or {})
    old = ((existing or {}).get("authentication") or {}).get("symmetricKey") or {}
    return {k: keys.get(k) or old.get(k) or generate_key() for k in ("primaryKey", "secondaryKey")}


def device_record(device_id: str, body: Mapping[str, Any], existing: Mapping[str, Any] | None, *, etag: str,
                  now: str, scope: str | None, parents: list[str]) -> dict[str, Any]:
    status = body.get("status") or "enabled"
    if status not in ("enabled", "disabled"):
        raise InvalidArgument(f"status must be 'enabled' or 'disabled', not {status!r}")
    old = existing or {}
    return {
        "deviceId": device_id,
        "generationId": old.get("generationId") or uuid.uuid4().hex[:18],
        "etag": etag,
        "connectionState": old.get("connectionState", "Disconnected"),
        "status": status,
        "statusReason": body.get("statusReason"),
        "connectionStateUpdatedTime": old.get("connectionStateUpdatedTime", now),
        "statusUpdatedTime": now if status != old.get("status") else old.get("statusUpdatedTime", now),
        "lastActivityTime": old.get("lastActivityTime", now),
        "cloudToDeviceMessageCount": old.get("cloudToDeviceMessageCount", 0),
        "authentication": {"type": "sas", "symmetricKey": symmetric_keys(body, existing),
                           "x509Thumbprint": dict(_NO_THUMBPRINT)},
        "capabilities": {"iotEdge": bool((body.get("capabilities") or {}).get("iotEdge"))},
        "deviceScope": scope,
        "parentScopes": parents,
    }


def module_record(device_id: str, module_id: str, body: Mapping[str, Any], existing: Mapping[str, Any] | None, *,
                  etag: str, now: str) -> dict[str, Any]:
    old = existing or {}
    return {
        "moduleId": module_id, "deviceId": device_id,
        "managedBy": (body.get("managedBy") or "") if "managedBy" in body else old.get("managedBy", ""),
        "generationId": old.get("generationId") or uuid.uuid4().hex[:18], "etag": etag,
        "connectionState": old.get("connectionState", "Disconnected"),
        "connectionStateUpdatedTime": old.get("connectionStateUpdatedTime", now),
        "lastActivityTime": old.get("lastActivityTime", now),
        "cloudToDeviceMessageCount": old.get("cloudToDeviceMessageCount", 0),
        "authentication": {"type": "sas", "symmetricKey": symmetric_keys(body, existing),
                           "x509Thumbprint": dict(_NO_THUMBPRINT)},
    }
