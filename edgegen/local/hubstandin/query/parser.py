"""Pratt parser for IoT Hub's twin query language: one binding-power table, one nud/led method per token kind.

Grammar (keywords case-insensitive)::

    query     := SELECT [TOP n] ('*' | item (',' item)*) FROM source [WHERE expr] [GROUP BY path (',' path)*]
    item      := (path | COUNT() | AVG(path) | SUM(path) | MIN(path) | MAX(path)) [AS name]
    source    := devices | devices.modules | devices.jobs
    target    := '*' | expr | FROM source WHERE expr       (a configuration's targetCondition)
    expr      := literal | path | '[' expr, … ']' | name '(' args ')' | '(' expr ')' | NOT expr | '-' expr
               | expr op expr

Precedence, low → high: ``OR``, ``AND``, prefix ``NOT``, comparisons (``= != <> < <= > >= IN NIN``),
``+ -``, ``* / %``, prefix ``-``. Binary operators are left-associative.
"""

from __future__ import annotations

from collections.abc import Callable

from edgegen.local.hubstandin.query.ast import (
    Aggregate,
    Array,
    Binary,
    BinaryOp,
    Call,
    Expr,
    Literal,
    Path,
    Query,
    SelectItem,
    Source,
    Span,
    TargetCondition,
    Unary,
    UnaryOp,
)
from edgegen.local.hubstandin.query.errors import QueryError
from edgegen.local.hubstandin.query.lexer import KEYWORDS, Token, TokenKind, string_value, tokenize

__all__ = ["BINDING_POWER", "MAX_DEPTH", "MAX_LENGTH", "Parser", "parse_condition", "parse_query", "parse_target"]

T = TokenKind

BINDING_POWER: dict[TokenKind, int] = {
    T.OR: 10,
    T.AND: 20,
    T.EQ: 40, T.NE: 40, T.LT: 40, T.LE: 40, T.GT: 40, T.GE: 40, T.IN: 40, T.NIN: 40,
    T.PLUS: 60, T.MINUS: 60,
    T.STAR: 70, T.SLASH: 70, T.PERCENT: 70,
}
NOT_POWER = 30  # NOT binds looser than comparisons: NOT a = b is NOT (a = b)
NEG_POWER = 80
MAX_DEPTH = 100  # deeper nesting is refused instead of exhausting Python's stack
MAX_LENGTH = 16_384  # longer texts are refused before parsing

_BINARY: dict[TokenKind, BinaryOp] = {
    T.OR: BinaryOp.OR, T.AND: BinaryOp.AND, T.EQ: BinaryOp.EQ, T.NE: BinaryOp.NE, T.LT: BinaryOp.LT,
    T.LE: BinaryOp.LE, T.GT: BinaryOp.GT, T.GE: BinaryOp.GE, T.IN: BinaryOp.IN, T.NIN: BinaryOp.NIN,
    T.PLUS: BinaryOp.ADD, T.MINUS: BinaryOp.SUB, T.STAR: BinaryOp.MUL, T.SLASH: BinaryOp.DIV,
    T.PERCENT: BinaryOp.MOD,
}
AGGREGATES = ("COUNT", "AVG", "SUM", "MIN", "MAX")
_EXPR_START = "a value, a property path, a function call, '[', '(', '-' or NOT"
_SEGMENT_KINDS = frozenset({T.NAME, T.BRACKETED, *KEYWORDS.values()})


def _describe(tok: Token) -> str:
    return "end of input" if tok.kind is T.EOF else repr(tok.text)


class Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise QueryError(f"a query must be a string, not {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise QueryError(f"the text is {len(text)} characters long; at most {MAX_LENGTH} are accepted",
                             hint="split it into several shorter queries")
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    # -- helpers ---------------------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind is not T.EOF:
            self.pos += 1
        return tok

    def error(self, tok: Token, message: str, hint: str | None = None) -> QueryError:
        return QueryError(message, text=self.text, column=tok.start + 1, hint=hint)

    def unexpected(self, tok: Token, expected: str) -> QueryError:
        if tok.kind is T.UNKNOWN:
            return self.error(tok, f"unexpected character {tok.text!r}", f"expected {expected}")
        if tok.kind is T.UNTERMINATED_STRING:
            return self.error(tok, "unterminated string", "close the string with the quote it started with")
        return self.error(tok, f"unexpected {_describe(tok)}", f"expected {expected}")

    def expect(self, kind: TokenKind, what: str) -> Token:
        if self.peek().kind is not kind:
            raise self.unexpected(self.peek(), what)
        return self.advance()

    def at_end(self, what: str) -> None:
        tok = self.peek()
        if tok.kind is not T.EOF:
            if tok.kind is T.RPAREN:
                raise self.error(tok, "unmatched closing ')'", "remove it or add the matching '('")
            raise self.error(tok, f"unexpected {_describe(tok)} after {what}",
                             "expected an operator (AND, OR, =, …) or the end")

    # -- expressions (Pratt) ---------------------------------------------------------------------------
    def expression(self, rbp: int = 0) -> Expr:
        tok = self.advance()
        nud: Callable[[Token], Expr] | None = getattr(self, f"_nud_{tok.kind.name.lower()}", None)
        if nud is None:
            raise self.unexpected(tok, _EXPR_START)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(tok, f"expression nested more than {MAX_DEPTH} levels deep", "simplify the query")
        left = nud(tok)
        chain = 0
        while rbp < BINDING_POWER.get(self.peek().kind, 0):
            op = self.advance()
            chain += 1
            if chain > MAX_DEPTH * 10:
                raise self.error(op, f"more than {MAX_DEPTH * 10} operators in one chain", "simplify the query")
            if op.kind is T.EQ and self.peek().kind is T.EQ:
                raise self.error(self.peek(), "'==' is not an operator", "use a single '=' to compare")
            right = self.expression(BINDING_POWER[op.kind])
            left = Binary(Span(left.span.start, right.span.end), _BINARY[op.kind], left, right,
                          Span(op.start, op.end))
        self.depth -= 1
        return left

    def _nud_number(self, tok: Token) -> Expr:
        text = tok.text
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal(Span(tok.start, tok.end), value)

    def _nud_string(self, tok: Token) -> Expr:
        return Literal(Span(tok.start, tok.end), string_value(tok.text))

    def _nud_true(self, tok: Token) -> Expr:
        return Literal(Span(tok.start, tok.end), True)

    def _nud_false(self, tok: Token) -> Expr:
        return Literal(Span(tok.start, tok.end), False)

    def _nud_null(self, tok: Token) -> Expr:
        return Literal(Span(tok.start, tok.end), None)

    def _nud_lparen(self, tok: Token) -> Expr:
        inner = self.expression()
        if self.peek().kind is not T.RPAREN:
            if self.peek().kind is T.EOF:
                raise self.error(self.peek(), "expected ')' to close the '(' at column "
                                 f"{tok.start + 1}", "add the missing ')'")
            raise self.unexpected(self.peek(), "an operator or ')'")
        self.advance()
        return inner

    def _nud_lbracket(self, tok: Token) -> Expr:
        items: list[Expr] = []
        if self.peek().kind is not T.RBRACKET:
            items.append(self.expression())
            while self.peek().kind is T.COMMA:
                self.advance()
                items.append(self.expression())
        close = self.expect(T.RBRACKET, "',' or ']' to close the array")
        return Array(Span(tok.start, close.end), tuple(items))

    def _nud_not(self, tok: Token) -> Expr:
        operand = self.expression(NOT_POWER)
        return Unary(Span(tok.start, operand.span.end), UnaryOp.NOT, operand)

    def _nud_minus(self, tok: Token) -> Expr:
        operand = self.expression(NEG_POWER)
        if isinstance(operand, Literal) and isinstance(operand.value, int | float) \
                and not isinstance(operand.value, bool):
            return Literal(Span(tok.start, operand.span.end), -operand.value)
        return Unary(Span(tok.start, operand.span.end), UnaryOp.NEG, operand)

    def _nud_name(self, tok: Token) -> Expr:
        if self.peek().kind is T.LPAREN:
            return self.call(tok)
        return self.path_from(tok)

    def path_from(self, first: Token) -> Path:
        parts = [_segment(first)]
        end = first.end
        while self.peek().kind is T.DOT:
            self.advance()
            seg = self.peek()
            if seg.kind not in _SEGMENT_KINDS:
                raise self.unexpected(seg, "a property name after '.'")
            self.advance()
            parts.append(_segment(seg))
            end = seg.end
        return Path(Span(first.start, end), tuple(parts))

    def call(self, name: Token) -> Call:
        self.advance()  # (
        args: list[Expr] = []
        if self.peek().kind is not T.RPAREN:
            args.append(self.expression())
            while self.peek().kind is T.COMMA:
                self.advance()
                args.append(self.expression())
        close = self.expect(T.RPAREN, f"',' or ')' to close the call to {name.text}")
        return Call(Span(name.start, close.end), name.text, Span(name.start, name.end), tuple(args))

    # -- conditions, target conditions, queries ----------------------------------------------------------
    def condition(self) -> Expr:
        node = self.expression()
        self.at_end("a complete condition")
        return node

    def source(self) -> tuple[Source, Span]:
        tok = self.peek()
        if tok.kind is not T.NAME:
            raise self.unexpected(tok, "devices or devices.modules")
        path = self.path_from(self.advance())
        for source in Source:
            if path.dotted.lower() == source.value:
                return source, path.span
        raise self.error(tok, f"unknown collection {path.dotted!r}",
                         "query FROM devices or FROM devices.modules")

    def target(self) -> TargetCondition:
        if self.peek().kind is T.EOF:
            return TargetCondition(Source.DEVICES, None, empty=True)
        if self.peek().kind is T.STAR and self.peek(1).kind is T.EOF:
            return TargetCondition(Source.DEVICES, None)
        source = Source.DEVICES
        if self.peek().kind is T.FROM:
            self.advance()
            source, _ = self.source()
            self.expect(T.WHERE, "WHERE after the collection")
        return TargetCondition(source, self.condition())

    def query(self) -> Query:
        start = self.expect(T.SELECT, "SELECT")
        top = None
        if self.peek().kind is T.TOP:
            self.advance()
            num = self.expect(T.NUMBER, "a whole number after TOP")
            if not num.text.isdigit():
                raise self.error(num, f"TOP needs a whole number, not {num.text}")
            top = int(num.text)
        items: list[SelectItem] = []
        if self.peek().kind is T.STAR:
            self.advance()
        else:
            items.append(self.select_item())
            while self.peek().kind is T.COMMA:
                self.advance()
                items.append(self.select_item())
        self.expect(T.FROM, "',' or FROM after the SELECT list")
        source, source_span = self.source()
        where = None
        if self.peek().kind is T.WHERE:
            self.advance()
            where = self.expression()
        group_by: list[Path] = []
        if self.peek().kind is T.GROUP:
            self.advance()
            self.expect(T.BY, "BY after GROUP")
            group_by.append(self.group_path())
            while self.peek().kind is T.COMMA:
                self.advance()
                group_by.append(self.group_path())
        self.at_end("the query")
        end = self.tokens[self.pos - 1].end if self.pos else start.end
        return Query(Span(start.start, end), top, tuple(items), source, source_span, where, tuple(group_by))

    def group_path(self) -> Path:
        tok = self.peek()
        if tok.kind is not T.NAME:
            raise self.unexpected(tok, "a property path to group by")
        return self.path_from(self.advance())

    def select_item(self) -> SelectItem:
        tok = self.peek()
        value: Path | Aggregate
        if tok.kind is T.NAME and self.peek(1).kind is T.LPAREN:
            value = self.aggregate(self.advance())
        elif tok.kind is T.NAME:
            value = self.path_from(self.advance())
        else:
            raise self.unexpected(tok, "'*', a property path or an aggregate such as COUNT()")
        alias = None
        end = value.span.end
        if self.peek().kind is T.AS:
            self.advance()
            name = self.peek()
            if name.kind not in _SEGMENT_KINDS:  # a keyword is a fine name here: AS top
                raise self.unexpected(name, "a name after AS")
            self.advance()
            alias, end = _segment(name), name.end
        return SelectItem(Span(tok.start, end), value, alias)

    def aggregate(self, name: Token) -> Aggregate:
        func = name.text.upper()
        if func not in AGGREGATES:
            raise self.error(name, f"{name.text}() cannot be used in a SELECT list",
                             f"select property paths or the aggregates {', '.join(a + '()' for a in AGGREGATES)}")
        self.advance()  # (
        arg: Path | None = None
        if func != "COUNT":
            tok = self.peek()
            if tok.kind is not T.NAME:
                raise self.unexpected(tok, f"a property path inside {func}()")
            arg = self.path_from(self.advance())
        close = self.expect(T.RPAREN, f"')' to close {func}(" + (")" if func == "COUNT" else "…)"))
        return Aggregate(Span(name.start, close.end), func, arg)


def _segment(tok: Token) -> str:
    return tok.text[2:-2] if tok.kind is T.BRACKETED else tok.text


def parse_condition(text: str) -> Expr:
    """A WHERE condition alone (no SELECT)."""
    return Parser(text).condition()


def parse_target(text: str) -> TargetCondition:
    """A configuration's ``targetCondition``."""
    return Parser(text).target()


def parse_query(text: str) -> Query:
    """A whole ``SELECT … FROM …`` query."""
    return Parser(text).query()
