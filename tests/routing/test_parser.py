"""Pratt parser: precedence, spans, and errors that show the text, a caret and what was expected."""

from __future__ import annotations

import pytest

from edgegen.routing import ModuleInputEndpoint, RouteError, UpstreamEndpoint, parse_condition, parse_route
from edgegen.routing.ast import Binary, BinaryOp, Call, Empty, Literal, Property, SysProperty, Unary, UnaryOp
from edgegen.routing.parser import BINDING_POWER, unescape


def shape(node: object) -> object:
    if isinstance(node, Binary):
        return (node.op.value, shape(node.left), shape(node.right))
    if isinstance(node, Unary):
        return (node.op.value, shape(node.operand))
    if isinstance(node, Call):
        return (node.name, *[shape(a) for a in node.args])
    if isinstance(node, Property):
        return node.name
    if isinstance(node, SysProperty):
        return ("{$" if node.escaped else "$") + node.name
    if isinstance(node, Literal):
        return node.value
    return type(node).__name__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a ?? b OR c", ("??", "a", ("OR", "b", "c"))),
        ("a OR b AND c", ("OR", "a", ("AND", "b", "c"))),
        ("a = b AND c <> d", ("AND", ("=", "a", "b"), ("!=", "c", "d"))),
        ("1 + 2 * 3 < 4", ("<", ("+", 1.0, ("*", 2.0, 3.0)), 4.0)),
        ("1 - 2 - 3", ("-", ("-", 1.0, 2.0), 3.0)),
        ("NOT a = b", ("=", ("NOT", "a"), "b")),  # prefix operators bind tightest, as in edgeHub
        ("- (x) * 2", ("*", ("-", "x"), 2.0)),
        ("(a OR b) AND c", ("AND", ("OR", "a", "b"), "c")),
        ("f(1, g(x), 'y')", ("f", 1.0, ("g", "x"), "y")),
        ("{$a} = $b", ("=", "{$a", "$b")),
        ("a ?? b ?? c", ("??", ("??", "a", "b"), "c")),
    ],
)
def test_precedence(text: str, expected: object) -> None:
    assert shape(parse_condition(text)) == expected


def test_one_binding_power_table_orders_the_operators() -> None:
    bp = {k.name: v for k, v in BINDING_POWER.items()}
    assert bp["COALESCE"] < bp["OR"] < bp["AND"] < bp["EQ"] < bp["LT"] < bp["PLUS"] < bp["STAR"]


def test_spans_point_into_the_text() -> None:
    text = "x = 'y' AND  starts_with(z, 'q')"
    node = parse_condition(text)
    assert isinstance(node, Binary) and node.op is BinaryOp.AND
    assert node.left.span.text(text) == "x = 'y'"
    assert node.right.span.text(text) == "starts_with(z, 'q')"
    assert node.op_span.text(text) == "AND"
    assert isinstance(node.right, Call) and node.right.name_span.text(text) == "starts_with"
    neg = parse_condition("-(a)")
    assert isinstance(neg, Unary) and neg.op is UnaryOp.NEG


def test_empty_and_comment_only_conditions() -> None:
    assert isinstance(parse_condition(""), Empty)
    assert isinstance(parse_condition("  /* nothing */ "), Empty)


def test_unescape_follows_edgehub() -> None:
    assert unescape(r"a\'b\"c\\d\u0041") == "a'b\"c\\dA"


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("a == 1", 4, "'==' is not an operator"),
        ("(a = 1", 1, "missing closing ')'"),
        ("a = 1)", 6, "unmatched closing ')'"),
        ("a = 'x", 5, "unterminated string"),
        ("a = 1 b", 7, "after a complete expression"),
        ("a = ", 5, "unexpected end of input"),
        ("a ; b", 3, "unrecognized character ';'"),
        ("f(1,", 5, "unexpected end of input"),
        ("x[0] = 1", 1, "not a valid name here"),
    ],
)
def test_syntax_errors_point_at_the_column(text: str, column: int, needle: str) -> None:
    with pytest.raises(RouteError) as info:
        parse_condition(text)
    err = info.value
    assert err.column == column
    assert needle in err.message
    rendered = err.render()
    lines = rendered.splitlines()
    assert lines[1].strip() == text.strip()
    assert lines[2].index("^") - lines[1].index(text[0]) == column - 1


def test_route_parts() -> None:
    r = parse_route(' SELECT * FROM /messages/modules/sensor/outputs/* WHERE  a = "b"  INTO $UPSTREAM ')
    assert r.source == "/messages/modules/sensor/outputs/"
    assert r.source_text == "/messages/modules/sensor/outputs/*"
    assert r.condition == 'a = "b"'
    assert r.sink == UpstreamEndpoint()
    assert r.source_module == "sensor" and r.source_output is None
    r2 = parse_route("FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint('/modules/b/inputs/i')")
    assert r2.sink == ModuleInputEndpoint("b", "i")
    assert r2.condition is None and r2.source_output == "o"


@pytest.mark.parametrize(
    ("text", "needle", "expected"),
    [
        ("FROM /messages INTO $downstream", "unknown system endpoint", None),
        ('FROM /messages INTO Endpoint("/modules/a/inputs/b")', "unknown endpoint function", None),
        ('FROM /messages INTO BrokeredEndpoint("/modules/a")', "must have the form", None),
        ("FROM /messages INTO $upstream extra", "after the sink", "the end of the route"),
        ("FROM /messages WHERE INTO $upstream", "empty WHERE", "a condition after WHERE"),
        ("", "empty route", "FROM <source> [WHERE <condition>] INTO <sink>"),
        ("FROM messages INTO $upstream", "unexpected 'messages'", "a source path such as"),
    ],
)
def test_route_errors(text: str, needle: str, expected: str | None) -> None:
    with pytest.raises(RouteError) as info:
        parse_route(text)
    assert needle in info.value.message
    if expected:
        assert expected in (info.value.expected or "")


def test_non_string_inputs_are_route_errors() -> None:
    with pytest.raises(RouteError):
        parse_route(42)  # type: ignore[arg-type]
    with pytest.raises(RouteError):
        parse_condition(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["(" * 500 + "a" + ")" * 500, "NOT " * 300 + "true", " AND ".join(["a = 'b'"] * 400), "- " * 300 + "1",
     "f(" * 300 + "1" + ")" * 300],
)
def test_deep_nesting_is_a_route_error_not_a_crash(text: str) -> None:
    with pytest.raises(RouteError, match="levels deep|in one chain"):
        parse_condition(text)
    with pytest.raises(RouteError):
        parse_route(f"FROM /messages WHERE {text} INTO $upstream")


def test_reasonable_nesting_compiles_and_runs() -> None:
    from edgegen.routing import TRUE, Message, compile_condition

    text = " AND ".join(["a = 'b'"] * 60) + " AND " + "(" * 40 + "true" + ")" * 40
    assert compile_condition(text)(Message({"a": "b"})) is TRUE
