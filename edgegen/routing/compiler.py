"""Type-check a condition's AST once and turn it into nested closures (no tree walking per message).

Types follow edgeHub: application and system properties are strings, literals have their own type, a
``$body`` query is a dynamic JSON value (Ty.QUERY). Mismatches are compile errors, never run-time ``false``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgegen.routing import functions as bi
from edgegen.routing.ast import (
    Binary,
    BinaryOp,
    Call,
    Empty,
    Literal,
    LiteralKind,
    Node,
    Property,
    Span,
    SysProperty,
    Unary,
    UnaryOp,
)
from edgegen.routing.errors import RouteError
from edgegen.routing.message import NO_MATCH, Message, body_query, compile_json_path, valid_json_path
from edgegen.routing.message import select as bi_select
from edgegen.routing.ops import (
    compare,
    compare_const,
    logic_and,
    logic_not,
    logic_or,
    number_op,
    to_bool,
    to_query,
)
from edgegen.routing.sources import TWIN_CHANGE_SOURCE, is_twin_change_source
from edgegen.routing.values import ABSENT, FALSE, TRUE, UNDEFINED, Ty

__all__ = ["Compiled", "Compiler"]

Fn = Callable[[Message], Any]
_EMPTY = Message()


@dataclass(frozen=True)
class Compiled:
    ty: Ty
    fn: Fn
    const: bool = False  # does not depend on the message
    uses_body: bool = False


def _const(ty: Ty, value: Any) -> Compiled:
    return Compiled(ty, lambda _m: value, const=True)


def _fold(ty: Ty, fn: Fn, parts: tuple[Compiled, ...]) -> Compiled:
    """Constant-fold when every part is constant; remember whether $body is read."""
    if all(p.const for p in parts):
        return _const(ty, fn(_EMPTY))
    return Compiled(ty, fn, uses_body=any(p.uses_body for p in parts))


_NUMERIC_HINT = "properties are strings: use as_number(name) to read one as a number"


class Compiler:
    def __init__(self, text: str, *, body_query: bool, twin_change_includes: bool, source: str | None) -> None:
        self.text = text
        self.body_query = body_query
        self.twin = twin_change_includes
        self.source = source
        self.parts: dict[int, Compiled] = {}  # id(node) -> compiled, for explanations

    def error(self, span: Span, message: str, hint: str | None = None) -> RouteError:
        return RouteError(message, text=self.text, column=span.start + 1, hint=hint)

    def snippet(self, node: Node) -> str:
        return node.span.text(self.text) or "(empty)"

    def compile(self, node: Node) -> Compiled:
        method: Callable[[Any], Compiled] = getattr(self, f"_c_{type(node).__name__.lower()}")
        out = method(node)
        self.parts[id(node)] = out
        return out

    # -- leaves ----------------------------------------------------------------------------------------
    def _c_empty(self, node: Empty) -> Compiled:
        return _const(Ty.UNDEFINED, ABSENT)

    def _c_literal(self, node: Literal) -> Compiled:
        kind = node.kind
        if kind is LiteralKind.NUMBER:
            return _const(Ty.NUMBER, node.value)
        if kind is LiteralKind.STRING:
            return _const(Ty.STRING, node.value)
        if kind is LiteralKind.BOOL:
            return _const(Ty.BOOL, TRUE if node.value else FALSE)
        if kind is LiteralKind.NULL:
            return _const(Ty.NULL, None)
        return _const(Ty.UNDEFINED, ABSENT)

    def _c_property(self, node: Property) -> Compiled:
        key = node.name.lower()
        return Compiled(Ty.STRING, lambda m: m.folded_properties.get(key, ABSENT))

    def _body_query(self, node: SysProperty) -> Compiled | None:
        """``$body.<path>`` when body queries are on; None when this is not a body query."""
        full = "$" + node.name
        if not self.body_query or not full.lower().startswith("$body."):
            return None
        path = full[len("$body.") :]
        if not path or not valid_json_path(path):
            raise self.error(node.span, f"invalid $body query {full!r}",
                             "write $body.a.b or $body.a[0].b: names separated by '.', each optionally "
                             "followed by one [index]")
        steps = compile_json_path(path)
        return Compiled(Ty.QUERY, lambda m: body_query(m, steps), uses_body=True)

    def _sys_property(self, name: str) -> Compiled:
        if "[" in name or "]" in name:
            return _const(Ty.UNDEFINED, ABSENT)
        key = name.lower()
        return Compiled(Ty.STRING, lambda m: m.folded_system_properties.get(key, ABSENT))

    def _c_sysproperty(self, node: SysProperty) -> Compiled:
        body = self._body_query(node)
        if node.escaped:
            return body if body is not None else self._sys_property(node.name)
        if "[" in node.name or "]" in node.name:
            return body if body is not None else _const(Ty.UNDEFINED, ABSENT)
        alt = body if body is not None else self._sys_property(node.name)
        key = ("$" + node.name).lower()
        alt_fn = alt.fn
        if alt.const:
            alt_value = alt.fn(_EMPTY)
            return Compiled(alt.ty if body is not None else Ty.STRING,
                            lambda m: m.folded_properties.get(key, alt_value))

        def fn(m: Message) -> Any:
            v = m.folded_properties.get(key, ABSENT)
            return alt_fn(m) if v is ABSENT else v

        return Compiled(alt.ty, fn, uses_body=alt.uses_body)

    # -- operators -------------------------------------------------------------------------------------
    def _c_unary(self, node: Unary) -> Compiled:
        arg = self.compile(node.operand)
        f = arg.fn
        if node.op is UnaryOp.NEG:
            if arg.ty is Ty.NUMBER:
                return _fold(Ty.NUMBER, lambda m: -f(m), (arg,))
            if arg.ty is Ty.QUERY:
                return _fold(Ty.QUERY, lambda m: -v if (v := f(m)).__class__ is float else ABSENT, (arg,))
            raise self.error(node.span, f"unary '-' needs a number, but {self.snippet(node.operand)!r} is a {arg.ty}",
                             _NUMERIC_HINT if arg.ty is Ty.STRING else None)
        if arg.ty is Ty.NULL:
            return _const(Ty.BOOL, TRUE)
        if arg.ty in (Ty.BOOL, Ty.UNDEFINED, Ty.QUERY):
            return _fold(Ty.BOOL, logic_not(to_bool(arg.ty, f)), (arg,))
        raise self.error(node.span, f"NOT needs a boolean, but {self.snippet(node.operand)!r} is a {arg.ty}",
                         "compare it first, e.g. NOT (name = 'value')")

    def _c_binary(self, node: Binary) -> Compiled:
        left = self.compile(node.left)
        right = self.compile(node.right)
        op = node.op
        if op in (BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV, BinaryOp.MOD):
            return self._arith(node, left, right)
        if op is BinaryOp.CONCAT:
            return self._concat(node, left, right)
        if op in (BinaryOp.AND, BinaryOp.OR):
            return self._logic(node, left, right)
        if op is BinaryOp.COALESCE:
            return self._coalesce(node, left, right)
        return self._compare(node, left, right)

    def _operand_error(self, node: Binary, left: Compiled, right: Compiled, need: str, hint: str | None) -> RouteError:
        return self.error(
            node.op_span,
            f"operator {node.op.value!r} needs {need}, but got {left.ty} {self.snippet(node.left)!r} and "
            f"{right.ty} {self.snippet(node.right)!r}",
            hint,
        )

    def _arith(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        ok = (Ty.NUMBER, Ty.QUERY)
        if left.ty not in ok or right.ty not in ok:
            hint = _NUMERIC_HINT if Ty.STRING in (left.ty, right.ty) else (
                "concatenate strings with || or concat()" if left.ty is right.ty is Ty.STRING else None)
            if left.ty is Ty.STRING and right.ty is Ty.STRING:
                hint = "concatenate strings with || or concat(); use as_number() for arithmetic"
            raise self._operand_error(node, left, right, "two numbers", hint)
        query = Ty.QUERY in (left.ty, right.ty)
        fn = number_op(node.op, left.fn, right.fn, query)
        return _fold(Ty.QUERY if query else Ty.NUMBER, fn, (left, right))

    def _concat(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        ok = (Ty.STRING, Ty.QUERY)
        if left.ty not in ok or right.ty not in ok:
            raise self._operand_error(node, left, right, "two strings", "|| joins strings only (null counts as '')")
        impl = bi.BUILTINS["concat"].overloads[0].impl((Ty.STRING, Ty.STRING))
        lf, rf = left.fn, right.fn
        if Ty.QUERY in (left.ty, right.ty):
            lf, rf = _coerce(lf, left.ty, Ty.STRING), _coerce(rf, right.ty, Ty.STRING)
        return _fold(Ty.STRING, lambda m: impl(lf(m), rf(m)), (left, right))

    def _logic(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        ok = (Ty.NULL, Ty.BOOL, Ty.UNDEFINED)
        left_ok = left.ty in ok or left.ty is Ty.QUERY
        # edgeHub accepts a $body value on the right only when the left is one too (its own quirk)
        right_ok = right.ty in ok or left.ty is Ty.QUERY
        if not (left_ok and right_ok):
            hint = "compare values to get a boolean, e.g. name = 'value'"
            if right.ty is Ty.QUERY:
                hint = (f"edgeHub rejects a bare $body value on the right of {node.op.value}: write "
                        f"{self.snippet(node.right)} = true")
            raise self._operand_error(node, left, right, "two booleans", hint)
        if node.op is BinaryOp.AND:
            if Ty.NULL in (left.ty, right.ty):
                return _const(Ty.NULL, None)
            return _fold(Ty.BOOL, logic_and(to_bool(left.ty, left.fn), to_bool(right.ty, right.fn)), (left, right))
        if left.ty is Ty.NULL and right.ty is Ty.NULL:
            return _const(Ty.NULL, None)
        if left.ty is Ty.NULL:
            return _fold(Ty.BOOL, to_bool(right.ty, right.fn), (right,))
        if right.ty is Ty.NULL:
            return _fold(Ty.BOOL, to_bool(left.ty, left.fn), (left,))
        return _fold(Ty.BOOL, logic_or(to_bool(left.ty, left.fn), to_bool(right.ty, right.fn)), (left, right))

    def _coalesce(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        if left.ty is Ty.UNDEFINED:
            return right
        lf, rf = left.fn, right.fn
        if Ty.QUERY in (left.ty, right.ty):
            ty = Ty.QUERY
            lf, rf = to_query(left.ty, lf), to_query(right.ty, rf)
        elif left.ty is right.ty or right.ty is Ty.UNDEFINED:
            ty = left.ty
            if right.ty is Ty.UNDEFINED:
                missing = _undefined_of(ty)
                rf = lambda _m: missing  # noqa: E731
        else:
            raise self._operand_error(node, left, right, "two values of the same type",
                                      "both sides of ?? must have one type (use as_number() on a property "
                                      "to mix it with numbers)")
        defined = bi.BUILTINS["is_defined"].overloads[0].impl((ty,))
        return _fold(ty, lambda m: v if defined(v := lf(m)) is TRUE else rf(m), (left, right))

    def _compare(self, node: Binary, left: Compiled, right: Compiled) -> Compiled:
        lt, rt = left.ty, right.ty
        if not (lt is rt or Ty.QUERY in (lt, rt) or Ty.UNDEFINED in (lt, rt) or Ty.NULL in (lt, rt)):
            hint = _NUMERIC_HINT if Ty.STRING in (lt, rt) and Ty.NUMBER in (lt, rt) else (
                "values of different types are never equal; compare like with like")
            raise self._operand_error(node, left, right, "two values of the same type", hint)
        if Ty.QUERY not in (lt, rt) and (Ty.UNDEFINED in (lt, rt) or Ty.NULL in (lt, rt)):
            # undefined, or null against a non-$body value: the result never depends on the message
            return _const(Ty.BOOL, compare(node.op, lt, rt, left.fn, right.fn)(_EMPTY))
        if right.const and not left.const:
            fn = compare_const(node.op, lt, rt, left.fn, right.fn(_EMPTY))
        else:
            fn = compare(node.op, lt, rt, left.fn, right.fn)
        return _fold(Ty.BOOL, fn, (left, right))

    # -- functions -------------------------------------------------------------------------------------
    def _c_call(self, node: Call) -> Compiled:
        builtin = bi.lookup(node.name)
        if builtin is None:
            close = difflib.get_close_matches(node.name.lower(), bi.BUILTINS, n=3)
            known = ", ".join(sorted(bi.BUILTINS))
            hint = f"did you mean {', '.join(close)}?" if close else f"known functions: {known}"
            raise self.error(node.name_span, f"unknown function {node.name!r}", hint)
        if builtin.flag == "twin_change_includes":
            return self._twin_change_includes(node)
        args = tuple(self.compile(a) for a in node.args)
        types = tuple(a.ty for a in args)
        overload = next((o for o in builtin.overloads if o.accepts(types)), None)
        if overload is None:
            arities = {len(o.params) for o in builtin.overloads}
            variadic = any(o.variadic for o in builtin.overloads)
            given = ", ".join(str(t) for t in types) or "no arguments"
            if (not variadic and len(types) not in arities) or (variadic and len(types) < min(arities)):
                msg = f"wrong number of arguments to {builtin.name}: got {len(types)}"
            else:
                msg = f"{builtin.name} cannot take ({given})"
            hint = f"{builtin.signatures()}"
            if Ty.STRING in types and any(bi.Ty.NUMBER in o.params for o in builtin.overloads):
                hint += f"; {_NUMERIC_HINT}"
            raise self.error(node.name_span, msg, hint)
        fns = [_coerce(a.fn, a.ty, overload.param_for(i)) for i, a in enumerate(args)]
        impl = overload.impl(tuple(_runtime_type(a.ty, overload.param_for(i)) for i, a in enumerate(args)))
        if len(fns) == 1:
            (f0,) = fns
            fn: Fn = lambda m: impl(f0(m))  # noqa: E731
        elif len(fns) == 2:
            f0, f1 = fns
            fn = lambda m: impl(f0(m), f1(m))  # noqa: E731
        else:
            fn = lambda m: impl(*[f(m) for f in fns])  # noqa: E731
        return _fold(overload.result, fn, args)

    def _twin_change_includes(self, node: Call) -> Compiled:
        if not self.twin:
            raise self.error(node.name_span, "twin_change_includes is not enabled here",
                             f"it is only available in routes FROM {TWIN_CHANGE_SOURCE}")
        if self.source is not None and not is_twin_change_source(self.source):
            raise self.error(node.name_span, f"twin_change_includes needs a route FROM {TWIN_CHANGE_SOURCE}",
                             f"this route reads {self.source!r}")
        path = node.raw_args
        prefixes = ("properties.reported.", "properties.desired.", "tags.")
        if not path:
            raise self.error(node.span, "twin_change_includes needs a path argument",
                             "e.g. twin_change_includes(properties.reported.temperature)")
        if not valid_json_path(path) or not path.lower().startswith(prefixes):
            raise self.error(node.span, f"twin_change_includes path {path!r} is not supported",
                             f"it must be a.b.c[0] form starting with one of {', '.join(prefixes)}")
        steps = compile_json_path(path)

        def fn(m: Message) -> Any:
            doc = m.json_body()
            if doc.__class__ is not dict:
                return UNDEFINED
            v = bi_select(doc, steps)
            return FALSE if v is NO_MATCH else TRUE

        return Compiled(Ty.BOOL, fn, uses_body=True)


def _runtime_type(arg: Ty, param: bi.Param) -> Ty:
    """The type an implementation sees: the argument's own type for 'any' parameters, else the parameter's."""
    return arg if param == bi.ANY or not isinstance(param, Ty) else param


def _undefined_of(ty: Ty) -> Any:
    if ty is Ty.NUMBER:
        return math.nan
    if ty is Ty.BOOL:
        return UNDEFINED
    return ABSENT


def _coerce(fn: Fn, ty: Ty, param: Any) -> Fn:
    """A $body value passed where a typed parameter is expected: keep it when its JSON type fits."""
    if ty is not Ty.QUERY or param == bi.ANY or param is Ty.QUERY:
        return fn
    if param is Ty.NUMBER:
        return lambda m: v if (v := fn(m)).__class__ is float else math.nan
    if param is Ty.STRING:
        return lambda m: v if (v := fn(m)).__class__ is str or v is None else ABSENT
    if param is Ty.BOOL:
        return lambda m: TRUE if (v := fn(m)) is True else FALSE if v is False else UNDEFINED
    return fn
