"""Run-time operator semantics (three-valued logic, IEEE numbers, $body value comparisons), as closures."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from edgegen.routing.ast import BinaryOp
from edgegen.routing.values import ABSENT, FALSE, TRUE, UNDEFINED, Bool, Ty

__all__ = ["compare", "compare_const", "logic_and", "logic_not", "logic_or", "number_op", "to_bool", "to_query"]

Fn = Callable[[Any], Any]
NAN = math.nan


def _const(v: Any) -> Fn:
    return lambda _m: v


# -- conversions -------------------------------------------------------------------------------------------
def _qv_bool(v: Any) -> Bool:
    return TRUE if v is True else FALSE if v is False else UNDEFINED


def to_bool(ty: Ty, fn: Fn) -> Fn:
    """A value used as a condition: booleans as they are, null → false, JSON true/false, everything else undefined."""
    if ty is Ty.BOOL:
        return fn
    if ty is Ty.NULL:
        return _const(FALSE)
    if ty is Ty.QUERY:
        return lambda m: _qv_bool(fn(m))
    return _const(UNDEFINED)


def to_query(ty: Ty, fn: Fn) -> Fn:
    """A typed value as a $body value (float/str/bool/None, ABSENT when undefined)."""
    if ty is Ty.QUERY or ty is Ty.STRING:
        return fn
    if ty is Ty.NUMBER:
        return lambda m: v if (v := fn(m)) == v else ABSENT
    if ty is Ty.BOOL:
        return lambda m: True if (v := fn(m)) is TRUE else False if v is FALSE else ABSENT
    if ty is Ty.NULL:
        return _const(None)
    return _const(ABSENT)


# -- logic -------------------------------------------------------------------------------------------------
_NOT = {TRUE: FALSE, FALSE: TRUE, UNDEFINED: UNDEFINED}


def logic_not(f: Fn) -> Fn:
    return lambda m: _NOT[f(m)]


def logic_and(lf: Fn, rf: Fn) -> Fn:
    def fn(m: Any) -> Bool:
        a = lf(m)
        if a is FALSE:
            return FALSE
        b = rf(m)
        if b is FALSE:
            return FALSE
        return TRUE if a is TRUE and b is TRUE else UNDEFINED

    return fn


def logic_or(lf: Fn, rf: Fn) -> Fn:
    def fn(m: Any) -> Bool:
        a = lf(m)
        if a is TRUE:
            return TRUE
        b = rf(m)
        if b is TRUE:
            return TRUE
        return FALSE if a is FALSE and b is FALSE else UNDEFINED

    return fn


# -- numbers -----------------------------------------------------------------------------------------------
def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


_ARITH: dict[BinaryOp, Callable[[float, float], float]] = {
    BinaryOp.ADD: operator.add,
    BinaryOp.SUB: operator.sub,
    BinaryOp.MUL: operator.mul,
    BinaryOp.DIV: _div,
    BinaryOp.MOD: _mod,
}


def number_op(op: BinaryOp, lf: Fn, rf: Fn, query: bool) -> Fn:
    f = _ARITH[op]
    if not query:
        return lambda m: f(lf(m), rf(m))

    def qfn(m: Any) -> Any:
        a, b = lf(m), rf(m)
        if a.__class__ is not float or b.__class__ is not float:
            return ABSENT
        v = f(a, b)
        return v if v == v else ABSENT

    return qfn


# -- comparisons -------------------------------------------------------------------------------------------
_CMP: dict[BinaryOp, Callable[[Any, Any], bool]] = {
    BinaryOp.EQ: operator.eq,
    BinaryOp.NE: operator.ne,
    BinaryOp.LT: operator.lt,
    BinaryOp.LE: operator.le,
    BinaryOp.GT: operator.gt,
    BinaryOp.GE: operator.ge,
}
# null compared with null (edgeHub's Null operators)
_NULL_NULL = {BinaryOp.EQ: TRUE, BinaryOp.NE: FALSE, BinaryOp.LT: FALSE, BinaryOp.GT: FALSE,
              BinaryOp.LE: TRUE, BinaryOp.GE: TRUE}


def compare(op: BinaryOp, lt: Ty, rt: Ty, lf: Fn, rf: Fn) -> Fn:
    c = _CMP[op]
    if Ty.QUERY in (lt, rt):
        return _query_compare(op, to_query(lt, lf), to_query(rt, rf))
    if lt is Ty.UNDEFINED or rt is Ty.UNDEFINED:
        return _const(UNDEFINED)
    if lt is Ty.NULL and rt is Ty.NULL:
        return _const(_NULL_NULL[op])
    if lt is Ty.NULL or rt is Ty.NULL:
        return _const(UNDEFINED)
    if lt is Ty.NUMBER:
        def num(m: Any) -> Bool:
            a, b = lf(m), rf(m)
            if a != a or b != b:
                return UNDEFINED
            return TRUE if c(a, b) else FALSE

        return num
    if lt is Ty.STRING:
        if op is BinaryOp.EQ:  # the hot path: property = 'literal'
            def str_eq(m: Any) -> Bool:
                a, b = lf(m), rf(m)
                if a.__class__ is str and b.__class__ is str:
                    return TRUE if a == b else FALSE
                return UNDEFINED

            return str_eq

        def string(m: Any) -> Bool:
            a, b = lf(m), rf(m)
            if a.__class__ is str and b.__class__ is str:
                return TRUE if c(a, b) else FALSE
            return UNDEFINED

        return string

    def boolean(m: Any) -> Bool:  # Bool vs Bool
        a, b = lf(m), rf(m)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        return TRUE if c(a.value, b.value) else FALSE

    return boolean


def _query_compare(op: BinaryOp, lf: Fn, rf: Fn) -> Fn:
    c = _CMP[op]

    def fn(m: Any) -> Bool:
        a, b = lf(m), rf(m)
        if a is ABSENT or b is ABSENT:
            return UNDEFINED
        if a.__class__ is not b.__class__:  # JSON types are never coerced
            return FALSE if op is BinaryOp.EQ else TRUE if op is BinaryOp.NE else UNDEFINED
        if a is None:
            return _NULL_NULL[op]
        return TRUE if c(a, b) else FALSE

    return fn


def compare_const(op: BinaryOp, lt: Ty, rt: Ty, lf: Fn, value: Any) -> Fn:
    """``left <op> constant``, the usual shape of a route condition, with the constant converted once."""
    c = _CMP[op]
    if Ty.QUERY in (lt, rt):
        qv = to_query(rt, lambda _m: value)(None)
        qf = to_query(lt, lf)
        if qv is ABSENT:
            return _const(UNDEFINED)
        qcls = qv.__class__
        if qv is None:
            return _query_compare(op, qf, lambda _m: None)
        mismatch = FALSE if op is BinaryOp.EQ else TRUE if op is BinaryOp.NE else UNDEFINED

        def query(m: Any) -> Bool:
            a = qf(m)
            if a.__class__ is qcls:
                return TRUE if c(a, qv) else FALSE
            return UNDEFINED if a is ABSENT else mismatch

        return query
    if lt is Ty.NUMBER and rt is Ty.NUMBER:
        if value != value:
            return _const(UNDEFINED)

        def num(m: Any) -> Bool:
            a = lf(m)
            if a != a:
                return UNDEFINED
            return TRUE if c(a, value) else FALSE

        return num
    if lt is Ty.STRING and rt is Ty.STRING and value.__class__ is str:
        def string(m: Any) -> Bool:
            a = lf(m)
            if a.__class__ is str:
                return TRUE if c(a, value) else FALSE
            return UNDEFINED

        return string
    return compare(op, lt, rt, lf, lambda _m: value)
