"""REST request bodies and ids checked before the backend sees them (pure): a wrong shape is a 400 naming the JSON
path, never a 500.

- ``parse_json``: UTF-8 JSON, at most ``MAX_BODY_DEPTH`` levels deep (a 50,000-deep array is refused without
  recursing into it).
- ``check_shape``: the fields a body kind uses must have the JSON types IoT Hub documents (``DEVICE``, ``MODULE``,
  ``TWIN``, ``CONFIGURATION``, …); unknown fields are ignored, as IoT Hub ignores read-only ones it returns
  (``connectionState``, ``lastActivityTime``…).
- ``check_twin_patch``: tags and desired properties nest at most 10 levels and hold at most 32 KiB each (IoT Hub's
  twin limits).
- ``check_id``: device and module ids as IoT Hub takes them (``edgegen.common.ids``) — so no ``/``, and ``a/b``
  can never pose as module ``b`` of ``a``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from edgegen.common import ids
from edgegen.local.hubstandin.errors import InvalidArgument

__all__ = [
    "APPLY_CONTENT",
    "BULK_ENTRY",
    "CONFIGURATION",
    "DEVICE",
    "MAX_BODY_DEPTH",
    "MAX_ID_LENGTH",
    "MODULE",
    "QUERY",
    "TEST_QUERIES",
    "TWIN",
    "check_id",
    "check_shape",
    "check_twin_patch",
    "parse_json",
]

MAX_BODY_DEPTH = 32  # a deployment (content.modulesContent.$edgeAgent.properties.desired.modules.m.settings…)
MAX_TWIN_DEPTH = 10  # IoT Hub: objects in tags and desired/reported properties nest at most 10 levels
MAX_TWIN_SECTION = 32 * 1024  # IoT Hub: tags, desired and reported properties hold at most 32 KB each
MAX_ID_LENGTH = ids.MAX_ID_LENGTH


def check_id(value: str, kind: str = "device id") -> str:
    """``value`` when IoT Hub would take it as an id (``edgegen.common.ids``); else InvalidArgument (a 400)."""
    try:
        return ids.check_id(value, kind)
    except ids.InvalidIdError as exc:
        raise InvalidArgument(exc.message, hint=exc.hint) from None


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text) if text.strip() else {}
    except RecursionError:
        value = None
        deep = True
    except ValueError as exc:
        raise InvalidArgument(f"the request body is not JSON: {exc}") from None
    else:
        deep = _depth_exceeds(value, MAX_BODY_DEPTH)
    if deep:
        raise InvalidArgument(f"the request body nests more than {MAX_BODY_DEPTH} levels deep",
                              hint="IoT Hub's documents are shallow: twins nest at most 10 levels")
    return value


# ------------------------------------------------------------------------------------------------------ shapes
# A shape maps a field to the JSON types it may hold (null is always allowed), or to a nested shape (an object).
_OBJECT, _LIST, _STR, _BOOL, _NUM = dict, list, str, bool, (int, float)
_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "true or false", int: "a number",
          float: "a number"}
_KEYS = {"primaryKey": _STR, "secondaryKey": _STR}
_AUTH = {"type": _STR, "symmetricKey": _KEYS,
         "x509Thumbprint": {"primaryThumbprint": _STR, "secondaryThumbprint": _STR}}
DEVICE: dict[str, Any] = {
    "deviceId": _STR, "etag": _STR, "status": _STR, "statusReason": _STR, "authentication": _AUTH,
    "capabilities": {"iotEdge": _BOOL}, "deviceScope": _STR, "parentScopes": _LIST,
}
MODULE: dict[str, Any] = {"moduleId": _STR, "deviceId": _STR, "etag": _STR, "managedBy": _STR,
                          "authentication": _AUTH}
BULK_ENTRY: dict[str, Any] = {**DEVICE, "id": _STR, "importMode": _STR, "eTag": _STR}
TWIN: dict[str, Any] = {"etag": _STR, "tags": _OBJECT, "properties": {"desired": _OBJECT}}
CONFIGURATION: dict[str, Any] = {
    "id": _STR, "schemaVersion": _STR, "labels": _OBJECT, "targetCondition": _STR, "priority": _NUM, "etag": _STR,
    "content": {"modulesContent": _OBJECT, "deviceContent": _OBJECT, "moduleContent": _OBJECT},
    "metrics": {"queries": _OBJECT}, "createdTimeUtc": _STR, "lastUpdatedTimeUtc": _STR, "sequence": _NUM,
}
APPLY_CONTENT: dict[str, Any] = {"modulesContent": _OBJECT, "deviceContent": _OBJECT, "moduleContent": _OBJECT}
TEST_QUERIES: dict[str, Any] = {"targetCondition": _STR, "customMetricQueries": _OBJECT}
QUERY: dict[str, Any] = {"query": _STR}
_STRING_VALUES = {("labels",), ("metrics", "queries"), ("customMetricQueries",), ("parentScopes",)}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for t, name in _NAMES.items() if type(value) is t), type(value).__name__)


def check_shape(body: Any, shape: Mapping[str, Any], what: str, path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``body`` when it is an object whose known fields have the right JSON types; else InvalidArgument."""
    where = ".".join(path) or "the body"
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what}: {where} must be a JSON object, not {_json_type(body)}")
    for field, want in shape.items():
        value = body.get(field)
        if value is None:
            continue
        sub = (*path, field)
        if isinstance(want, Mapping):
            check_shape(value, want, what, sub)
            continue
        ok = isinstance(value, want) and not (isinstance(value, bool) and want is not _BOOL)
        if not ok:
            expected = _NAMES[want] if isinstance(want, type) else "a number"
            raise InvalidArgument(f"{what}: {'.'.join(sub)} must be {expected}, not {_json_type(value)}")
        if sub in _STRING_VALUES:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if not isinstance(item, str):
                    raise InvalidArgument(f"{what}: {'.'.join(sub)}[{key!r}] must be a string, not "
                                          f"{_json_type(item)}")
    auth = body.get("authentication") if "authentication" in shape else None  # types checked above
    if isinstance(auth, dict) and isinstance(auth.get("symmetricKey"), dict):
        for name, key in auth["symmetricKey"].items():
            if name in _KEYS and key:
                _check_key(key, f"{what}: {'.'.join((*path, 'authentication', 'symmetricKey', name))}")
    return body


def _check_key(key: str, where: str) -> None:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not 16 <= len(raw) <= 64:
        raise InvalidArgument(f"{where} must be base64 of 16 to 64 bytes",
                              hint="leave the keys out and the hub makes them")


def check_twin_patch(body: Mapping[str, Any]) -> None:
    """IoT Hub's twin limits on what a service writes: depth and size of tags and desired properties."""
    props = body.get("properties") or {}
    for name, section in (("tags", body.get("tags")), ("properties.desired", props.get("desired"))):
        if not section:
            continue
        if _depth_exceeds(section, MAX_TWIN_DEPTH):
            raise InvalidArgument(f"{name} nests more than {MAX_TWIN_DEPTH} levels deep (IoT Hub's twin limit)")
        size = len(json.dumps(section, separators=(",", ":")).encode())
        if size > MAX_TWIN_SECTION:
            raise InvalidArgument(f"{name} is {size} bytes; IoT Hub allows at most {MAX_TWIN_SECTION} per section")
