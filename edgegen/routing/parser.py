"""Pratt parser for conditions and routes: one binding-power table, one nud/led method per token kind.

Precedence (low → high) follows edgeHub's ``Condition.g4``: ``??``, ``OR``, ``AND``, ``= != <>``,
``< <= > >=``, ``+ - ||``, ``* / %``, then prefix ``-`` and ``NOT``. All binary operators are left-associative.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
from edgegen.routing.lexer import Token, TokenKind, tokenize

__all__ = ["BINDING_POWER", "Parser", "parse_condition", "unescape"]

T = TokenKind

# The one precedence table. Tokens not listed have binding power 0 (they end an expression).
BINDING_POWER: dict[TokenKind, int] = {
    T.COALESCE: 10,
    T.OR: 20,
    T.AND: 30,
    T.EQ: 40,
    T.NE: 40,
    T.NE2: 40,
    T.LT: 50,
    T.LE: 50,
    T.GT: 50,
    T.GE: 50,
    T.PLUS: 60,
    T.MINUS: 60,
    T.CONCAT: 60,
    T.STAR: 70,
    T.SLASH: 70,
    T.PERCENT: 70,
}
PREFIX_POWER = 80
MAX_DEPTH = 128  # deeper nesting is refused (it would exhaust Python's stack while compiling or evaluating)

_BINARY: dict[TokenKind, BinaryOp] = {
    T.COALESCE: BinaryOp.COALESCE,
    T.OR: BinaryOp.OR,
    T.AND: BinaryOp.AND,
    T.EQ: BinaryOp.EQ,
    T.NE: BinaryOp.NE,
    T.NE2: BinaryOp.NE,
    T.LT: BinaryOp.LT,
    T.LE: BinaryOp.LE,
    T.GT: BinaryOp.GT,
    T.GE: BinaryOp.GE,
    T.PLUS: BinaryOp.ADD,
    T.MINUS: BinaryOp.SUB,
    T.CONCAT: BinaryOp.CONCAT,
    T.STAR: BinaryOp.MUL,
    T.SLASH: BinaryOp.DIV,
    T.PERCENT: BinaryOp.MOD,
}

_EXPR_START = "a value, a property name, a function call, '(' , '-' or NOT"

_UNICODE_ESC = re.compile(r"\\[Uu]([0-9A-Fa-f]{4})")
_QUOTE_ESC = re.compile(r"""\\(["'\\])""")


def unescape(body: str) -> str:
    """String literal contents as edgeHub reads them: ``\\uXXXX`` first, then ``\\"``, ``\\'`` and ``\\\\``."""
    step1 = _UNICODE_ESC.sub(lambda m: chr(int(m.group(1), 16)), body)
    return _QUOTE_ESC.sub(lambda m: m.group(1), step1)


def _describe(tok: Token) -> str:
    if tok.kind is T.EOF:
        return "end of input"
    return f"{tok.text!r}"


class Parser:
    """Parses a condition from a token list starting at ``pos``; used alone or inside a route."""

    def __init__(self, text: str, tokens: list[Token], pos: int = 0, *, error_text: str | None = None,
                 offset: int = 0) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = pos
        self.error_text = text if error_text is None else error_text
        self.offset = offset  # where ``text`` starts inside ``error_text`` (for carets)
        self.depth = 0

    # -- helpers ---------------------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind is not T.EOF:
            self.pos += 1
        return tok

    def error(self, tok: Token, message: str, expected: str | None = None, hint: str | None = None) -> RouteError:
        return RouteError(message, text=self.error_text, column=self.offset + tok.start + 1, expected=expected,
                          hint=hint)

    def expect(self, kind: TokenKind, what: str) -> Token:
        tok = self.peek()
        if tok.kind is not kind:
            raise self.unexpected(tok, what)
        return self.advance()

    def unexpected(self, tok: Token, expected: str) -> RouteError:
        if tok.kind is T.UNKNOWN:
            return self.error(tok, f"unrecognized character {tok.text!r}", expected)
        if tok.kind is T.UNTERMINATED_STRING:
            return self.error(tok, "unterminated string", None, "close the string with the quote it started with")
        if tok.kind is T.QUERY_PATH:
            return self.error(tok, f"{tok.text!r} is not a valid name here ('[' ']' are only allowed in $body queries)",
                              expected)
        return self.error(tok, f"unexpected {_describe(tok)}", expected)

    # -- the Pratt loop --------------------------------------------------------------------------------
    def expression(self, rbp: int = 0) -> Node:
        tok = self.advance()
        nud: Callable[[Token], Node] | None = getattr(self, f"_nud_{tok.kind.name.lower()}", None)
        if nud is None:
            raise self.unexpected(tok, _EXPR_START)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(tok, f"expression nested more than {MAX_DEPTH} levels deep", None,
                             "split the condition into several routes or simplify it")
        left = nud(tok)
        chain = 0
        while rbp < BINDING_POWER.get(self.peek().kind, 0):
            op = self.advance()
            chain += 1
            if self.depth + chain > MAX_DEPTH:
                raise self.error(op, f"more than {MAX_DEPTH} operators in one chain", None,
                                 "split the condition into several routes or simplify it")
            left = self._led_binary(op, left)
        self.depth -= 1
        return left

    def condition(self, stop: frozenset[TokenKind] = frozenset({T.EOF})) -> Node:
        tok = self.peek()
        if tok.kind in stop:
            return Empty(Span(tok.start, tok.start))
        node = self.expression()
        nxt = self.peek()
        if nxt.kind not in stop:
            if nxt.kind is T.RPAREN:
                raise self.error(nxt, "unmatched closing ')'", None, "remove it or add the matching '('")
            if nxt.kind in (T.UNKNOWN, T.UNTERMINATED_STRING, T.QUERY_PATH):
                raise self.unexpected(nxt, "an operator")
            want = " or ".join(sorted({k.value for k in stop if k is not T.EOF})) or "the end of the condition"
            raise self.error(nxt, f"unexpected {_describe(nxt)} after a complete expression",
                             f"an operator (AND, OR, =, <, +, ...) or {want}")
        return node

    # -- nud: tokens that start an expression ---------------------------------------------------------
    def _nud_integer(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.NUMBER, float(tok.text))

    _nud_real = _nud_integer

    def _nud_hex(self, tok: Token) -> Node:
        value = int(tok.text[2:], 16)
        span = Span(tok.start, tok.end)
        if value > 2**63 - 1:  # edgeHub parses hex as a signed 64-bit integer; overflow gives undefined
            return Literal(span, LiteralKind.UNDEFINED, None)
        return Literal(span, LiteralKind.NUMBER, float(value))

    def _nud_string(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.STRING, unescape(tok.text[1:-1]))

    def _nud_true(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.BOOL, True)

    def _nud_false(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.BOOL, False)

    def _nud_null(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.NULL, None)

    def _nud_undefined(self, tok: Token) -> Node:
        return Literal(Span(tok.start, tok.end), LiteralKind.UNDEFINED, None)

    def _nud_sys_prop(self, tok: Token) -> Node:
        return SysProperty(Span(tok.start, tok.end), tok.text[1:], escaped=False)

    def _nud_lbrace(self, tok: Token) -> Node:
        prop = self.expect(T.SYS_PROP, "a $property inside '{ }'")
        close = self.expect(T.RBRACE, "'}'")
        return SysProperty(Span(tok.start, close.end), prop.text[1:], escaped=True)

    def _nud_id(self, tok: Token) -> Node:
        if self.peek().kind is not T.LPAREN:
            return Property(Span(tok.start, tok.end), tok.text)
        self.advance()
        args: list[Node] = []
        first = self.pos
        if self.peek().kind is not T.RPAREN:
            args.append(self.expression())
            while self.peek().kind is T.COMMA:
                self.advance()
                args.append(self.expression())
        raw = "".join(t.text for t in self.tokens[first : self.pos])
        if self.peek().kind is not T.RPAREN:
            raise self.unexpected(self.peek(), f"',' or ')' to close the call to {tok.text}")
        close = self.advance()
        return Call(Span(tok.start, close.end), tok.text, Span(tok.start, tok.end), tuple(args), raw)

    def _nud_lparen(self, tok: Token) -> Node:
        node = self.expression()
        if self.peek().kind is not T.RPAREN:
            nxt = self.peek()
            if nxt.kind is T.EOF:
                raise self.error(tok, "missing closing ')'", None, "add ')' to close this '('")
            raise self.unexpected(nxt, "an operator or ')'")
        self.advance()
        return node

    def _nud_minus(self, tok: Token) -> Node:
        operand = self.expression(PREFIX_POWER)
        return Unary(Span(tok.start, _end(operand)), UnaryOp.NEG, operand)

    def _nud_not(self, tok: Token) -> Node:
        operand = self.expression(PREFIX_POWER)
        return Unary(Span(tok.start, _end(operand)), UnaryOp.NOT, operand)

    # -- led: binary operators -------------------------------------------------------------------------
    def _led_binary(self, op: Token, left: Node) -> Node:
        if self.peek().kind is T.EQ and op.kind is T.EQ:
            raise self.error(self.peek(), "'==' is not an operator", None, "use a single '=' to compare")
        right = self.expression(BINDING_POWER[op.kind])
        return Binary(Span(_start(left), _end(right)), _BINARY[op.kind], left, right, Span(op.start, op.end))


def _start(node: Node) -> int:
    return node.span.start


def _end(node: Node) -> int:
    return node.span.end


def parse_condition(text: str) -> Node:
    """Parse a WHERE condition into a typed AST; raise RouteError with a caret on bad syntax."""
    if not isinstance(text, str):
        raise RouteError(f"a condition must be a string, not {type(text).__name__}")
    return Parser(text, tokenize(text)).condition()
