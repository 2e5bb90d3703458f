"""IoT Hub's query conditions over twins: target conditions and metric queries (pure).

Supported: paths (``tags.environment``, ``properties.reported.x``, ``configurations.[[my-id]].status``),
string ('…' or "…"), number, true/false/null literals, ``[a, b]`` lists, ``= != <> < <= > >=``, ``IN``/``NIN``,
``AND``/``OR``/``NOT`` (case-insensitive), parentheses, ``IS_DEFINED(path)``, ``STARTS_WITH``, ``ENDS_WITH``,
``*`` (every device). Logic is three-valued like IoT Hub: a missing field is Undefined, and only True targets.
Metric queries: ``SELECT deviceId FROM devices[.modules] [WHERE cond]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from edgegen.errors import EdgegenError, Location

__all__ = ["UNDEFINED", "ConditionError", "MetricQuery", "compile_condition", "compile_metric_query"]


class ConditionError(EdgegenError):
    """A target condition or metric query that does not parse."""


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()


class Kind(Enum):
    STRING = "string"
    NUMBER = "number"
    NAME = "name"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    STAR = "*"
    EOF = "end of input"


class Token(NamedTuple):
    kind: Kind
    value: Any
    start: int


_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<name>(?:[A-Za-z_$][A-Za-z0-9_$\-]*|\[\[[^\]]*\]\])(?:\.(?:[A-Za-z_$][A-Za-z0-9_$\-]*|\[\[[^\]]*\]\]))*)
    | (?P<op><>|!=|<=|>=|=|<|>)
    | (?P<punct>[()\[\],*])
    )""",
    re.VERBOSE,
)


def _error(text: str, pos: int, message: str, hint: str | None = None) -> ConditionError:
    return ConditionError(
        message,
        location=Location(source_line=text, column=pos + 1),
        hint=hint or "conditions look like tags.environment='prod' AND NOT properties.reported.x > 3",
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise _error(text, start, f"unexpected character {text[start]!r}")
        start = m.start(m.lastgroup or 0)
        group = m.lastgroup
        raw = m.group(group or 0)
        if group == "string":
            value = raw[1:-1].replace("''", "'") if raw[0] == "'" else raw[1:-1].replace('\\"', '"')
            tokens.append(Token(Kind.STRING, value, start))
        elif group == "number":
            tokens.append(Token(Kind.NUMBER, float(raw) if any(c in raw for c in ".eE") else int(raw), start))
        elif group == "name":
            tokens.append(Token(Kind.NAME, raw, start))
        elif group == "op":
            tokens.append(Token(Kind.OP, "!=" if raw == "<>" else raw, start))
        else:
            tokens.append(Token(Kind(raw), raw, start))
        pos = m.end()
    tokens.append(Token(Kind.EOF, None, len(text)))
    return tokens


Doc = Mapping[str, Any]
Expr = Callable[[Doc], Any]

_KEYWORDS = {"and", "or", "not", "in", "nin", "true", "false", "null"}
# binding powers, low → high
_BP = {"or": 10, "and": 20, "in": 40, "nin": 40, "=": 40, "!=": 40, "<": 50, "<=": 50, ">": 50, ">=": 50}


def _path_parts(name: str) -> list[str]:
    parts = re.findall(r"\[\[[^\]]*\]\]|[^.]+", name)
    return [p[2:-2] if p.startswith("[[") else p for p in parts]


def _lookup(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        else:
            return UNDEFINED
    return doc


def _and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return UNDEFINED


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return UNDEFINED


def _comparable(a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, num) and isinstance(b, num)) or (isinstance(a, str) and isinstance(b, str))


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op in ("=", "!="):
        if a is None or b is None:
            same = a is None and b is None
        elif not _comparable(a, b):
            return UNDEFINED
        else:
            same = a == b
        return same if op == "=" else not same
    if not _comparable(a, b) or isinstance(a, bool):
        return UNDEFINED
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "is_defined": (1, lambda a: a is not UNDEFINED),
    "is_null": (1, lambda a: UNDEFINED if a is UNDEFINED else a is None),
    "is_string": (1, lambda a: UNDEFINED if a is UNDEFINED else isinstance(a, str)),
    "is_number": (1, lambda a: UNDEFINED if a is UNDEFINED else isinstance(a, int | float) and not isinstance(a, bool)),
    "starts_with": (2, lambda a, b: a.startswith(b) if isinstance(a, str) and isinstance(b, str) else UNDEFINED),
    "ends_with": (2, lambda a, b: a.endswith(b) if isinstance(a, str) and isinstance(b, str) else UNDEFINED),
    "contains": (2, lambda a, b: b in a if isinstance(a, str) and isinstance(b, str) else UNDEFINED),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: Kind) -> Token:
        tok = self.next()
        if tok.kind is not kind:
            raise _error(self.text, tok.start, f"expected {kind.value}, found {tok.value or tok.kind.value!r}")
        return tok

    @staticmethod
    def _op_of(tok: Token) -> str | None:
        if tok.kind is Kind.OP:
            return str(tok.value)
        if tok.kind is Kind.NAME and tok.value.lower() in ("and", "or", "in", "nin"):
            return str(tok.value.lower())
        return None

    def expression(self, rbp: int = 0) -> Expr:
        left = self.nud(self.next())
        while True:
            op = self._op_of(self.peek())
            if op is None or _BP[op] <= rbp:
                return left
            tok = self.next()
            left = self.led(op, tok, left)

    def nud(self, tok: Token) -> Expr:
        if tok.kind in (Kind.STRING, Kind.NUMBER):
            value = tok.value
            return lambda doc: value
        if tok.kind is Kind.LPAREN:
            inner = self.expression()
            self.expect(Kind.RPAREN)
            return inner
        if tok.kind is Kind.LBRACKET:
            items: list[Expr] = []
            if self.peek().kind is not Kind.RBRACKET:
                items.append(self.expression(_BP["in"]))
                while self.peek().kind is Kind.COMMA:
                    self.next()
                    items.append(self.expression(_BP["in"]))
            self.expect(Kind.RBRACKET)
            return lambda doc: [item(doc) for item in items]
        if tok.kind is Kind.NAME:
            low = tok.value.lower()
            if low == "not":
                operand = self.expression(30)
                return lambda doc: (lambda v: UNDEFINED if v is UNDEFINED or not isinstance(v, bool) else not v)(
                    operand(doc)
                )
            if low in ("true", "false"):
                flag = low == "true"
                return lambda doc: flag
            if low == "null":
                return lambda doc: None
            if low in _KEYWORDS:
                raise _error(self.text, tok.start, f"unexpected keyword {tok.value!r}")
            if self.peek().kind is Kind.LPAREN:
                return self.call(tok)
            parts = _path_parts(tok.value)
            return lambda doc: _lookup(doc, parts)
        raise _error(self.text, tok.start, f"unexpected {tok.value or tok.kind.value!r}")

    def call(self, name: Token) -> Expr:
        spec = _FUNCTIONS.get(name.value.lower())
        if spec is None:
            raise _error(self.text, name.start, f"unknown function {name.value!r}",
                         hint=f"known functions: {', '.join(sorted(f.upper() for f in _FUNCTIONS))}")
        arity, fn = spec
        self.expect(Kind.LPAREN)
        args: list[Expr] = []
        if self.peek().kind is not Kind.RPAREN:
            args.append(self.expression())
            while self.peek().kind is Kind.COMMA:
                self.next()
                args.append(self.expression())
        self.expect(Kind.RPAREN)
        if len(args) != arity:
            raise _error(self.text, name.start, f"{name.value.upper()} takes {arity} argument(s), got {len(args)}")
        return lambda doc: fn(*(a(doc) for a in args))

    def led(self, op: str, tok: Token, left: Expr) -> Expr:
        right = self.expression(_BP[op])
        if op == "and":
            return lambda doc: _and(left(doc), right(doc))
        if op == "or":
            return lambda doc: _or(left(doc), right(doc))
        if op in ("in", "nin"):
            negate = op == "nin"

            def member(doc: Doc) -> Any:
                value, options = left(doc), right(doc)
                if value is UNDEFINED or not isinstance(options, list):
                    return UNDEFINED
                found = any(_compare("=", value, o) is True for o in options)
                return found != negate

            return member
        return lambda doc: _compare(op, left(doc), right(doc))


def compile_condition(text: str) -> Callable[[Doc], bool]:
    """Compile a target condition; the result says whether a twin document is targeted (True only)."""
    if text.strip() == "*":
        return lambda doc: True
    if not text.strip():
        return lambda doc: False
    parser = _Parser(text)
    expr = parser.expression()
    end = parser.peek()
    if end.kind is not Kind.EOF:
        raise _error(text, end.start, f"unexpected {end.value!r} after the condition")
    return lambda doc: expr(doc) is True


@dataclass(frozen=True)
class MetricQuery:
    over_modules: bool
    matches: Callable[[Doc], bool]


_SELECT_RE = re.compile(r"^\s*select\s+(?P<what>.+?)\s+from\s+(?P<src>devices(?:\.modules)?)\b(?P<rest>.*)$",
                        re.IGNORECASE | re.DOTALL)


def compile_metric_query(text: str) -> MetricQuery:
    """``SELECT deviceId FROM devices[.modules] [WHERE cond]``: count matching devices (or module twins)."""
    m = _SELECT_RE.match(text)
    if not m:
        raise ConditionError(
            f"unsupported metric query {text!r}",
            hint="metric queries look like: SELECT deviceId FROM devices WHERE properties.reported.ok = true",
        )
    rest = m.group("rest").strip()
    cond = "*"
    if rest:
        if not rest.lower().startswith("where "):
            raise _error(text, m.start("rest"), "expected WHERE after the FROM clause")
        cond = rest[6:]
    matches = compile_condition(cond)
    return MetricQuery(over_modules=m.group("src").lower().endswith("modules"), matches=matches)
