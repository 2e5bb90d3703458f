"""Compile an expression to a closure over a twin document; values are JSON values or ``ABSENT``.

Three-valued like IoT Hub: a missing property is undefined (not null); a comparison between different JSON
types is undefined; ``AND``/``OR``/``NOT`` follow Kleene's logic; only ``true`` selects a document.
``null`` compares equal only to ``null`` (``x != null`` is true for any defined non-null ``x``).
Function calls are checked here, once: unknown names, arity, and literal arguments of the wrong type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from edgegen.local.hubstandin.query.ast import (
    Array,
    Binary,
    BinaryOp,
    Call,
    Expr,
    Literal,
    Path,
    Source,
    Unary,
    UnaryOp,
)
from edgegen.local.hubstandin.query.errors import QueryError
from edgegen.local.hubstandin.query.functions import ANY, BUILTINS, NUMBER, is_number, static_type_of_value
from edgegen.routing.values import ABSENT

__all__ = ["Doc", "Evaluator", "compare", "compile_expr", "lookup", "resolve_parts"]

Doc = Mapping[str, Any]
Evaluator = Callable[[Doc], Any]

_ARITH = {BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.MOD}
_ORDER = {BinaryOp.LT: lambda a, b: a < b, BinaryOp.LE: lambda a, b: a <= b,
          BinaryOp.GT: lambda a, b: a > b, BinaryOp.GE: lambda a, b: a >= b}


def resolve_parts(parts: tuple[str, ...], source: Source) -> tuple[str, ...]:
    """Drop a leading collection qualifier: ``devices.tags.x`` is ``tags.x``; in a module query
    ``devices.modules.moduleId`` and ``devices.deviceId`` name the module twin's own fields."""
    low = [p.lower() for p in parts]
    if source is Source.MODULES and low[:2] == ["devices", "modules"] and len(parts) > 2:
        return parts[2:]
    if low[0] == "devices" and len(parts) > 1:
        return parts[1:]
    return parts


def lookup(doc: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        else:
            return ABSENT
    return doc


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b)
    return type(a) is type(b)


def compare(op: BinaryOp, a: Any, b: Any) -> Any:
    if a is ABSENT or b is ABSENT:
        return ABSENT
    if op in (BinaryOp.EQ, BinaryOp.NE):
        if a is None or b is None:
            same = a is None and b is None
        elif not _same_kind(a, b):
            return ABSENT
        else:
            same = a == b
        return same if op is BinaryOp.EQ else not same
    if not _same_kind(a, b) or not (is_number(a) or isinstance(a, str)):
        return ABSENT
    return _ORDER[op](a, b)


def _num(x: float) -> int | float:
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 2**53 else x


def _arith(op: BinaryOp, a: Any, b: Any) -> Any:
    if not (is_number(a) and is_number(b)):
        return ABSENT
    try:
        if op is BinaryOp.ADD:
            out = a + b
        elif op is BinaryOp.SUB:
            out = a - b
        elif op is BinaryOp.MUL:
            out = a * b
        elif op is BinaryOp.DIV:
            out = _num(a / b)
        else:
            out = _num(math.fmod(a, b)) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))
    except (ZeroDivisionError, ValueError, OverflowError):
        return ABSENT
    return ABSENT if isinstance(out, float) and not math.isfinite(out) else out


def _and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    return True if a is True and b is True else ABSENT


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    return False if a is False and b is False else ABSENT


def _member(value: Any, options: Any, negate: bool) -> Any:
    if value is ABSENT or not isinstance(options, list):
        return ABSENT
    found = any(compare(BinaryOp.EQ, value, o) is True for o in options)
    return found != negate


def static_type(node: Expr) -> str:
    """What a node is known to produce before any document is seen (``any`` when unknown)."""
    if isinstance(node, Literal):
        return static_type_of_value(node.value)
    if isinstance(node, Array):
        return "array"
    if isinstance(node, Call):
        builtin = BUILTINS.get(node.name.upper())
        return builtin.result if builtin else ANY
    if isinstance(node, Unary):
        return "bool" if node.op is UnaryOp.NOT else NUMBER
    if isinstance(node, Binary):
        return NUMBER if node.op in _ARITH else "bool"
    return ANY


def compile_expr(node: Expr, text: str, source: Source = Source.DEVICES) -> Evaluator:
    """``text`` is the source the node's spans point into (for errors with a caret)."""
    if isinstance(node, Literal):
        value = node.value
        return lambda doc: value
    if isinstance(node, Path):
        parts = resolve_parts(node.parts, source)
        if len(parts) == 1:
            key = parts[0]
            return lambda doc: doc.get(key, ABSENT) if isinstance(doc, Mapping) else ABSENT
        return lambda doc: lookup(doc, parts)
    if isinstance(node, Array):
        items = [compile_expr(i, text, source) for i in node.items]
        return lambda doc: [v for v in (i(doc) for i in items) if v is not ABSENT]
    if isinstance(node, Unary):
        operand = compile_expr(node.operand, text, source)
        if node.op is UnaryOp.NOT:
            return lambda doc: (lambda v: not v if isinstance(v, bool) else ABSENT)(operand(doc))
        return lambda doc: (lambda v: -v if is_number(v) else ABSENT)(operand(doc))
    if isinstance(node, Binary):
        return _compile_binary(node, text, source)
    return _compile_call(node, text, source)


def _compile_binary(node: Binary, text: str, source: Source) -> Evaluator:
    left, right, op = compile_expr(node.left, text, source), compile_expr(node.right, text, source), node.op
    if op is BinaryOp.AND:
        return lambda doc: (lambda a: False if a is False else _and(a, right(doc)))(left(doc))
    if op is BinaryOp.OR:
        return lambda doc: (lambda a: True if a is True else _or(a, right(doc)))(left(doc))
    if op in (BinaryOp.IN, BinaryOp.NIN):
        negate = op is BinaryOp.NIN
        return lambda doc: _member(left(doc), right(doc), negate)
    if op in _ARITH:
        return lambda doc: _arith(op, left(doc), right(doc))
    return lambda doc: compare(op, left(doc), right(doc))


def _compile_call(node: Call, text: str, source: Source) -> Evaluator:
    builtin = BUILTINS.get(node.name.upper())
    if builtin is None:
        known = ", ".join(sorted(BUILTINS))
        raise QueryError(f"unknown function {node.name!r}", text=text, column=node.name_span.start + 1,
                         hint=f"known functions: {known}")
    if not builtin.accepts_count(len(node.args)):
        raise QueryError(f"{builtin.name} takes {builtin.arity_text()} argument(s), got {len(node.args)}",
                         text=text, column=node.span.start + 1)
    for i, arg in enumerate(node.args):
        want, got = builtin.param(i), static_type(arg)
        if want != ANY and got != ANY and got != want:
            raise QueryError(f"{builtin.name} expects a {want} as argument {i + 1}, not a {got}", text=text,
                             column=arg.span.start + 1, hint=f"{builtin.name}: {builtin.doc}")
    args = [compile_expr(a, text, source) for a in node.args]
    fn = builtin.fn
    if len(args) == 1:
        only = args[0]
        return lambda doc: fn(only(doc))
    return lambda doc: fn(*(a(doc) for a in args))
