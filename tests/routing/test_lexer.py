"""The lexer cuts text exactly like edgeHub's ANTLR lexer: longest match first, then rule order."""

from __future__ import annotations

import pytest

from edgegen.routing.lexer import TokenKind, tokenize

T = TokenKind


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind.name, t.text) for t in tokenize(text)][:-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a+b", [("ID", "a+b")]),  # '+' is a name character: one property name
        ("3 + 4", [("INTEGER", "3"), ("PLUS", "+"), ("INTEGER", "4")]),
        ("-1", [("INTEGER", "-1")]),
        ("-x", [("ID", "-x")]),
        ("true True", [("TRUE", "true"), ("ID", "True")]),
        ("and AND And", [("AND", "and"), ("AND", "AND"), ("AND", "And")]),
        ("'a' || 'b'", [("STRING", "'a'"), ("CONCAT", "||"), ("STRING", "'b'")]),
        ("1e25 .5 0x1F", [("REAL", "1e25"), ("REAL", ".5"), ("HEX", "0x1F")]),
        ("$body.a[0]", [("SYS_PROP", "$body.a[0]")]),
        ("{$sys1}", [("LBRACE", "{"), ("SYS_PROP", "$sys1"), ("RBRACE", "}")]),
        ("a[0]", [("QUERY_PATH", "a[0]")]),
        ("x <> y != z", [("ID", "x"), ("NE2", "<>"), ("ID", "y"), ("NE", "!="), ("ID", "z")]),
        ('"unterminated', [("UNTERMINATED_STRING", '"unterminated')]),
        ("a & b", [("ID", "a"), ("ID", "&"), ("ID", "b")]),
        ("a;b", [("ID", "a"), ("UNKNOWN", ";"), ("ID", "b")]),
        ("/* note */ x", [("ID", "x")]),
        ("FROM from", [("FROM", "FROM"), ("FROM", "from")]),
    ],
)
def test_tokens(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_positions_and_eof() -> None:
    toks = tokenize("  ab = 'c'")
    assert [(t.start, t.end) for t in toks] == [(2, 4), (5, 6), (7, 10), (10, 10)]
    assert toks[-1].kind is T.EOF


def test_hidden_tokens_kept_on_request() -> None:
    assert [t.kind for t in tokenize("a /*c*/ b", keep_hidden=True)][:5] == [T.ID, T.WS, T.COMMENT, T.WS, T.ID]
