"""Tokens of edgeHub's route and condition language, cut the way edgeHub's ANTLR lexer cuts them.

The rules and their order mirror edgeHub's ``GrammarLexer.g4``: at every position the longest match wins and,
between matches of equal length, the rule listed first. That reproduces its quirks faithfully: ``a+b`` is one
property name (``+`` is a legal name character), ``-1`` is one number, ``true`` is a keyword but ``True`` a name.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

__all__ = ["Token", "TokenKind", "tokenize"]


class TokenKind(Enum):
    LBRACE = "{"
    RBRACE = "}"
    SELECT = "SELECT"
    FROM = "FROM"
    WHERE = "WHERE"
    INTO = "INTO"
    STRING = "string"
    UNTERMINATED_STRING = "unterminated string"
    INTEGER = "integer"
    HEX = "hex integer"
    REAL = "number"
    TRUE = "true"
    FALSE = "false"
    NULL = "null"
    UNDEFINED = "undefined"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    PLUS = "+"
    MINUS = "-"
    STAR = "*"
    SLASH = "/"
    PERCENT = "%"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    EQ = "="
    NE = "!="
    NE2 = "<>"
    LE = "<="
    GE = ">="
    GT = ">"
    LT = "<"
    CONCAT = "||"
    COALESCE = "??"
    SYS_PROP = "$property"
    ID = "name"
    QUERY_PATH = "path"
    WS = "whitespace"
    COMMENT = "comment"
    UNKNOWN = "unknown character"
    EOF = "end of input"


class Token(NamedTuple):
    kind: TokenKind
    text: str
    start: int  # 0-based offset of the first character
    end: int  # 0-based offset after the last character


_ESC = r"""\\(?:["'\\]|u[0-9a-fA-F]{4})"""
_NAME_EXCLUDED = r"()<>@,;:\\\"/?={} \t\n\r"

# Order is priority for equal-length matches (the order of edgeHub's lexer, implicit literals first). Each
# pattern is compiled the first time a character that can start it is seen (see _candidates).
_RULES: list[tuple[TokenKind, str]] = [
    (kind, pattern)
    for kind, pattern in [
        (TokenKind.LBRACE, r"\{"),
        (TokenKind.RBRACE, r"\}"),
        (TokenKind.SELECT, r"[Ss][Ee][Ll][Ee][Cc][Tt]"),
        (TokenKind.FROM, r"[Ff][Rr][Oo][Mm]"),
        (TokenKind.WHERE, r"[Ww][Hh][Ee][Rr][Ee]"),
        (TokenKind.INTO, r"[Ii][Nn][Tt][Oo]"),
        (TokenKind.STRING, rf""""(?:{_ESC}|[^"\\])*"|'(?:{_ESC}|[^'\\])*'"""),
        (TokenKind.UNTERMINATED_STRING, rf""""(?:{_ESC}|[^"\\])*|'(?:{_ESC}|[^'\\])*"""),
        (TokenKind.INTEGER, r"-?[0-9]+"),
        (TokenKind.HEX, r"0[Xx][0-9a-fA-F]+"),
        (TokenKind.REAL, r"-?[0-9]*\.[0-9]+(?:[Ee][+\-]?[0-9]+)?|-?[0-9]*[Ee][+\-]?[0-9]+"),
        (TokenKind.TRUE, r"true"),
        (TokenKind.FALSE, r"false"),
        (TokenKind.NULL, r"null"),
        (TokenKind.UNDEFINED, r"undefined"),
        (TokenKind.LPAREN, r"\("),
        (TokenKind.RPAREN, r"\)"),
        (TokenKind.COMMA, r","),
        (TokenKind.PLUS, r"\+"),
        (TokenKind.MINUS, r"-"),
        (TokenKind.STAR, r"\*"),
        (TokenKind.SLASH, r"/"),
        (TokenKind.PERCENT, r"%"),
        (TokenKind.AND, r"[Aa][Nn][Dd]"),
        (TokenKind.OR, r"[Oo][Rr]"),
        (TokenKind.NOT, r"[Nn][Oo][Tt]"),
        (TokenKind.EQ, r"="),
        (TokenKind.NE, r"!="),
        (TokenKind.NE2, r"<>"),
        (TokenKind.LE, r"<="),
        (TokenKind.GE, r">="),
        (TokenKind.GT, r">"),
        (TokenKind.LT, r"<"),
        (TokenKind.CONCAT, r"\|\|"),
        (TokenKind.COALESCE, r"\?\?"),
        (TokenKind.SYS_PROP, rf"\$[^{_NAME_EXCLUDED}]+"),
        (TokenKind.ID, rf"[^{_NAME_EXCLUDED}\[\]]+"),
        (TokenKind.QUERY_PATH, rf"[^{_NAME_EXCLUDED}]+"),
        (TokenKind.WS, r"[ \t\r\n]+"),
        (TokenKind.COMMENT, r"/\*.*?\*/"),
        (TokenKind.UNKNOWN, r"."),
    ]
]

HIDDEN = frozenset({TokenKind.WS, TokenKind.COMMENT})

_DIGITS = "0123456789"
# The characters each rule's match can start with (every rule consumes at least one character); None: the
# rule is tried at every position. Only a speed-up: at a position, the rules whose first character cannot
# match are skipped, the others are tried in the same order, so the tokens are the same.
_FIRST: dict[TokenKind, str | None] = {
    TokenKind.LBRACE: "{", TokenKind.RBRACE: "}", TokenKind.SELECT: "Ss", TokenKind.FROM: "Ff",
    TokenKind.WHERE: "Ww", TokenKind.INTO: "Ii", TokenKind.STRING: "\"'", TokenKind.UNTERMINATED_STRING: "\"'",
    TokenKind.INTEGER: "-" + _DIGITS, TokenKind.HEX: "0", TokenKind.REAL: "-." + _DIGITS + "Ee",
    TokenKind.TRUE: "t", TokenKind.FALSE: "f", TokenKind.NULL: "n", TokenKind.UNDEFINED: "u",
    TokenKind.LPAREN: "(", TokenKind.RPAREN: ")", TokenKind.COMMA: ",", TokenKind.PLUS: "+",
    TokenKind.MINUS: "-", TokenKind.STAR: "*", TokenKind.SLASH: "/", TokenKind.PERCENT: "%",
    TokenKind.AND: "Aa", TokenKind.OR: "Oo", TokenKind.NOT: "Nn", TokenKind.EQ: "=", TokenKind.NE: "!",
    TokenKind.NE2: "<", TokenKind.LE: "<", TokenKind.GE: ">", TokenKind.GT: ">", TokenKind.LT: "<",
    TokenKind.CONCAT: "|", TokenKind.COALESCE: "?", TokenKind.SYS_PROP: "$", TokenKind.ID: None,
    TokenKind.QUERY_PATH: None, TokenKind.WS: " \t\r\n", TokenKind.COMMENT: "/", TokenKind.UNKNOWN: None,
}
_BY_FIRST: dict[str, list[tuple[TokenKind, re.Pattern[str]]]] = {}


_COMPILED: dict[TokenKind, re.Pattern[str]] = {}


def _compiled(kind: TokenKind, pattern: str) -> re.Pattern[str]:
    found = _COMPILED.get(kind)
    if found is None:
        found = _COMPILED[kind] = re.compile(pattern, re.DOTALL)
    return found


def _candidates(char: str) -> list[tuple[TokenKind, re.Pattern[str]]]:
    rules = _BY_FIRST.get(char)
    if rules is None:
        rules = [(k, _compiled(k, p)) for k, p in _RULES if (first := _FIRST[k]) is None or char in first]
        if len(_BY_FIRST) < 4096:
            _BY_FIRST[char] = rules
    return rules


def tokenize(text: str, *, keep_hidden: bool = False) -> list[Token]:
    """Cut ``text`` into tokens, ending with one EOF token. Never raises: odd characters become UNKNOWN."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        best_kind, best_end = TokenKind.UNKNOWN, pos
        for kind, pattern in _candidates(text[pos]):
            m = pattern.match(text, pos)
            if m is not None and m.end() > best_end:  # strictly longer: the earlier rule wins ties
                best_kind, best_end = kind, m.end()
        if keep_hidden or best_kind not in HIDDEN:
            tokens.append(Token(best_kind, text[pos:best_end], pos, best_end))
        pos = best_end
    tokens.append(Token(TokenKind.EOF, "", n, n))
    return tokens
