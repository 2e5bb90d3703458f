"""Jinja2 templates run in a bounded sandbox: ranges, loop iterations, output size, size-multiplying operators
and calls, and a deadline; any failure of the template's own code is a RenderError with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.generator.errors import RenderError
from edgegen.generator.jinja import render_jinja
from edgegen.generator.jinjalimits import JinjaLimits


def render(text: str, limits: JinjaLimits | None = None) -> str:
    return render_jinja(text, file="t.json.j2", paths=[Path("/nonexistent")], context={"env": {}}, limits=limits)


def refused(text: str, expected: str, limits: JinjaLimits | None = None) -> RenderError:
    with pytest.raises(RenderError) as info:
        render(text, limits)
    assert expected in info.value.message, info.value.render()
    assert info.value.location is not None and info.value.location.file == "t.json.j2"
    return info.value


@pytest.mark.parametrize(("text", "expected"), [
    ("{% for i in range(10**9) %}{% endfor %}", "range() of 1,000,000,000 items; the sandbox allows 100,000"),
    ("{{ 'x' * 10**10 }}", "'*' would make 10,000,000,000 characters"),
    ("{{ [1] * 10**9 }}", "'*' would make 1,000,000,000"),
    ("{{ 10 ** 10000000 }}", "is a number of more than 1,000,000 bits"),
    ("{{ 'x'.ljust(10**9) }}", "ljust() with 1,000,000,000"),
    ("{{ 'x'|center(10**9) }}", "with 1,000,000,000"),
    ("{{ '%999999999d' % 1 }}", "'%' format with a width of a million or more"),
    ("{{ '{:>999999999}'.format(1) }}", "format() with a width of a million or more"),
    ("{{ '%999999999d'|format(1) }}", "with a width of a million or more"),
    ("{% set s = 'a' * 100000 %}{{ s|replace('a', s) }}", "would make 10,000,000,000 characters"),
    ("{% set s = 'a' * 100000 %}{{ s.replace('a', s) }}", "would make 10,000,000,000 characters"),
    ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "the output would make"),
])
def test_size_multipliers_are_refused(text: str, expected: str) -> None:
    refused("{# t #}\n" + text, expected)


def test_nested_loops_stop_at_the_iteration_budget_with_the_line() -> None:
    err = refused("{# t #}\n\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                  "loops ran more than 1,000", JinjaLimits(max_iterations=1_000))
    assert err.location is not None and err.location.line == 3
    assert "nested loops multiply" in (err.hint or "")


def test_the_deadline_stops_slow_loops() -> None:
    slow = ("{% set ns = namespace(n=0) %}{% for i in range(100000) %}{% for j in range(100000) %}"
            "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}")
    err = refused(slow, "rendering took longer than 0.2 s", JinjaLimits(timeout=0.2))
    assert "EDGEGEN_JINJA_TIMEOUT" in (err.hint or "")


@pytest.mark.parametrize(("text", "expected"), [
    ("{{ 1/0 }}", "ZeroDivisionError"),
    ("{{ 2.0 ** 100000 }}", "OverflowError"),
    ("{{ int('x') }}", "int"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recurses too deeply"),
    ("{% for x in [1] recursive %}{{ loop([1, 2]) }}{% endfor %}", "recurses too deeply"),
])
def test_failures_of_the_templates_own_code_are_render_errors(text: str, expected: str) -> None:
    refused(text, expected)


def test_ordinary_templates_render_as_before() -> None:
    text = ("{% for m in range(3) %}{{ m }}{% endfor %} {{ 'ab'|replace('a', 'c') }} {{ 'x'|center(5) }} "
            "{{ '%3d'|format(4) }} {{ 'a %s' % 1 }} {{ 'a b c'|wordwrap(3) }} {{ 'abcdef'|truncate(4, leeway=0) }} "
            "{{ '  x'|indent(2) }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ '{:>4}'.format(1) }}"
            "{% for k, v in {'a': 1}.items() if v %}{{ loop.index }}{{ k }}{% endfor %}")
    assert render(text) == "012 cb   x     4 a 1 a b\nc a...   x 1024 abab    11a"
