"""edgeHub's route language: parse, type-check, compile to closures, evaluate, lint and draw routes.

The single implementation used by validation, ``edgegen route test`` / ``edgegen routes`` and the local edge
hub router. Imports nothing of edgegen's but ``edgegen.errors``.
"""

from edgegen.routing.condition import Condition, Step, compile_condition
from edgegen.routing.errors import RouteError
from edgegen.routing.lint import LintFinding, ManifestRoutes, lint_routes, manifest_routes
from edgegen.routing.message import Message
from edgegen.routing.parser import parse_condition
from edgegen.routing.route import Endpoint, ModuleInputEndpoint, Route, UpstreamEndpoint, parse_route
from edgegen.routing.sources import TWIN_CHANGE_SOURCE, message_source, normalize_source, source_matches
from edgegen.routing.table import DEFAULT_PRIORITY, CompiledRoute, Delivery, RouteResult, RouteTable
from edgegen.routing.values import FALSE, TRUE, UNDEF, UNDEFINED, Bool

__all__ = [
    "DEFAULT_PRIORITY",
    "FALSE",
    "TRUE",
    "TWIN_CHANGE_SOURCE",
    "UNDEF",
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
