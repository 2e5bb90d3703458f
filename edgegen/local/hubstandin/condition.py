"""Target conditions of configurations: the query language's WHERE part, one implementation with the queries.

``tags.environment = 'prod' AND properties.reported.fw >= '1.2'``, ``*`` (every twin), ``''`` (none), or
``FROM devices.modules WHERE …`` for module configurations. See ``edgegen.local.hubstandin.query``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgegen.local.hubstandin.query import QueryError, compile_target

__all__ = ["ConditionError", "compile_condition"]

ConditionError = QueryError


def compile_condition(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a target condition; the result says whether a twin document is targeted (true only)."""
    return compile_target(text).matches
