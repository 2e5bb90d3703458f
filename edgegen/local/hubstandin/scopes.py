"""Nested edge, pure: device scopes and parent scopes as IoT Hub keeps them.

- An edge device has its own ``deviceScope`` (``ms-azure-iot-edge://{deviceId}-{n}``, made by the hub, never
  changed) and ``parentScopes``: ``[]`` or the scope of its parent edge device.
- A leaf (non-edge) device's ``deviceScope`` is its parent's scope (``None`` without a parent); its
  ``parentScopes`` follow it: ``[deviceScope]`` or ``[]``.
- A scope given by a client must be the scope of an existing edge device other than the device itself, and
  the parent chain must not loop back to it. This is what ``az iot hub device-identity children``/``parent``
  rely on (``parentScopes[0]`` names the parent; children are found with ``array_contains(parentScopes, …)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgegen.local.hubstandin.errors import InvalidArgument

__all__ = ["SCOPE_PREFIX", "make_scope", "resolve_scopes"]

SCOPE_PREFIX = "ms-azure-iot-edge://"
MAX_DEPTH = 5  # layers of a nested edge hierarchy IoT Hub allows


def make_scope(device_id: str, n: int) -> str:
    return f"{SCOPE_PREFIX}{device_id}-{n}"


def _owner(scope: str, devices: Mapping[str, Mapping[str, Any]]) -> str | None:
    for device_id, record in devices.items():
        if record.get("deviceScope") == scope and (record.get("capabilities") or {}).get("iotEdge"):
            return device_id
    return None


def _check_parent(device_id: str, scope: str, devices: Mapping[str, Mapping[str, Any]]) -> None:
    parent = _owner(scope, devices)
    if parent is None:
        raise InvalidArgument(f"scope {scope!r} is not the deviceScope of any edge device",
                              hint="use the deviceScope of the parent edge device (az iot hub device-identity show)")
    if parent == device_id:
        raise InvalidArgument(f"device {device_id!r} cannot be its own parent")
    seen, current, depth = {device_id}, parent, 1
    while current is not None:
        if current in seen:
            raise InvalidArgument(f"making {parent!r} the parent of {device_id!r} would close a loop",
                                  hint="an edge device cannot be below one of its own children")
        seen.add(current)
        depth += 1
        parents = devices[current].get("parentScopes") or []
        current = _owner(parents[0], devices) if parents else None
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"a nested edge hierarchy has at most {MAX_DEPTH} layers; {device_id!r} would be "
                              f"in layer {depth}")


def resolve_scopes(device_id: str, edge: bool, body: Mapping[str, Any], existing: Mapping[str, Any] | None,
                   devices: Mapping[str, Mapping[str, Any]], new_scope: str) -> tuple[str | None, list[str]]:
    """``(deviceScope, parentScopes)`` for a device being created or updated with ``body``."""
    old_scope = (existing or {}).get("deviceScope")
    old_parents = list((existing or {}).get("parentScopes") or [])
    if edge:
        own = old_scope if existing and (existing.get("capabilities") or {}).get("iotEdge") and old_scope \
            else new_scope
        asked = body.get("deviceScope")
        if asked and asked != own:
            raise InvalidArgument(f"the deviceScope of edge device {device_id!r} is made by the hub and cannot be set",
                                  hint="to give it a parent edge device, set parentScopes to the parent's deviceScope")
        parents = list(body["parentScopes"] or []) if "parentScopes" in body else old_parents
        if len(parents) > 1:
            raise InvalidArgument("an edge device has at most one parent scope")
        for scope in parents:
            if not isinstance(scope, str):
                raise InvalidArgument("parentScopes must be a list of strings")
            _check_parent(device_id, scope, devices)
        return own, parents
    was_edge = bool(existing and (existing.get("capabilities") or {}).get("iotEdge"))
    inherited = (old_parents[0] if old_parents else None) if was_edge else old_scope
    scope = body.get("deviceScope", inherited)
    if was_edge and scope == old_scope:  # an edge device turned leaf: its own scope becomes its parent's
        scope = old_parents[0] if old_parents else None
    scope = scope or None
    if scope is not None:
        if not isinstance(scope, str):
            raise InvalidArgument("deviceScope must be a string")
        _check_parent(device_id, scope, devices)
    return scope, [scope] if scope else []
