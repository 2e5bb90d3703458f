"""The condition language's built-in functions, each declared once with its signatures.

The compiler picks the first overload whose arity and parameter types fit the arguments' static types and
reports a compile error otherwise. A ``$body`` value (Ty.QUERY) fits any parameter; at run time it is
coerced to the parameter's type and gives undefined when its JSON type does not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgegen.routing.values import ABSENT, FALSE, TRUE, UNDEFINED, Bool, Ty

__all__ = ["ANY", "BUILTINS", "Builtin", "Overload", "fits", "lookup"]

NAN = math.nan
INF = math.inf
ANY = "any"  # a parameter accepting every type
Param = Ty | str
Impl = Callable[..., Any]


@dataclass(frozen=True)
class Overload:
    params: tuple[Param, ...]
    result: Ty
    impl: Callable[[tuple[Ty, ...]], Impl]  # given the argument types, the function over runtime values
    variadic: bool = False  # the last parameter repeats (at least once)

    def accepts(self, types: tuple[Ty, ...]) -> bool:
        if self.variadic:
            if len(types) < len(self.params):
                return False
            params = self.params + (self.params[-1],) * (len(types) - len(self.params))
        else:
            if len(types) != len(self.params):
                return False
            params = self.params
        return all(fits(p, t) for p, t in zip(params, types, strict=True))

    def param_for(self, i: int) -> Param:
        return self.params[min(i, len(self.params) - 1)]

    def describe(self, name: str) -> str:
        ps = [str(p) for p in self.params]
        if self.variadic:
            ps.append(f"{self.params[-1]}...")
        return f"{name}({', '.join(ps)}) -> {self.result}"


@dataclass(frozen=True)
class Builtin:
    name: str
    overloads: tuple[Overload, ...]
    doc: str
    flag: str | None = None  # a compiler flag that must be on ("twin_change_includes")

    def signatures(self) -> str:
        return "; ".join(o.describe(self.name) for o in self.overloads)


def fits(param: Param, arg: Ty) -> bool:
    return param == ANY or arg is param or arg is Ty.QUERY


# -- helpers over runtime values ------------------------------------------------------------------------
def _num1(f: Callable[[float], float]) -> Callable[[tuple[Ty, ...]], Impl]:
    def impl(a: float) -> float:
        if a != a:
            return NAN
        try:
            return f(a)
        except OverflowError:
            return INF
        except ValueError:
            return NAN

    return lambda _types: impl


def _round(f: Callable[[float], int]) -> Callable[[float], float]:
    return lambda a: a if math.isinf(a) else float(f(a))


def _sign(a: float) -> float:
    return 0.0 if a == 0 else math.copysign(1.0, a)


def _power(_types: tuple[Ty, ...]) -> Impl:
    def impl(a: float, b: float) -> float:
        if a != a or b != b:
            return NAN
        try:
            return math.pow(a, b)
        except OverflowError:
            odd = b.is_integer() and int(b) % 2 == 1
            return -INF if a < 0 and odd else INF
        except ValueError:
            if a == 0 and b < 0:
                odd = b.is_integer() and int(b) % 2 == 1
                return -INF if odd and math.copysign(1, a) < 0 else INF
            return NAN

    return impl


def _is_defined(types: tuple[Ty, ...]) -> Impl:
    t = types[0]
    if t is Ty.NUMBER:
        return lambda v: TRUE if v == v else FALSE
    if t is Ty.BOOL:
        return lambda v: FALSE if v is UNDEFINED else TRUE
    if t is Ty.NULL:
        return lambda v: TRUE
    if t is Ty.UNDEFINED:
        return lambda v: FALSE
    return lambda v: FALSE if v is ABSENT else TRUE  # STRING, QUERY


def _is_null(types: tuple[Ty, ...]) -> Impl:
    t = types[0]
    if t is Ty.NULL:
        return lambda v: TRUE
    if t in (Ty.STRING, Ty.QUERY):
        return lambda v: TRUE if v is None else FALSE
    return lambda v: FALSE


def _is_number(types: tuple[Ty, ...]) -> Impl:
    t = types[0]
    if t in (Ty.NUMBER, Ty.QUERY):
        return lambda v: TRUE if v.__class__ is float and math.isfinite(v) else FALSE
    return lambda v: FALSE


def _is_string(types: tuple[Ty, ...]) -> Impl:
    if types[0] in (Ty.STRING, Ty.QUERY):
        return lambda v: TRUE if v.__class__ is str else FALSE
    return lambda v: FALSE


def _is_bool(types: tuple[Ty, ...]) -> Impl:
    t = types[0]
    if t is Ty.BOOL:
        return lambda v: FALSE if v is UNDEFINED else TRUE
    if t is Ty.QUERY:
        return lambda v: TRUE if v.__class__ is bool else FALSE
    return lambda v: FALSE


def parse_number(s: str) -> float:
    """.NET ``double.TryParse`` (invariant culture) closely enough: NaN when it is not a number."""
    t = s.strip()
    low = t.lower()
    if low in ("infinity", "+infinity", "∞"):
        return INF
    if low in ("-infinity", "-∞"):
        return -INF
    if low == "nan":
        return NAN
    if not t or not any(c.isdigit() for c in t) or not all(c in "0123456789+-.eE," for c in t):
        return NAN
    try:
        return float(t.replace(",", ""))
    except ValueError:
        return NAN


def _as_number(types: tuple[Ty, ...]) -> Impl:
    t = types[0]
    if t is Ty.NUMBER:
        return lambda v: v
    if t is Ty.STRING:
        return lambda v: parse_number(v) if v.__class__ is str else NAN

    def query(v: Any) -> float:  # QUERY: a JSON number, or a string holding one
        if v.__class__ is float:
            return float(v)
        return parse_number(v) if v.__class__ is str else NAN

    return query


def _strs(*vals: Any) -> bool:
    return all(v.__class__ is str for v in vals)


def _concat(_types: tuple[Ty, ...]) -> Impl:
    def impl(*vals: Any) -> Any:
        out = []
        for v in vals:
            if v.__class__ is str:
                out.append(v)
            elif v is not None:
                return ABSENT
        return "".join(out)

    return impl


def utf16_len(s: str) -> int:
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


def _str1(f: Callable[[str], Any], missing: Any) -> Callable[[tuple[Ty, ...]], Impl]:
    return lambda _types: (lambda v: f(v) if v.__class__ is str else missing)


def _substring(_types: tuple[Ty, ...]) -> Impl:
    def impl(s: Any, start: float, length: float | None = None) -> Any:
        if s.__class__ is not str or not math.isfinite(start):
            return ABSENT
        i = int(start)
        if i < 0 or i > len(s):
            return ABSENT
        if length is None:
            return s[i:]
        if not math.isfinite(length):
            return ABSENT
        n = int(length)
        if n < 0 or i + n > len(s):
            return ABSENT
        return s[i : i + n]

    return impl


def _str2(f: Callable[[str, str], Any], missing: Any) -> Callable[[tuple[Ty, ...]], Impl]:
    return lambda _types: (lambda a, b: f(a, b) if a.__class__ is str and b.__class__ is str else missing)


def _b(x: bool) -> Bool:
    return TRUE if x else FALSE


N, S = Ty.NUMBER, Ty.STRING


def _math(name: str, f: Callable[[float], float], doc: str) -> Builtin:
    return Builtin(name, (Overload((N,), N, _num1(f)),), doc)


def _check(name: str, impl: Callable[[tuple[Ty, ...]], Impl], doc: str) -> Builtin:
    return Builtin(name, (Overload((ANY,), Ty.BOOL, impl),), doc)


_ALL: list[Builtin] = [
    # math
    _math("abs", abs, "absolute value"),
    _math("exp", math.exp, "e to the power of x"),
    Builtin("power", (Overload((N, N), N, _power),), "x to the power of y"),
    _math("square", lambda a: a * a, "x * x"),
    _math("ceiling", _round(math.ceil), "smallest integer >= x"),
    _math("floor", _round(math.floor), "largest integer <= x"),
    _math("sign", _sign, "-1, 0 or 1"),
    _math("sqrt", math.sqrt, "square root (undefined for negative numbers)"),
    # type checks and conversion
    Builtin("as_number", (Overload((Ty.QUERY,), N, _as_number), Overload((S,), N, _as_number),
                          Overload((N,), N, _as_number)),
            "the number a string holds (undefined when it holds none)"),
    _check("is_bool", _is_bool, "true when the value is a defined boolean"),
    _check("is_defined", _is_defined, "true unless the value is undefined (null is defined)"),
    _check("is_null", _is_null, "true when the value is null"),
    _check("is_number", _is_number, "true when the value is a finite number"),
    _check("is_string", _is_string, "true when the value is a string (not null)"),
    # strings
    Builtin("concat", (Overload((S, S), S, _concat, variadic=True),), "joins two or more strings (null counts as '')"),
    Builtin("length", (Overload((S,), N, _str1(lambda s: float(utf16_len(s)), NAN)),), "length of a string"),
    Builtin("lower", (Overload((S,), S, _str1(str.lower, ABSENT)),), "lower-case"),
    Builtin("upper", (Overload((S,), S, _str1(str.upper, ABSENT)),), "upper-case"),
    Builtin("substring", (Overload((S, N), S, _substring), Overload((S, N, N), S, _substring)),
            "substring(s, start[, length]); undefined when out of range"),
    Builtin("index_of", (Overload((S, S), N, _str2(lambda a, b: float(a.find(b)), NAN)),),
            "position of the second string in the first, -1 when absent"),
    Builtin("starts_with", (Overload((S, S), Ty.BOOL, _str2(lambda a, b: _b(a.startswith(b)), UNDEFINED)),),
            "true when the first string starts with the second"),
    Builtin("ends_with", (Overload((S, S), Ty.BOOL, _str2(lambda a, b: _b(a.endswith(b)), UNDEFINED)),),
            "true when the first string ends with the second"),
    Builtin("contains", (Overload((S, S), Ty.BOOL, _str2(lambda a, b: _b(b in a), UNDEFINED)),),
            "true when the first string contains the second"),
    # twin change notifications: its argument is a JSON path, not an expression (compiled specially)
    Builtin("twin_change_includes", (Overload((ANY,), Ty.BOOL, lambda _t: lambda v: v),),
            "true when a twin change notification includes the path", flag="twin_change_includes"),
]

BUILTINS: dict[str, Builtin] = {b.name: b for b in _ALL}


def lookup(name: str) -> Builtin | None:
    """Function names are case-insensitive."""
    return BUILTINS.get(name.lower())
