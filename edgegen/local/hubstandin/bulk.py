"""Bulk registry operations (``POST /devices``): up to 100 device creates, updates and deletes in one call.

Each entry is ``{"id", "importMode", "eTag"?, "status"?, "authentication"?, "capabilities"?, …}`` with
``importMode`` one of create, createOrUpdate, update, updateIfMatchETag, delete, deleteIfMatchETag
(case-insensitive). Entries are applied one by one, as IoT Hub does (not as one transaction); the result is
``{"isSuccessful", "errors": [{"deviceId", "errorCode", "errorStatus"}], "warnings": []}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edgegen.local.hubstandin.bodies import BULK_ENTRY, check_id, check_shape
from edgegen.local.hubstandin.errors import HubError, InvalidArgument, NotFound

__all__ = ["MAX_BULK", "BulkRegistry", "run_bulk"]

MAX_BULK = 100


class BulkRegistry(Protocol):
    def put_device(self, device_id: str, body: Mapping[str, Any], if_match: str | None = None) -> dict[str, Any]: ...
    def delete_device(self, device_id: str, if_match: str | None = None) -> None: ...
    devices: dict[str, dict[str, Any]]


def _one(registry: BulkRegistry, entry: Mapping[str, Any]) -> None:
    check_shape(entry, BULK_ENTRY, "bulk entry")
    device_id, mode = entry.get("id") or entry.get("deviceId"), str(entry.get("importMode") or "").lower()
    if not isinstance(device_id, str) or not device_id:
        raise InvalidArgument("a bulk entry needs an 'id'")
    check_id(device_id)
    body = {k: v for k, v in entry.items() if k not in ("id", "importMode", "eTag")}
    etag = entry.get("eTag")
    actions: dict[str, Callable[[], object]] = {
        "create": lambda: registry.put_device(device_id, body),
        "createorupdate": lambda: registry.put_device(device_id, body, "*" if device_id in registry.devices else None),
        "update": lambda: registry.put_device(device_id, body, "*"),
        "updateifmatchetag": lambda: registry.put_device(device_id, body, etag or ""),
        "delete": lambda: registry.delete_device(device_id, "*"),
        "deleteifmatchetag": lambda: registry.delete_device(device_id, etag or ""),
    }
    if mode not in actions:
        raise InvalidArgument(f"importMode {entry.get('importMode')!r} is not supported",
                              hint=f"use one of: {', '.join(actions)}")
    if mode in ("update", "updateifmatchetag", "delete", "deleteifmatchetag") and device_id not in registry.devices:
        raise NotFound(f"device {device_id!r} not found", code="DeviceNotFound")
    actions[mode]()


def run_bulk(registry: BulkRegistry, entries: Any, status_of: Callable[[HubError], int]) -> dict[str, Any]:
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BULK:
        raise InvalidArgument(f"the body must be a list of 1 to {MAX_BULK} device entries")
    errors: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise InvalidArgument("every bulk entry must be a JSON object")
        try:
            _one(registry, entry)
        except HubError as exc:
            errors.append({"deviceId": entry.get("id"), "errorCode": exc.code,
                           "errorStatus": f"{exc.message}", "httpStatus": status_of(exc)})
    return {"isSuccessful": not errors, "errors": errors, "warnings": []}
