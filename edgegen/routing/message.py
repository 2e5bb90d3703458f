"""The message model routes are evaluated against: properties, system properties and body bytes.

Property names are looked up case-insensitively (edgeHub copies both bags into OrdinalIgnoreCase dictionaries);
a key present with a ``None`` value is *null*, an absent key is *undefined*. The body is parsed as JSON at most
once, lazily, and only when the content type is ``application/json`` with a utf-8/16/32 encoding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from edgegen.routing.values import ABSENT

__all__ = ["BODY_ENCODINGS", "BodyUnavailable", "Message"]

BODY_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16-le", "utf-32": "utf-32-le"}


class BodyUnavailable:
    """Why ``$body`` cannot be queried for this message (not JSON, bad encoding, unparsable...)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"BodyUnavailable({self.reason!r})"


_NOT_PARSED = object()


@dataclass(eq=False, slots=True, init=False)
class Message:
    properties: dict[str, str | None] = field(default_factory=dict)
    system_properties: dict[str, str | None] = field(default_factory=dict)
    body: bytes = b""
    # case-folded copies, built once; treat a Message as immutable after construction
    folded_properties: dict[str, str | None] = field(init=False, repr=False, compare=False)
    folded_system_properties: dict[str, str | None] = field(init=False, repr=False, compare=False)
    _json: Any = field(init=False, repr=False, compare=False, default=_NOT_PARSED)
    _source: str | None = field(init=False, repr=False, compare=False, default=None)
    body_parse_count: int = field(init=False, repr=False, compare=False, default=0)

    def __init__(self, properties: dict[str, str | None] | None = None,
                 system_properties: dict[str, str | None] | None = None, body: bytes = b"") -> None:
        # a hand-written __init__: this runs once per routed message, so it stays lean
        self.properties = props = {} if properties is None else properties
        self.system_properties = sysp = {} if system_properties is None else system_properties
        self.body = body
        self.folded_properties = {k.lower(): v for k, v in props.items()}
        self.folded_system_properties = {k.lower(): v for k, v in sysp.items()}
        self._json = _NOT_PARSED
        self._source = None
        self.body_parse_count = 0

    # -- lookups ----------------------------------------------------------------------------------------
    def get_property(self, name: str) -> Any:
        """The application property ``name`` (any case): a str, None (null) or ABSENT (absent)."""
        return self.folded_properties.get(name.lower(), ABSENT)

    def get_system_property(self, name: str) -> Any:
        return self.folded_system_properties.get(name.lower(), ABSENT)

    @property
    def source(self) -> str:
        """edgeHub's source string for this message (see ``message_source``), computed once."""
        src = self._source
        if src is None:
            sysp = self.folded_system_properties
            mtype = sysp.get("messagetype")
            module = sysp.get("connectionmoduleid")
            if mtype is not None and mtype.lower() == "twinchangenotification":
                src = "/twinChangeNotifications"
            elif module:
                output = sysp.get("outputname")
                src = f"/messages/modules/{module}/outputs/{output}" if output else f"/messages/modules/{module}"
            else:
                src = "/messages"
            self._source = src
        return src

    def json_body(self) -> Any:
        """The parsed JSON object body, or a BodyUnavailable saying why not. Parsed at most once."""
        if self._json is _NOT_PARSED:
            self.body_parse_count += 1
            self._json = self._parse_body()
        return self._json

    def _parse_body(self) -> Any:
        ctype = self.folded_system_properties.get("contenttype")
        if ctype is None:
            return BodyUnavailable("the message has no contentType system property")
        if ctype != "application/json" and ctype.lower() != "application/json":
            return BodyUnavailable(f"contentType is {ctype!r}, not application/json")
        enc = self.folded_system_properties.get("contentencoding")
        if enc is None:
            return BodyUnavailable("the message has no contentEncoding system property")
        codec = BODY_ENCODINGS.get(enc.lower())
        if codec is None:
            return BodyUnavailable(f"contentEncoding {enc!r} is not utf-8, utf-16 or utf-32")
        try:
            doc = json.loads(self.body.decode(codec))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return BodyUnavailable(f"the body is not valid JSON ({exc.__class__.__name__}: {exc})")
        if not isinstance(doc, dict):
            return BodyUnavailable("the body is JSON but not an object")
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Build from ``{"properties": {...}, "systemProperties"|"system_properties": {...}, "body": str|obj}``."""
        props = data.get("properties") or {}
        sysp = data.get("systemProperties", data.get("system_properties")) or {}
        body = data.get("body", "")
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode()
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = str(body).encode()
        return cls({str(k): _str_or_none(v) for k, v in props.items()},
                   {str(k): _str_or_none(v) for k, v in sysp.items()}, raw)


def _str_or_none(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else json.dumps(v)


# -- $body JSON paths ---------------------------------------------------------------------------------------
_SEG = r"[^()<>@,;:\\\"/\[\]?={}.\t\n\r ]+"
_JSON_PATH = re.compile(rf"^{_SEG}(?:\[[0-9]+\])?(?:\.{_SEG}(?:\[[0-9]+\])?)*$")
_STEP = re.compile(rf"({_SEG})(?:\[([0-9]+)\])?")
# strings Newtonsoft.Json turns into dates while parsing (they are not strings to edgeHub's $body queries)
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


def valid_json_path(path: str) -> bool:
    return bool(_JSON_PATH.match(path))


def compile_json_path(path: str) -> tuple[tuple[str, int | None], ...]:
    return tuple((m.group(1), int(m.group(2)) if m.group(2) else None) for m in _STEP.finditer(path))


NO_MATCH = object()


def select(doc: dict[str, Any], steps: tuple[tuple[str, int | None], ...]) -> Any:
    """Walk ``steps`` in ``doc``: the JSON value, or NO_MATCH when the path selects nothing."""
    cur: Any = doc
    for name, index in steps:
        if cur.__class__ is not dict:
            return NO_MATCH
        cur = cur.get(name, NO_MATCH)
        if cur is NO_MATCH:
            return NO_MATCH
        if index is not None:
            if cur.__class__ is not list or index >= len(cur):
                return NO_MATCH
            cur = cur[index]
    return cur


def body_query(message: Message, steps: tuple[tuple[str, int | None], ...]) -> Any:
    """``$body.<steps>`` for ``message``: parses the body on first use, then see ``query_value``."""
    doc = message._json
    if doc is _NOT_PARSED:
        doc = message.json_body()
    return query_value(doc, steps)


def query_value(doc: Any, steps: tuple[tuple[str, int | None], ...]) -> Any:
    """A ``$body`` query's value: float, str, bool, None (null or no match) or ABSENT (object/array/date/no body)."""
    if doc.__class__ is not dict:
        return ABSENT
    v: Any = doc
    for name, index in steps:
        if v.__class__ is not dict:
            return None
        v = v.get(name, NO_MATCH)
        if v is NO_MATCH:
            return None
        if index is not None:
            if v.__class__ is not list or index >= len(v):
                return None
            v = v[index]
    cls = v.__class__
    if cls is float:
        return v if v == v else ABSENT
    if cls is int:
        return float(v)
    if cls is str:
        return ABSENT if _ISO_DATE.match(v) or v.startswith("/Date(") else v
    if v is None:
        return None
    if cls is bool:
        return v
    return ABSENT
