"""The built-in functions of twin queries, each declared once: name, parameter types, result type, behaviour.

The compiler checks arity and the static types of the arguments (a literal of the wrong type is refused at
compile time). At run time a value of the wrong JSON type, or an undefined one, gives undefined — except the
type checks (``IS_STRING(x)`` …), which are simply false for undefined, as in IoT Hub (Cosmos DB semantics).
``STARTSWITH``/``ENDSWITH`` are the twin-query spellings; ``STARTS_WITH``/``ENDS_WITH`` (routing's) are accepted too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgegen.routing.values import ABSENT

__all__ = ["BUILTINS", "Builtin", "is_number", "static_type_of_value"]

STRING, NUMBER, BOOL, ARRAY, OBJECT, NULL, ANY = "string", "number", "bool", "array", "object", "null", "any"


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def static_type_of_value(v: Any) -> str:
    if isinstance(v, bool):
        return BOOL
    if is_number(v):
        return NUMBER
    if isinstance(v, str):
        return STRING
    if isinstance(v, list):
        return ARRAY
    if isinstance(v, dict):
        return OBJECT
    return NULL


@dataclass(frozen=True)
class Builtin:
    name: str
    params: tuple[str, ...]
    result: str
    fn: Callable[..., Any]
    doc: str
    optional: int = 0  # how many trailing parameters may be left out
    variadic: bool = False  # the last parameter repeats

    def arity_text(self) -> str:
        low = len(self.params) - self.optional
        if self.variadic:
            return f"at least {low}"
        return str(low) if not self.optional else f"{low} to {len(self.params)}"

    def accepts_count(self, n: int) -> bool:
        low = len(self.params) - self.optional
        return n >= low if self.variadic else low <= n <= len(self.params)

    def param(self, i: int) -> str:
        return self.params[min(i, len(self.params) - 1)]


def _typed(*types: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap ``fn`` so an undefined argument or one of the wrong JSON type gives undefined."""
    checks = [{STRING: lambda v: isinstance(v, str), NUMBER: is_number, ARRAY: lambda v: isinstance(v, list),
               BOOL: lambda v: isinstance(v, bool), ANY: lambda v: v is not ABSENT}[t] for t in types]

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            for i, a in enumerate(args):
                if not checks[min(i, len(checks) - 1)](a):
                    return ABSENT
            try:
                out = fn(*args)
            except (ValueError, OverflowError, ZeroDivisionError):
                return ABSENT
            return ABSENT if isinstance(out, float) and not math.isfinite(out) else out

        return call

    return wrap


def _num(x: float) -> int | float:
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 2**53 else x


def _substring(s: str, start: float, length: float) -> str:
    if not float(start).is_integer() or not float(length).is_integer():
        raise ValueError("not an integer")
    start, length = max(int(start), 0), max(int(length), 0)
    return s[start:start + length]


def _array_contains(arr: list[Any], value: Any, partial: bool = False) -> bool:
    if partial and isinstance(value, dict):
        return any(isinstance(e, dict) and all(e.get(k, ABSENT) == v for k, v in value.items()) for e in arr)
    return any((type(e) is type(value) and e == value) or (is_number(e) and is_number(value) and e == value)
               for e in arr)


def _is(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is not ABSENT and check(v)


_LIST: list[Builtin] = [
    Builtin("IS_DEFINED", (ANY,), BOOL, lambda v: v is not ABSENT, "true when the property exists"),
    Builtin("IS_NULL", (ANY,), BOOL, _is(lambda v: v is None), "true for null"),
    Builtin("IS_BOOL", (ANY,), BOOL, _is(lambda v: isinstance(v, bool)), "true for true/false"),
    Builtin("IS_NUMBER", (ANY,), BOOL, _is(is_number), "true for a number"),
    Builtin("IS_STRING", (ANY,), BOOL, _is(lambda v: isinstance(v, str)), "true for a string"),
    Builtin("IS_ARRAY", (ANY,), BOOL, _is(lambda v: isinstance(v, list)), "true for an array"),
    Builtin("IS_OBJECT", (ANY,), BOOL, _is(lambda v: isinstance(v, dict)), "true for an object"),
    Builtin("IS_PRIMITIVE", (ANY,), BOOL, _is(lambda v: not isinstance(v, list | dict)),
            "true for a string, number, bool or null"),
    Builtin("ABS", (NUMBER,), NUMBER, _typed(NUMBER)(abs), "absolute value"),
    Builtin("CEILING", (NUMBER,), NUMBER, _typed(NUMBER)(math.ceil), "smallest integer not below"),
    Builtin("FLOOR", (NUMBER,), NUMBER, _typed(NUMBER)(math.floor), "largest integer not above"),
    Builtin("ROUND", (NUMBER,), NUMBER, _typed(NUMBER)(lambda x: _num(float(math.floor(x + 0.5)) if x >= 0
                                                                  else -float(math.floor(-x + 0.5)))),
            "nearest integer, halves away from zero"),
    Builtin("SIGN", (NUMBER,), NUMBER, _typed(NUMBER)(lambda x: (x > 0) - (x < 0)), "-1, 0 or 1"),
    Builtin("SQRT", (NUMBER,), NUMBER, _typed(NUMBER)(lambda x: _num(math.sqrt(x))), "square root"),
    Builtin("SQUARE", (NUMBER,), NUMBER, _typed(NUMBER)(lambda x: x * x), "x * x"),
    Builtin("EXP", (NUMBER,), NUMBER, _typed(NUMBER)(math.exp), "e to the power x"),
    Builtin("LOG", (NUMBER,), NUMBER, _typed(NUMBER)(math.log), "natural logarithm"),
    Builtin("LOG10", (NUMBER,), NUMBER, _typed(NUMBER)(math.log10), "base-10 logarithm"),
    Builtin("POWER", (NUMBER, NUMBER), NUMBER, _typed(NUMBER)(lambda x, y: _num(math.pow(x, y))), "x to the power y"),
    Builtin("CONCAT", (STRING, STRING), STRING, _typed(STRING)(lambda *s: "".join(s)), "joins strings",
            variadic=True),
    Builtin("LENGTH", (STRING,), NUMBER, _typed(STRING)(len), "number of characters"),
    Builtin("LOWER", (STRING,), STRING, _typed(STRING)(str.lower), "lower case"),
    Builtin("UPPER", (STRING,), STRING, _typed(STRING)(str.upper), "upper case"),
    Builtin("SUBSTRING", (STRING, NUMBER, NUMBER), STRING, _typed(STRING, NUMBER, NUMBER)(_substring),
            "SUBSTRING(s, start, length), 0-based"),
    Builtin("INDEX_OF", (STRING, STRING), NUMBER, _typed(STRING)(str.find), "position of the 2nd in the 1st, or -1"),
    Builtin("STARTSWITH", (STRING, STRING), BOOL, _typed(STRING)(str.startswith), "1st starts with the 2nd"),
    Builtin("ENDSWITH", (STRING, STRING), BOOL, _typed(STRING)(str.endswith), "1st ends with the 2nd"),
    Builtin("CONTAINS", (STRING, STRING), BOOL, _typed(STRING)(lambda a, b: b in a), "1st contains the 2nd"),
    Builtin("ARRAY_CONTAINS", (ARRAY, ANY, BOOL), BOOL, _typed(ARRAY, ANY, BOOL)(_array_contains),
            "ARRAY_CONTAINS(array, value[, partial]): the array holds the value", optional=1),
    Builtin("ARRAY_LENGTH", (ARRAY,), NUMBER, _typed(ARRAY)(len), "number of elements"),
]

BUILTINS: dict[str, Builtin] = {b.name: b for b in _LIST}
BUILTINS["STARTS_WITH"] = BUILTINS["STARTSWITH"]
BUILTINS["ENDS_WITH"] = BUILTINS["ENDSWITH"]
