"""Tokens of IoT Hub's query language (twin queries and target conditions).

Names are ``[A-Za-z_$][A-Za-z0-9_$]*``; a path segment with other characters is written ``[[…]]`` after a
dot (``configurations.[[my-deployment]].status``); elsewhere ``[[`` opens nested arrays. Strings take single
or double quotes: inside single quotes ``''`` or ``\\'`` is a quote, inside double quotes ``\\"``. Keywords
are case-insensitive and only keywords where they stand alone: after a ``.`` every word is a property name
(``tags.from`` is fine).
The lexer never raises: an odd character becomes an UNKNOWN token and the parser reports it with its column.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import NamedTuple

__all__ = ["KEYWORDS", "Token", "TokenKind", "tokenize"]


class TokenKind(Enum):
    STRING = "string"
    UNTERMINATED_STRING = "unterminated string"
    NUMBER = "number"
    NAME = "name"
    BRACKETED = "[[name]]"
    DOT = "."
    COMMA = ","
    LPAREN = "("
    RPAREN = ")"
    LBRACKET = "["
    RBRACKET = "]"
    STAR = "*"
    PLUS = "+"
    MINUS = "-"
    SLASH = "/"
    PERCENT = "%"
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    SELECT = "SELECT"
    TOP = "TOP"
    AS = "AS"
    FROM = "FROM"
    WHERE = "WHERE"
    GROUP = "GROUP"
    BY = "BY"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    IN = "IN"
    NIN = "NIN"
    TRUE = "true"
    FALSE = "false"
    NULL = "null"
    UNKNOWN = "unknown character"
    EOF = "end of input"


class Token(NamedTuple):
    kind: TokenKind
    text: str
    start: int  # 0-based offset of the first character
    end: int  # 0-based offset after the last character


KEYWORDS: dict[str, TokenKind] = {k.value.lower(): k for k in (
    TokenKind.SELECT, TokenKind.TOP, TokenKind.AS, TokenKind.FROM, TokenKind.WHERE, TokenKind.GROUP, TokenKind.BY,
    TokenKind.AND, TokenKind.OR, TokenKind.NOT, TokenKind.IN, TokenKind.NIN, TokenKind.TRUE, TokenKind.FALSE,
    TokenKind.NULL)}

_PUNCT: dict[str, TokenKind] = {
    "<>": TokenKind.NE, "!=": TokenKind.NE, "<=": TokenKind.LE, ">=": TokenKind.GE,
    ".": TokenKind.DOT, ",": TokenKind.COMMA, "(": TokenKind.LPAREN, ")": TokenKind.RPAREN,
    "[": TokenKind.LBRACKET, "]": TokenKind.RBRACKET, "*": TokenKind.STAR, "+": TokenKind.PLUS,
    "-": TokenKind.MINUS, "/": TokenKind.SLASH, "%": TokenKind.PERCENT, "=": TokenKind.EQ, "<": TokenKind.LT,
    ">": TokenKind.GT,
}

_WS = re.compile(r"\s+")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BRACKETED = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_SINGLE = re.compile(r"'(?:''|\\.|[^'\\])*'", re.DOTALL)
_DOUBLE = re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL)


def tokenize(text: str) -> list[Token]:
    """Cut ``text`` into tokens ending with EOF; whitespace is dropped."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        if (m := _WS.match(text, pos)) is not None:
            pos = m.end()
            continue
        ch = text[pos]
        kind: TokenKind
        if ch in "'\"":
            m = (_SINGLE if ch == "'" else _DOUBLE).match(text, pos)
            end = m.end() if m else n
            kind = TokenKind.STRING if m else TokenKind.UNTERMINATED_STRING
        elif (m := _NAME.match(text, pos)) is not None:
            end = m.end()
            kind = KEYWORDS.get(m.group().lower(), TokenKind.NAME)
        elif (m := _NUMBER.match(text, pos)) is not None:
            end, kind = m.end(), TokenKind.NUMBER
        elif tokens and tokens[-1].kind is TokenKind.DOT and (m := _BRACKETED.match(text, pos)) is not None:
            end, kind = m.end(), TokenKind.BRACKETED
        elif len(two := text[pos:pos + 2]) == 2 and two in _PUNCT:
            end, kind = pos + 2, _PUNCT[two]
        elif ch in _PUNCT:
            end, kind = pos + 1, _PUNCT[ch]
        else:
            end, kind = pos + 1, TokenKind.UNKNOWN
        tokens.append(Token(kind, text[pos:end], pos, end))
        pos = end
    tokens.append(Token(TokenKind.EOF, "", n, n))
    return tokens


def string_value(token_text: str) -> str:
    """The contents of a STRING token: quotes removed, escapes resolved."""
    body = token_text[1:-1]
    if token_text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", lambda m: m.group(1), body, flags=re.DOTALL)
