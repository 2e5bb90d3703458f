"""IoT Hub's query language over twins: ``SELECT … FROM devices[.modules] [WHERE …] [GROUP BY …]`` and the
target conditions of configurations. Pure: text in, compiled callables out; documents in, rows out.

lexer → parser (Pratt, typed AST with spans) → evaluate (closures, built-ins checked at compile time)
→ engine (filter, group, project, page). The stand-in's ``/devices/query``, configuration targeting and
deployment metrics all go through here. Depends on edgegen.errors and the routing room's ``Span``/``ABSENT``.
"""

from edgegen.local.hubstandin.query.ast import Source
from edgegen.local.hubstandin.query.engine import CompiledQuery, Page, Target, compile_query, compile_target, page_rows
from edgegen.local.hubstandin.query.errors import QueryError
from edgegen.local.hubstandin.query.parser import parse_condition, parse_query, parse_target

__all__ = [
    "CompiledQuery",
    "Page",
    "QueryError",
    "Source",
    "Target",
    "compile_query",
    "compile_target",
    "page_rows",
    "parse_condition",
    "parse_query",
    "parse_target",
]
