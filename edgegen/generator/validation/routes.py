"""Route checks: names, parsing (``edgegen.routing``), BrokeredEndpoint targets and the routing lint.

``edgegen.routing`` is imported lazily. When it cannot be imported, every route is reported as unchecked
(a warning), never silently passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgegen.generator.validation.findings import ERROR, INFO, SEVERITIES, WARNING, Finding
from edgegen.generator.validation.jsonpos import resolve_path
from edgegen.generator.validation.model import HUB, ManifestView, Ptr

__all__ = ["check"]

ROUTE_NAME = re.compile(r"^[^.$# ]+$")


def _routing() -> Any:
    try:
        from edgegen import routing
    except ImportError:
        return None
    if not hasattr(routing, "parse_route"):
        return None
    return routing


def route_texts(view: ManifestView) -> Iterator[tuple[str, Ptr, str]]:
    """(name, pointer to the route string, route text) for every route that has text."""
    for name, (ptr, value) in view.routes().items():
        if isinstance(value, str):
            yield name, ptr, value
        elif isinstance(value, Mapping) and isinstance(value.get("route"), str):
            yield name, (*ptr, "route"), value["route"]


def check(view: ManifestView) -> Iterator[Finding]:
    for name, (ptr, _) in view.routes().items():
        if not ROUTE_NAME.match(name):
            yield Finding.at(ERROR, ptr, f"route name {name!r} is not allowed",
                             "route names may not contain . $ # or spaces (pattern ^[^.$# ]+$)", rule="names")
    texts = list(route_texts(view))
    routing = _routing()
    if routing is None:
        for name, ptr, _ in texts:
            yield Finding.at(
                WARNING, ptr, f"route {name} was not checked: the route parser (edgegen.routing) is unavailable",
                "this build has no route parser; check the route by hand or update edgegen", rule="route-unchecked",
            )
        return
    modules = set(view.modules())
    partial = view.is_deployment and view.layered
    mine: list[Finding] = []
    missing: dict[Ptr, str] = {}  # route pointer -> repr of the absent target module
    for name, ptr, text in texts:
        try:
            route = routing.parse_route(text)
        except routing.RouteError as exc:
            col = f" at column {exc.column}" if getattr(exc, "column", None) else ""
            mine.append(Finding.at(ERROR, ptr, f"route {name} does not parse{col}: {exc.message}",
                                   _route_hint(text, exc), rule="route-syntax"))
            continue
        target = _brokered_module(route)
        if target is not None and target not in modules:
            # edgeHub accepts such a route (messages wait for a module that never comes, until their TTL), and
            # iotedgedev passes it with --fail-on-validation-error: a warning, so existing solutions still render
            near = [m for m in modules if m.lower() == target.lower()]
            missing[ptr] = repr(target)
            mine.append(Finding.at(
                INFO if partial else WARNING, ptr,
                f"route {name} delivers to module {target!r}, which is not in $edgeAgent modules",
                (f"did you mean {near[0]!r}? module names are case-sensitive; " if near else "")
                + f"known modules: {', '.join(sorted(modules)) or 'none'}"
                + ("; in a layered deployment another layer may add it" if partial else
                   "; messages routed there wait in edgeHub's store until their time-to-live ends"),
                rule="route-target",
            ))
    yield from mine
    # the lint re-reports parse errors, missing targets and bad names: keep only what it adds at other routes
    routes_ptr = view.get(HUB, ("routes",))
    depth = len(routes_ptr[0]) + 1 if routes_ptr else 0
    syntax = {f.pointer[:depth] for f in mine if f.pointer is not None and f.rule == "route-syntax"}
    targets = {p[:depth]: module for p, module in missing.items()}
    for f in _lint(routing, view):
        at = f.pointer[:depth] if f.pointer is not None and depth else None
        if at is not None and f.is_error and (at in syntax or (at in targets and targets[at] in f.message)):
            continue
        yield f


def _route_hint(text: str, exc: Any) -> str:
    caret = ""
    column = getattr(exc, "column", None)
    if column:
        caret = f"{text}\n{' ' * (column - 1)}^"
    hint = exc.hint or "a route reads FROM <source> [WHERE <condition>] INTO <sink>"
    return f"{hint}\n{caret}" if caret else hint


def _brokered_module(route: Any) -> str | None:
    """The module a parsed route delivers to (None for $upstream), read from the routing package's Route."""
    sink = getattr(route, "sink", None)
    for attr in ("module", "module_id", "module_name"):
        value = getattr(sink, attr, None)
        if isinstance(value, str):
            return value
    return None


def _lint(routing: Any, view: ManifestView) -> Iterator[Finding]:
    lint = getattr(routing, "lint_routes", None)
    if lint is None:
        return
    for item in lint(view.manifest):
        severity = getattr(item, "severity", WARNING)
        if severity not in SEVERITIES:
            severity = WARNING
        path = getattr(item, "path", "") or ""
        if view.root == ("content", "modulesContent") and path.startswith("modulesContent"):
            path = "content." + path  # the lint names paths from modulesContent
        pointer = resolve_path(view.manifest, path) if path else None
        yield Finding(severity, path, item.message, getattr(item, "hint", None), rule="route-lint", pointer=pointer)
