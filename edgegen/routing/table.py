"""A route table: every route of a manifest compiled once; for a message, the endpoints it goes to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from edgegen.routing.errors import RouteError
from edgegen.routing.route import Endpoint, Route, parse_route
from edgegen.routing.values import TRUE, Bool

if TYPE_CHECKING:  # the condition compiler is imported only for a route that has a WHERE clause
    from edgegen.routing.condition import Condition
    from edgegen.routing.message import Message

__all__ = ["DEFAULT_PRIORITY", "CompiledRoute", "Delivery", "RouteResult", "RouteTable", "route_spec"]

# A route given as a plain string (schema 1.0, or 1.1 without "priority") has the lowest priority.
DEFAULT_PRIORITY = 2_000_000_000
ROUTE_NAME = re.compile(r"^[^.$# ]+$")


@dataclass(frozen=True)
class Delivery:
    """Send the message to ``endpoint`` with ``priority`` (0 is the highest) and ``ttl_secs`` (None: the hub's
    storeAndForwardConfiguration default). ``route_name`` is the route that won."""

    endpoint: Endpoint
    priority: int
    ttl_secs: int | None
    route_name: str


@dataclass(frozen=True)
class CompiledRoute:
    name: str
    route: Route
    priority: int
    ttl_secs: int | None
    condition: Condition | None  # None: no WHERE (always true)

    def evaluate(self, message: Message) -> Bool:
        return TRUE if self.condition is None else self.condition(message)


@dataclass(frozen=True)
class RouteResult:
    name: str
    source_matches: bool
    result: Bool | None  # None when the source did not match (condition not evaluated)


def route_spec(name: str, value: Any, schema_version: str, path: str) -> tuple[str, int, int | None]:
    """(route text, priority, ttl) from a manifest route value, validating its shape."""
    if isinstance(value, str):
        return value, DEFAULT_PRIORITY, None
    if not isinstance(value, Mapping):
        raise RouteError(f"route {name!r} must be a string or an object, not {type(value).__name__}",
                         json_path=path, hint='write "FROM ... INTO ..." or {"route": "FROM ... INTO ...", '
                                              '"priority": 0, "timeToLiveSecs": 86400}')
    if schema_version == "1.0":
        raise RouteError(f"route {name!r} is an object, which $edgeHub schemaVersion 1.0 does not allow",
                         json_path=path, hint='set "schemaVersion": "1.1" (or newer) or write the route as a string')
    text = value.get("route")
    if not isinstance(text, str):
        raise RouteError(f"route {name!r} has no \"route\" string", json_path=path,
                         hint='add "route": "FROM ... INTO ..."')
    unknown = sorted(set(value) - {"route", "priority", "timeToLiveSecs"})
    if unknown:
        raise RouteError(f"route {name!r} has unknown keys {unknown}", json_path=path,
                         hint="allowed keys: route, priority, timeToLiveSecs")
    priority = value.get("priority", DEFAULT_PRIORITY)
    if priority != DEFAULT_PRIORITY and (isinstance(priority, bool) or not isinstance(priority, int)
                                         or not 0 <= priority <= 9):
        raise RouteError(f"route {name!r} has priority {priority!r}; it must be an integer 0-9 (0 is the highest)",
                         json_path=f"{path}.priority")
    ttl = value.get("timeToLiveSecs")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
        raise RouteError(f"route {name!r} has timeToLiveSecs {ttl!r}; it must be a non-negative integer",
                         json_path=f"{path}.timeToLiveSecs")
    return text, int(priority), ttl


def compile_route(name: str, text: str, priority: int, ttl: int | None, path: str) -> CompiledRoute:
    try:
        route, condition = _compile(text) if type(text) is str else _compile.__wrapped__(text)
    except RouteError as exc:
        raise exc.at(json_path=path) from None
    return CompiledRoute(name, route, priority, ttl, condition)


@lru_cache(maxsize=4096)
def _compile(text: str) -> tuple[Route, Condition | None]:
    """The parsed route and its compiled condition, once per distinct route text: both are immutable (a
    Condition's closures keep no state), so manifests and route tables sharing a route share them."""
    route = parse_route(text)
    condition = None
    if route.condition_ast is not None and route.condition is not None:
        from edgegen.routing.condition import compile_parsed

        condition = compile_parsed(route.condition, route.condition_ast, body_query=True,
                                   twin_change_includes=True, source=route.source, span_text=text)
    return route, condition


class RouteTable:
    """Compiled routes. ``match(message)`` gives each endpoint once, at its best (lowest) priority."""

    def __init__(self, routes: list[CompiledRoute]) -> None:
        self.routes: dict[str, CompiledRoute] = {r.name: r for r in routes}
        self._by_source: dict[str, list[CompiledRoute]] = {}
        sinks = {r.route.sink: i for i, r in enumerate(reversed(list(self.routes.values())))}
        # per route, what the hot loop needs: (condition closure or None, sink index, priority, the Delivery)
        self._plan: dict[str, tuple[Any, int, int, Delivery]] = {
            r.name: (None if r.condition is None else r.condition.predicate, sinks[r.route.sink], r.priority,
                     Delivery(r.route.sink, r.priority, r.ttl_secs, r.name))
            for r in self.routes.values()
        }
        self._plans: dict[str, list[tuple[Any, int, int, Delivery]]] = {}

    @classmethod
    def from_routes(cls, routes: Mapping[str, str | Mapping[str, Any]], schema_version: str = "1.1", *,
                    path: str = "routes") -> RouteTable:
        compiled = []
        for name, value in routes.items():
            rpath = f"{path}.{name}"
            if not ROUTE_NAME.match(name):
                raise RouteError(f"route name {name!r} may not contain '.', '$', '#' or spaces", json_path=rpath)
            text, priority, ttl = route_spec(name, value, schema_version, rpath)
            compiled.append(compile_route(name, text, priority, ttl, rpath))
        return cls(compiled)

    def route_names(self) -> list[str]:
        return list(self.routes)

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint some route can deliver to, in route order, each once."""
        return list(dict.fromkeys(r.route.sink for r in self.routes.values()))

    def routes_for_source(self, source: str) -> list[CompiledRoute]:
        key = source.lower()
        found = self._by_source.get(key)
        if found is None:
            found = [r for r in self.routes.values() if r.route.matches_source(source)]
            if len(self._by_source) < 10_000:
                self._by_source[key] = found
        return found

    def match(self, message: Message, source: str | None = None) -> list[Delivery]:
        """Where ``message`` goes. ``source`` defaults to edgeHub's rule over its system properties."""
        src = message.source if source is None else source
        plan = self._plans.get(src)
        if plan is None:
            plan = [self._plan[r.name] for r in self.routes_for_source(src)]
            if len(self._plans) < 10_000:
                self._plans[src] = plan
        best: dict[int, tuple[Any, int, int, Delivery]] = {}
        for step in plan:
            fn = step[0]
            if fn is not None and fn(message) is not TRUE:
                continue
            prev = best.get(step[1])
            if prev is None or step[2] < prev[2]:
                best[step[1]] = step
        return [s[3] for s in best.values()]

    def evaluate(self, message: Message, source: str | None = None) -> list[RouteResult]:
        """Each route's outcome for ``message`` (for explanations)."""
        src = message.source if source is None else source
        out = []
        for r in self.routes.values():
            if not r.route.matches_source(src):
                out.append(RouteResult(r.name, False, None))
            else:
                out.append(RouteResult(r.name, True, r.evaluate(message)))
        return out
