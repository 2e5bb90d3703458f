"""Fuzz the query language's lexer, parser, compiler and engine (hypothesis).

Whatever the text, the only exception is QueryError (with a column inside the text and a caret); a query that
compiles runs over twins without raising, gives JSON-serializable rows, and its WHERE is true, false or
undefined for every twin. Generated queries from the grammar parse, and their spans cover their own text.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegen.local.hubstandin.query import QueryError, compile_query, compile_target, page_rows, parse_query
from edgegen.local.hubstandin.query.ast import walk
from edgegen.local.hubstandin.query.evaluate import compile_expr
from edgegen.local.hubstandin.query.lexer import tokenize
from edgegen.routing.values import ABSENT
from tests.support.profiles import PROPERTY

TWINS = [
    {"deviceId": "a", "moduleId": "m", "tags": {"x": 1, "s": "v", "l": [1, "v", None], "o": {"k": True}},
     "properties": {"desired": {"$version": 2, "n": 1.5}, "reported": {"n": "1.5", "z": None}},
     "configurations": {"c-1": {"status": "Applied"}}, "parentScopes": ["p"]},
    {"deviceId": "b", "tags": {}, "properties": {"desired": {}, "reported": {}}},
    {},
]
ALPHABET = [*"abxyz019$._-+*/%=<>!(){}[],'\" \t\n\\;:@#&^~", "é", "Ω", "\u0000", "𝄞"]
WORDS = ["SELECT", "select", "TOP", "3", "*", "FROM", "devices", "devices.modules", "devices.jobs", "WHERE", "GROUP",
         "BY", "AS", "AND", "OR", "NOT", "IN", "NIN", "true", "null", "COUNT()", "AVG(", "deviceId", "tags.x",
         "tags.[[a-b]]", "[[", "]]", "properties.desired.$version", "'x'", "\"y\"", "'unterminated", "(", ")", "[",
         "]", ",", "=", "<>", "!=", "<", ">=", "+", "-", "/", "%", "is_defined(", "array_contains(", "startswith(",
         "1e309", "-0.5", ".5", "configurations.[[c-1]].status"]
FUNCS = {"is_defined": 1, "is_null": 1, "is_string": 1, "is_number": 1, "is_bool": 1, "is_array": 1, "is_object": 1,
         "length": 1, "lower": 1, "upper": 1, "abs": 1, "sqrt": 1, "sign": 1, "floor": 1, "ceiling": 1, "round": 1,
         "exp": 1, "log": 1, "square": 1, "concat": 3, "substring": 3, "index_of": 2, "contains": 2,
         "startswith": 2, "ends_with": 2, "power": 2, "array_contains": 2, "array_length": 1}

atoms = st.sampled_from(["deviceId", "moduleId", "tags.x", "tags.s", "tags.l", "tags.o.k", "tags.missing",
                         "properties.desired.$version", "properties.reported.n", "properties.reported.z",
                         "configurations.[[c-1]].status", "devices.tags.x", "parentScopes", "1", "-2.5", "0",
                         "1e309", "'x'", "'v'", '""', "true", "false", "null", "[1, 'v']", "[]"])
paths = st.sampled_from(["deviceId", "tags.x", "tags.s", "properties.reported.n", "tags.[[a b]]", "tags.o"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["AND", "OR", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*",
                                                  "/", "%", "IN", "NIN"]), children).map(" ".join)
    unary = st.tuples(st.sampled_from(["NOT ", "-"]), children).map("".join)
    paren = children.map(lambda c: f"({c})")
    array = st.lists(children, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")
    call = st.sampled_from(sorted(FUNCS)).flatmap(
        lambda f: st.lists(children, min_size=FUNCS[f], max_size=FUNCS[f]).map(lambda a: f"{f}({', '.join(a)})"))
    return st.one_of(binary, unary, paren, array, call)


expressions = st.recursive(atoms, _combine, max_leaves=10)
item = st.one_of(paths, st.sampled_from(["COUNT()", "AVG(tags.x)", "SUM(tags.x)", "MIN(tags.s)", "MAX(tags.x)"]))
FUZZ = settings(PROPERTY, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _check(text: str) -> None:
    tokenize(text)
    try:
        q = compile_query(text)
    except QueryError as exc:
        assert exc.column is None or 1 <= exc.column <= len(text) + 1
        assert exc.render()
        return
    rows = q.run(TWINS)
    json.dumps(rows)
    page_rows(text, rows, None, 1)
    for twin in TWINS:
        assert q.where(twin) in (True, False)


@FUZZ
@given(st.text(st.sampled_from(ALPHABET), max_size=60))
def test_random_characters(text: str) -> None:
    _check(text)
    try:
        compile_target(text).matches(TWINS[0])
    except QueryError as exc:
        assert exc.render()


@FUZZ
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join))
def test_random_words(text: str) -> None:
    _check(text)


@FUZZ
@given(expressions)
def test_grammar_expressions_parse_and_evaluate_three_valued(expr: str) -> None:
    text = f"SELECT * FROM devices WHERE {expr}"
    q = parse_query(text)  # everything the grammar makes parses
    assert q.where is not None
    start = len("SELECT * FROM devices WHERE ")
    assert start <= q.where.span.start <= q.where.span.end <= len(text)  # a (parenthesized) node spans its inside
    assert text[q.where.span.start:q.where.span.end].strip("()") in expr
    for node in walk(q.where):
        assert 0 <= node.span.start <= node.span.end <= len(text)
    try:
        fn = compile_expr(q.where, text)
    except QueryError as exc:  # only a literal of the wrong type given to a function is refused
        assert "expects a" in exc.message, exc.render()
        return
    for twin in TWINS:
        value = fn(twin)
        assert value is ABSENT or json.dumps(value) is not None


@FUZZ
@given(st.integers(0, 5) | st.none(), st.lists(st.tuples(item, st.booleans()), min_size=1, max_size=4),
       st.lists(paths, max_size=2, unique=True), expressions | st.none())
def test_grammar_queries(top: int | None, items: list[tuple[str, bool]], group: list[str], where: str | None) -> None:
    select = ", ".join(f"{it} AS a{i}" if alias else it for i, (it, alias) in enumerate(items))
    text = (f"SELECT {'' if top is None else f'TOP {top} '}{select} FROM devices"
            f"{'' if where is None else ' WHERE ' + where}{' GROUP BY ' + ', '.join(group) if group else ''}")
    _check(text)
