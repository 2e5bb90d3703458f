"""The performance paths of edgegen.routing change nothing: the lexer's first-character filter (and its patterns
compiled on first need) gives the tokens
of the plain longest-match loop, and cached parses/compiles equal fresh ones (errors are never cached)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.routing import RouteError, parse_route
from edgegen.routing.lexer import _RULES, HIDDEN, Token, TokenKind, tokenize
from edgegen.routing.route import _RouteParser
from edgegen.routing.table import compile_route
from tests.support.profiles import FUZZ


def reference_tokenize(text: str) -> list[Token]:
    """The lexer without the filter: every rule at every position, longest match, earlier rule on ties."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        best_kind, best_end = TokenKind.UNKNOWN, pos
        for kind, pattern in _RULES:
            m = re.compile(pattern, re.DOTALL).match(text, pos)
            if m is not None and m.end() > best_end:
                best_kind, best_end = kind, m.end()
        tokens.append(Token(best_kind, text[pos:best_end], pos, best_end))
        pos = best_end
    tokens.append(Token(TokenKind.EOF, "", n, n))
    return tokens


PIECES = [*"abcdeEfinotuxASFWINOT0123456789-+.*/%$'\"\\{}()[],=!<>|?&@;: \t\n\r_é\x00",
          "true", "false", "null", "undefined", "FROM", "INTO", "WHERE", "SELECT", "AND", "or", "NOT", "/*", "*/",
          "0x1F", "\\u00e9", "1e5", "$body", "$upstream", "BrokeredEndpoint", "/messages/modules/m/outputs/o"]


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_filtered_lexer_equals_the_plain_loop(text: str) -> None:
    expected = reference_tokenize(text)
    assert tokenize(text, keep_hidden=True) == expected
    assert tokenize(text) == [t for t in expected if t.kind not in HIDDEN]


@given(st.text(max_size=30))
@FUZZ
def test_filtered_lexer_equals_the_plain_loop_on_any_text(text: str) -> None:
    assert tokenize(text, keep_hidden=True) == reference_tokenize(text)


ROUTE = ("FROM /messages/modules/a/outputs/o WHERE as_number(temp) > 20 AND $contentType = 'application/json' "
         "INTO $upstream")


def test_cached_parse_equals_a_fresh_parse() -> None:
    first = parse_route(ROUTE)
    assert parse_route(ROUTE) is first  # the same immutable value
    fresh = _RouteParser(ROUTE, tokenize(ROUTE)).parse()
    assert fresh == first and fresh.condition_ast == first.condition_ast


def test_errors_are_raised_every_time() -> None:
    for _ in range(2):
        with pytest.raises(RouteError) as exc:
            parse_route("FROM /messages/* WHERE INTO $upstream")
        assert "empty WHERE condition" in exc.value.message


def test_str_subclass_is_parsed_not_cached() -> None:
    class Text(str):
        pass

    route = parse_route(Text(ROUTE))
    assert route == parse_route(ROUTE) and route is not parse_route(ROUTE)


def test_compiled_routes_share_the_condition_not_their_names_or_paths() -> None:
    a = compile_route("a", ROUTE, 1, None, "routes.a")
    b = compile_route("b", ROUTE, 5, 60, "routes.b")
    assert (a.name, a.priority, a.ttl_secs, b.name, b.priority, b.ttl_secs) == ("a", 1, None, "b", 5, 60)
    assert a.condition is b.condition and a.route is b.route
    bad = "FROM /messages/* WHERE 'a' + 1 INTO $upstream"  # a type error found when compiling
    for path in ("routes.x", "routes.y"):
        with pytest.raises(RouteError) as exc:
            compile_route("x", bad, 0, None, path)
        assert exc.value.location is not None and exc.value.location.json_path == path
