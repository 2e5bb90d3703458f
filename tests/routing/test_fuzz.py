"""Fuzz the lexer, parser, compiler and evaluator with >= 10,000 generated inputs in CI (hypothesis).

Whatever the input, the only exception allowed is RouteError, and a condition that compiles evaluates to one
of TRUE/FALSE/UNDEFINED without raising. Each test counts its own examples so the total is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegen.routing import Bool, Message, RouteError, RouteTable, compile_condition, parse_route
from edgegen.routing.lexer import tokenize
from tests.support import profiles
from tests.support.profiles import examples

MESSAGES = [
    Message({"a": "1", "b": "x", "n": None, "$s": "v"}, {"s": "sv", "contentType": "application/json",
                                                          "contentEncoding": "utf-8"},
            b'{"a": 1, "b": {"c": [1, "x", null, true]}, "d": "2017-01-01"}'),
    Message({}, {}, b"\xff\xfe not json"),
    Message({"A": "-3.5e2"}, {"messageType": "twinChangeNotification", "contentType": "application/json",
                              "contentEncoding": "utf-16"}, '{"tags": {"x": 1}}'.encode("utf-16-le")),
]
ALPHABET = [*"abxyz019$._-+*/%=<>!|?(){}[],'\" \t\n\\;:@#&^~", "é", "Ω", "\u0000", "𝄞"]
WORDS = ["AND", "OR", "NOT", "and", "not", "true", "false", "null", "undefined", "FROM", "WHERE", "INTO", "SELECT",
         "$body", "$body.a", "$body.b.c[1]", "{$s}", "$s", "a", "b", "n", "missing", "3", "-1", "1e309", "0x1F",
         "'x'", '"1"', "'unterminated", "(", ")", ",", "=", "<>", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/",
         "%", "||", "??", "as_number", "is_defined", "is_null", "concat", "substring", "length", "upper", "abs",
         "power", "sqrt", "sign", "index_of", "contains", "twin_change_includes", "tags.x", "properties.desired.p",
         "/*", "*/", "$upstream", "BrokeredEndpoint", "/modules/m/inputs/i"]
FUNCS = {"as_number": 1, "is_defined": 1, "is_null": 1, "is_string": 1, "is_number": 1, "is_bool": 1, "length": 1,
         "lower": 1, "upper": 1, "abs": 1, "sqrt": 1, "sign": 1, "floor": 1, "ceiling": 1, "exp": 1, "square": 1,
         "concat": 3, "substring": 3, "index_of": 2, "contains": 2, "starts_with": 2, "ends_with": 2, "power": 2}

atoms = st.sampled_from(["a", "b", "n", "missing", "$s", "{$s}", "$body.a", "$body.b.c[1]", "$body.d", "1", "-2.5",
                         "0", "1e309", "'x'", "'1'", '""', "true", "false", "null", "undefined"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["AND", "OR", "=", "<>", "<", ">=", "+", "-", "*", "/", "%", "||",
                                                  "??"]), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
    unary = st.tuples(st.sampled_from(["NOT ", "- "]), children).map("".join)
    paren = children.map(lambda c: f"({c})")
    call = st.sampled_from(sorted(FUNCS)).flatmap(
        lambda f: st.lists(children, min_size=FUNCS[f] - 1, max_size=FUNCS[f]).map(lambda a: f"{f}({', '.join(a)})"))
    return st.one_of(binary, unary, paren, call)


expressions = st.recursive(atoms, _combine, max_leaves=12)
# the four tests below share the route language's fuzz budget (10,000 cases in CI; tests/support/profiles.py)
SHARE = -(-examples("fuzz") // 4)
FUZZ = settings(profiles.FUZZ, max_examples=SHARE,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _check_condition(text: str) -> None:
    tokenize(text)
    for body_query, twin, source in ((True, False, None), (False, True, "/twinChangeNotifications")):
        try:
            cond = compile_condition(text, body_query=body_query, twin_change_includes=twin, source=source)
        except RouteError as exc:
            assert exc.render()
            continue
        for m in MESSAGES:
            assert isinstance(cond(m), Bool)
        cond.steps(MESSAGES[0])
        cond.culprits(MESSAGES[0])


def _check_route(text: str) -> None:
    try:
        parse_route(text)
        table = RouteTable.from_routes({"r": text})
    except RouteError as exc:
        assert exc.render()
        return
    for m in MESSAGES:
        assert isinstance(table.match(m), list)


def _run(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], n: int = SHARE) -> int:
    calls = []

    @FUZZ
    @given(strategy)
    def inner(value: Any) -> None:
        calls.append(1)
        check(value)

    inner()
    assert len(calls) >= n
    return len(calls)


def test_fuzz_raw_text() -> None:
    _run(st.text(alphabet=st.sampled_from(ALPHABET), max_size=40), _check_condition)


def test_fuzz_token_soup() -> None:
    _run(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), _check_condition)


def test_fuzz_grammar_shaped_conditions() -> None:
    _run(expressions, _check_condition)


def test_fuzz_routes() -> None:
    path = st.lists(st.sampled_from(["messages", "modules", "m", "outputs", "o", "*", "twinChangeNotifications",
                                     "", "x y"]), max_size=5).map(lambda p: "/" + "/".join(p))
    sink = st.sampled_from(["$upstream", "$UPSTREAM", "$other", 'BrokeredEndpoint("/modules/m/inputs/i")',
                            "brokeredendpoint('/a/b/c/d')", 'BrokeredEndpoint("/modules/m")', "upstream", ""])
    cond = st.one_of(st.just(""), expressions.map(lambda e: f" WHERE {e}"),
                     st.text(alphabet=st.sampled_from(ALPHABET), max_size=15).map(lambda t: f" WHERE {t}"))
    routes = st.tuples(st.sampled_from(["", "SELECT * ", "select "]), path, cond, sink).map(
        lambda t: f"{t[0]}FROM {t[1]}{t[2]} INTO {t[3]}")
    _run(routes, _check_route)
