"""Why a route did or did not take a message: the data behind ``edgegen route test``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgegen.routing.condition import Condition, Step, compile_condition, compile_parsed
from edgegen.routing.errors import RouteError
from edgegen.routing.message import BodyUnavailable, Message
from edgegen.routing.route import Endpoint, Route, parse_route
from edgegen.routing.sources import message_source
from edgegen.routing.values import TRUE, Bool

__all__ = ["TestReport", "looks_like_route", "route_test_message", "test_message"]


@dataclass
class TestReport:
    kind: str  # "route" | "condition"
    text: str
    source: str  # the message's source
    source_matches: bool
    result: Bool | None  # the condition's value (TRUE when there is no WHERE), None when the source did not match
    routed: bool
    endpoint: Endpoint | None = None
    route_source: str | None = None
    culprits: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    body_note: str | None = None  # why $body was undefined, when the condition read it

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "source": self.source,
            "route_source": self.route_source,
            "source_matches": self.source_matches,
            "result": None if self.result is None else str(self.result),
            "routed": self.routed,
            "endpoint": None if self.endpoint is None else str(self.endpoint),
            "culprits": [{"expression": s.text, "value": s.shown()} for s in self.culprits],
            "steps": [{"expression": s.text, "depth": s.depth, "type": str(s.type), "value": s.shown()}
                      for s in self.steps],
            "body_note": self.body_note,
        }


def looks_like_route(text: str) -> bool:
    head = text.strip().split(None, 1)[0].upper() if text.strip() else ""
    return head in ("FROM", "SELECT")


def test_message(text: str, message: Message, source: str | None = None) -> TestReport:
    """Evaluate a route (``FROM ... INTO ...``) or a bare condition against ``message``."""
    src = source if source is not None else message_source(message.system_properties)
    route: Route | None = None
    if looks_like_route(text):
        route = parse_route(text)
        condition: Condition | None = None
        if route.condition_ast is not None and route.condition is not None:
            condition = compile_parsed(route.condition, route.condition_ast, twin_change_includes=True,
                                       source=route.source, span_text=text)
        matches = route.matches_source(src)
    else:
        condition = compile_condition(text, twin_change_includes=True, source=src)
        matches = True
    report = TestReport("route" if route else "condition", text, src, matches, None, False,
                        route_source=route.source if route else None)
    if not matches:
        return report
    report.result = TRUE if condition is None else condition(message)
    report.routed = report.result is TRUE
    report.endpoint = route.sink if route and report.routed else None
    if condition is not None:
        report.steps = condition.steps(message)
        if not report.routed:
            report.culprits = condition.culprits(message)
        if condition.uses_body:
            body = message.json_body()
            if isinstance(body, BodyUnavailable):
                report.body_note = f"$body is undefined for this message: {body.reason}"
    return report


test_message.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
TestReport.__test__ = False  # type: ignore[attr-defined]


def _source_into(source: str, sysp: dict[str, Any]) -> None:
    parts = source.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "messages" and parts[1] == "modules":
        sysp.setdefault("connectionModuleId", parts[2])
        if len(parts) >= 5 and parts[3] == "outputs":
            sysp.setdefault("outputName", parts[4])
    elif parts and parts[0].lower() == "twinchangenotifications":
        sysp.setdefault("messageType", "twinChangeNotification")


def route_test_message(doc: Any, *, file: str | None = None, body: str | None = None,
                      props: dict[str, str | None] | None = None, sys_props: dict[str, str | None] | None = None,
                      source: str | None = None) -> Message:
    """The message ``edgegen route test`` evaluates: a parsed message file ``doc`` (``{"properties": {...},
    "systemProperties": {...}, "body": ...}``, or None) with ``body`` (JSON text), ``props``, ``sys_props`` and
    ``source`` laid over it. A document of the wrong shape is a RouteError naming the JSON path."""
    data: dict[str, Any] = {}
    if doc is not None:
        if not isinstance(doc, dict):
            raise RouteError("the message file must hold a JSON object", file=file,
                             hint='{"properties": {...}, "systemProperties": {...}, "body": ...}')
        data = doc
    sys_key = "systemProperties" if "systemProperties" in data else "system_properties"
    for key in ("properties", sys_key):
        if not isinstance(data.get(key) or {}, dict):
            raise RouteError(f"{key} must be an object of names to values", file=file, json_path=key,
                             hint='e.g. "properties": {"alert": "true"}')
    sysp: dict[str, Any] = dict(data.get(sys_key) or {})
    propd: dict[str, Any] = dict(data.get("properties") or {})
    if body is not None:
        data = {**data, "body": body}
    if body is not None or (doc is not None and isinstance(data.get("body"), dict | list)):
        sysp.setdefault("contentType", "application/json")
        sysp.setdefault("contentEncoding", "utf-8")
    if source is not None:
        _source_into(source, sysp)
    propd.update(props or {})
    sysp.update(sys_props or {})
    return Message.from_dict({"properties": propd, "systemProperties": sysp, "body": data.get("body", "")})
