"""Route checks: parsing (``edgegen.routing``), BrokeredEndpoint targets and the routing lint.

Route names, condition types, sources and duplicates are the lint's (``edgegen.routing.lint_routes``): its
findings are passed on, located in the manifest, except where they repeat a parse error or missing target
reported here with a caret or a severity that fits a deployment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from edgegen.generator.validation.findings import ERROR, INFO, WARNING, Finding
from edgegen.generator.validation.jsonpos import resolve_path
from edgegen.generator.validation.model import HUB, ManifestView, Ptr
from edgegen.routing import ModuleInputEndpoint, Route, RouteError, lint_routes, parse_route

__all__ = ["check"]


def route_texts(view: ManifestView) -> Iterator[tuple[str, Ptr, str]]:
    """(name, pointer to the route string, route text) for every route that has text."""
    for name, (ptr, value) in view.routes().items():
        if isinstance(value, str):
            yield name, ptr, value
        elif isinstance(value, Mapping) and isinstance(value.get("route"), str):
            yield name, (*ptr, "route"), value["route"]


def check(view: ManifestView) -> Iterator[Finding]:
    texts = list(route_texts(view))
    modules = set(view.modules())
    partial = view.is_deployment and view.layered
    mine: list[Finding] = []
    missing: dict[Ptr, str] = {}  # route pointer -> repr of the absent target module
    for name, ptr, text in texts:
        try:
            route = parse_route(text)
        except RouteError as exc:
            col = f" at column {exc.column}" if exc.column else ""
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
    # the lint re-reports parse errors and missing targets: keep only what it adds
    routes_ptr = view.get(HUB, ("routes",))
    depth = len(routes_ptr[0]) + 1 if routes_ptr else 0
    syntax = {f.pointer[:depth] for f in mine if f.pointer is not None and f.rule == "route-syntax"}
    targets = {p[:depth]: module for p, module in missing.items()}
    for f in _lint(view):
        at = f.pointer[:depth] if f.pointer is not None and depth else None
        if at is not None and ((f.is_error and at in syntax) or (at in targets and targets[at] in f.message)):
            continue
        yield f


def _route_hint(text: str, exc: RouteError) -> str:
    caret = ""
    if exc.column:
        caret = f"{text}\n{' ' * (exc.column - 1)}^"
    hint = exc.hint or "a route reads FROM <source> [WHERE <condition>] INTO <sink>"
    return f"{hint}\n{caret}" if caret else hint


def _brokered_module(route: Route) -> str | None:
    """The module a parsed route delivers to (None for $upstream)."""
    return route.sink.module if isinstance(route.sink, ModuleInputEndpoint) else None


def _lint(view: ManifestView) -> Iterator[Finding]:
    for item in lint_routes(view.manifest, messaging=view.messaging):
        path = item.path
        if view.root == ("content", "modulesContent") and path.startswith("modulesContent"):
            path = "content." + path  # the lint names paths from modulesContent
        pointer = resolve_path(view.manifest, path) if path else None
        yield Finding(item.severity, path, item.message, item.hint, rule="route-lint", pointer=pointer)
