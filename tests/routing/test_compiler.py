"""Compile-time type checks with actionable messages; evaluation through closures; explicit undefined."""

from __future__ import annotations

import pytest

from edgegen.routing import FALSE, TRUE, UNDEFINED, Bool, Message, RouteError, compile_condition

MSG = Message({"temp": "31.5", "Units": "C", "nothing": None}, {"connectionModuleId": "sensor"}, b"")


@pytest.mark.parametrize(
    ("text", "needle", "hint"),
    [
        ("temp > 30", "operator '>' needs two values of the same type", "as_number"),
        ("tmep(1) = 1", "unknown function 'tmep'", "known functions"),
        ("uper(Units) = 'C'", "unknown function 'uper'", "did you mean upper"),
        ("substring('abc')", "wrong number of arguments to substring: got 1", "substring(string, number)"),
        ("length(3) = 1", "length cannot take (number)", "length(string) -> number"),
        ("abs(temp) = 1", "abs cannot take (string)", "as_number"),
        ("concat('a')", "wrong number of arguments to concat", "concat(string, string, string...)"),
        ("temp ?? 1", "needs two values of the same type", "??"),
        ("NOT temp", "NOT needs a boolean", None),
        ("- temp", "unary '-' needs a number", "as_number"),
        ("'a' + 'b' = 'ab'", "needs two numbers", "||"),
        ("temp AND true", "needs two booleans", None),
        ("true AND $body.ok", "needs two booleans", "$body.ok = true"),
        ("$body.a[] = 1", "invalid $body query", "[index]"),
        ("$body.a..b = 1", "invalid $body query", "names separated by '.'"),
        ("twin_change_includes(properties.reported.x)", "not enabled", "/twinChangeNotifications"),
    ],
)
def test_compile_errors_explain_the_rule(text: str, needle: str, hint: str | None) -> None:
    with pytest.raises(RouteError) as info:
        compile_condition(text)
    assert needle in info.value.message
    if hint:
        assert hint in (info.value.hint or "")
    assert info.value.column is not None and "^" in info.value.render()


def test_twin_change_includes_needs_the_twin_source() -> None:
    with pytest.raises(RouteError, match="needs a route FROM /twinChangeNotifications"):
        compile_condition("twin_change_includes(tags.x)", twin_change_includes=True, source="/messages")
    cond = compile_condition("twin_change_includes(tags.x)", twin_change_includes=True,
                             source="/twinChangeNotifications")
    twin = Message({}, {"contentType": "application/json", "contentEncoding": "utf-8"}, b'{"tags": {"x": 1}}')
    assert cond(twin) is TRUE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("as_number(temp) > 30", TRUE),
        ("units = 'C'", TRUE),  # names are case-insensitive
        ("units = 'c'", FALSE),  # values are not
        ("missing = 'x'", UNDEFINED),
        ("nothing = 'x'", UNDEFINED),
        ("is_null(nothing) AND is_defined(nothing) AND NOT is_defined(missing)", TRUE),
        ("$connectionModuleId = 'sensor'", TRUE),
        ("{$connectionModuleId} = 'sensor'", TRUE),
        ("NOT (missing = 'x')", UNDEFINED),
        ("missing = 'x' OR true", TRUE),
        ("missing = 'x' AND false", FALSE),
    ],
)
def test_evaluation(text: str, expected: Bool) -> None:
    result = compile_condition(text)(MSG)
    assert result is expected
    assert result is not None


def test_results_are_three_valued_enum_not_none() -> None:
    cond = compile_condition("missing = 'x'")
    value = cond(MSG)
    assert isinstance(value, Bool) and value is UNDEFINED and not value
    assert str(value) == "undefined"


def test_constant_conditions_are_folded_and_reported() -> None:
    assert compile_condition("1 = 2").constant_value is FALSE
    assert compile_condition("undefined").constant_value is UNDEFINED
    assert compile_condition("upper('a') = 'A'").constant_value is TRUE
    assert compile_condition("x = 'y'").constant_value is None


def test_uses_body_is_tracked() -> None:
    assert compile_condition("$body.a = 1").uses_body
    assert not compile_condition("a = '1'").uses_body


def test_steps_and_culprits() -> None:
    cond = compile_condition("as_number(temp) > 40 OR units = 'F'")
    steps = cond.steps(MSG)
    assert steps[0].text == "as_number(temp) > 40 OR units = 'F'" and steps[0].value is FALSE
    assert [(s.text, s.shown()) for s in steps if s.depth == 2][:2] == [("as_number(temp)", "31.5"), ("40", "40")]
    assert [c.text for c in cond.culprits(MSG)] == ["as_number(temp) > 40", "units = 'F'"]


# -- three-valued logic laws, checked on generated boolean expressions --------------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.support.profiles import PROPERTY  # noqa: E402

_bool_atoms = st.sampled_from(["true", "false", "undefined", "units = 'C'", "units = 'F'", "missing = 'x'",
                               "as_number(temp) > 30", "as_number(temp) > 40", "is_null(nothing)"]).map(
    lambda x: f"({x})")  # NOT binds tighter than '=', so atoms are parenthesized
_bools = st.recursive(_bool_atoms, lambda c: st.one_of(
    st.tuples(c, st.sampled_from([" AND ", " OR "]), c).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
    c.map(lambda x: f"(NOT {x})")), max_leaves=8).map(lambda x: f"({x})")


@PROPERTY
@given(_bools, _bools)
def test_kleene_laws(a: str, b: str) -> None:
    def ev(text: str) -> Bool:
        return compile_condition(text)(MSG)

    assert ev(f"NOT (NOT {a})") is ev(a)
    assert ev(f"NOT ({a} AND {b})") is ev(f"(NOT {a}) OR (NOT {b})")
    assert ev(f"NOT ({a} OR {b})") is ev(f"(NOT {a}) AND (NOT {b})")
    assert ev(f"{a} AND {b}") is ev(f"{b} AND {a}")
    assert ev(f"{a} OR {b}") is ev(f"{b} OR {a}")
    order = {FALSE: 0, UNDEFINED: 1, TRUE: 2}  # Kleene: AND is min, OR is max
    assert order[ev(f"{a} AND {b}")] == min(order[ev(a)], order[ev(b)])
    assert order[ev(f"{a} OR {b}")] == max(order[ev(a)], order[ev(b)])
