"""edgeHub's route language: parse, type-check, compile to closures, evaluate, lint and draw routes.

The single implementation used by validation, ``edgegen route test`` / ``edgegen routes`` and the local edge
hub router. Imports nothing of edgegen's but ``edgegen.errors``.

Names are imported from their modules on first use (PEP 562), so a caller that only parses routes does not pay
for the condition compiler and its builtins (``edgegen genconfig`` validates routes on every run).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgegen.routing.condition import Condition, Step, compile_condition
    from edgegen.routing.errors import RouteError
    from edgegen.routing.lint import LintFinding, ManifestRoutes, lint_routes, manifest_routes
    from edgegen.routing.message import Message
    from edgegen.routing.parser import parse_condition
    from edgegen.routing.route import Endpoint, ModuleInputEndpoint, Route, UpstreamEndpoint, parse_route
    from edgegen.routing.sources import TWIN_CHANGE_SOURCE, message_source, normalize_source, source_matches
    from edgegen.routing.table import DEFAULT_PRIORITY, CompiledRoute, Delivery, RouteResult, RouteTable
    from edgegen.routing.values import ABSENT, FALSE, TRUE, UNDEFINED, Bool

_WHERE: dict[str, str] = {
    "Bool": "edgegen.routing.values",
    "CompiledRoute": "edgegen.routing.table",
    "Condition": "edgegen.routing.condition",
    "DEFAULT_PRIORITY": "edgegen.routing.table",
    "Delivery": "edgegen.routing.table",
    "Endpoint": "edgegen.routing.route",
    "FALSE": "edgegen.routing.values",
    "LintFinding": "edgegen.routing.lint",
    "ManifestRoutes": "edgegen.routing.lint",
    "Message": "edgegen.routing.message",
    "ModuleInputEndpoint": "edgegen.routing.route",
    "Route": "edgegen.routing.route",
    "RouteError": "edgegen.routing.errors",
    "RouteResult": "edgegen.routing.table",
    "RouteTable": "edgegen.routing.table",
    "Step": "edgegen.routing.condition",
    "TRUE": "edgegen.routing.values",
    "TWIN_CHANGE_SOURCE": "edgegen.routing.sources",
    "ABSENT": "edgegen.routing.values",
    "UNDEFINED": "edgegen.routing.values",
    "UpstreamEndpoint": "edgegen.routing.route",
    "compile_condition": "edgegen.routing.condition",
    "lint_routes": "edgegen.routing.lint",
    "manifest_routes": "edgegen.routing.lint",
    "message_source": "edgegen.routing.sources",
    "normalize_source": "edgegen.routing.sources",
    "parse_condition": "edgegen.routing.parser",
    "parse_route": "edgegen.routing.route",
    "source_matches": "edgegen.routing.sources",
}

__all__ = [
    "ABSENT",
    "DEFAULT_PRIORITY",
    "FALSE",
    "TRUE",
    "TWIN_CHANGE_SOURCE",
    "UNDEFINED",
    "Bool",
    "CompiledRoute",
    "Condition",
    "Delivery",
    "Endpoint",
    "LintFinding",
    "ManifestRoutes",
    "Message",
    "ModuleInputEndpoint",
    "Route",
    "RouteError",
    "RouteResult",
    "RouteTable",
    "Step",
    "UpstreamEndpoint",
    "compile_condition",
    "lint_routes",
    "manifest_routes",
    "message_source",
    "normalize_source",
    "parse_condition",
    "parse_route",
    "source_matches",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'edgegen.routing' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
