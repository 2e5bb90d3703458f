"""Bounds on a Jinja2 render, so a template can neither hang ``genconfig`` nor fill the memory.

Jinja2's sandbox keeps templates away from Python's internals, but not from the CPU and memory: ``range(10**9)``,
nested loops over ``range(100000)`` or ``'x' * 10**10`` would run for hours or exhaust the host. A
``LimitedEnvironment`` adds, per render:

- ``range()`` of at most ``max_range`` items (Jinja's own sandbox says the same, with an OverflowError);
- every ``{% for %}`` loop counted: at most ``max_iterations`` items over all loops, and the ``deadline``
  (``timeout`` seconds after the render began) checked as they go, so nested loops stop with an error;
- the output at most ``max_output`` characters (checked as it is produced);
- the operators and calls that multiply sizes refused when their result would exceed ``max_output``:
  ``*`` and ``**``, widths in ``%``/``format``/``center``/``ljust``/…, ``replace`` growth.

A limit that is hit raises ``TemplateLimitError``; ``render_jinja`` turns it into a RenderError naming the
template and line.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["DEFAULT_LIMITS", "JinjaLimits", "LimitedEnvironment", "TemplateLimitError"]

_GUARD = "_edgegen_loop_guard"
_MAX_POWER_BITS = 1_000_000
_BIG_WIDTH = re.compile(r"\d{7,}")  # a width or precision of a million characters or more in a format string


@dataclass(frozen=True)
class JinjaLimits:
    max_range: int = 100_000
    max_iterations: int = 10_000_000
    max_output: int = 16 * 1024 * 1024  # characters
    timeout: float = 10.0  # seconds per render


DEFAULT_LIMITS = JinjaLimits()


class TemplateLimitError(Exception):
    """A render went past one of its ``JinjaLimits``; the message says which and what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Budget:
    """What one render may still spend."""

    def __init__(self, limits: JinjaLimits) -> None:
        self.limits = limits
        self.iterations = 0
        self.deadline = time.monotonic() + limits.timeout

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise TemplateLimitError(f"the template's loops ran more than {self.limits.max_iterations:,} times",
                                     "loop over the data you need; nested loops multiply")
        if not self.iterations & 0xFF:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"rendering took longer than {self.limits.timeout:g} s",
                                     "simplify the template's loops (set EDGEGEN_JINJA_TIMEOUT for more time)")

    def size(self, n: float, what: str) -> None:
        if n > self.limits.max_output:
            raise TemplateLimitError(f"{what} would make {n:,.0f} characters or items; the limit is "
                                     f"{self.limits.max_output:,}", "templates render manifests of kilobytes")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class LimitedEnvironment(SandboxedEnvironment):
    """A sandbox that keeps to ``JinjaLimits`` (one render at a time: ``begin`` starts the budget)."""

    intercepted_binops = frozenset(("*", "**", "%"))

    def __init__(self, limits: JinjaLimits = DEFAULT_LIMITS, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self.budget = _Budget(limits)
        self.globals["range"] = self._range
        self.filters[_GUARD] = self._guard
        for name in ("center", "indent", "format", "replace", "wordwrap", "truncate"):
            self.filters[name] = self._checked_filter(self.filters[name])

    def begin(self) -> _Budget:
        self.budget = _Budget(self.limits)
        return self.budget

    # ---- loops -----------------------------------------------------------------------------------------
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every ``{% for %}`` iterates through the guard filter (counted, deadline checked)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _GUARD, [], [], None, None, lineno=loop.lineno)
        return tree

    def _guard(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = self.budget
        for item in iterable:
            budget.tick()
            yield item

    def _range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > self.limits.max_range:
            raise TemplateLimitError(f"range() of {len(rng):,} items; the sandbox allows {self.limits.max_range:,}",
                                     "loop over fewer items")
        return rng

    # ---- size multipliers ------------------------------------------------------------------------------
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                length = _length(seq)
                if length is not None and isinstance(n, int):
                    budget.size(length * n, "'*'")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > _MAX_POWER_BITS:
                raise TemplateLimitError(f"{left} ** {right} is a number of more than {_MAX_POWER_BITS:,} bits",
                                         "use smaller numbers")
        elif operator == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
            raise TemplateLimitError("a '%' format with a width of a million or more", "use a smaller width")
        return super().call_binop(context, operator, left, right)

    def _check_args(self, name: str, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        budget = self.budget
        budget.check_time()
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.limits.max_output:
                raise TemplateLimitError(f"{name}() with {value:,}; sizes above {self.limits.max_output:,} are "
                                         "refused", "use a smaller number")
            if isinstance(value, str) and "format" in name and _BIG_WIDTH.search(value):
                raise TemplateLimitError(f"{name}() with a width of a million or more", "use a smaller width")
        if isinstance(obj, str) and name.endswith("format") and _BIG_WIDTH.search(obj):
            raise TemplateLimitError(f"{name}() with a width of a million or more", "use a smaller width")
        if name.endswith("replace") and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
            subject = obj if isinstance(obj, str) else ""
            old, new = args[0], args[1]
            growth = max(len(new) - len(old), 0) * (subject.count(old) if old else len(subject) + 1)
            budget.size(len(subject) + growth, f"{name}()")

    def _checked_filter(self, func: Any) -> Any:
        name = getattr(func, "__name__", "filter")

        skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # pass_environment / pass_eval_context filters

        def checked(*args: Any, **kwargs: Any) -> Any:
            values = args[skip:]
            self._check_args(f"|{name}", values[0] if values else None, tuple(values[1:]), kwargs)
            return func(*args, **kwargs)

        if skip:
            checked.jinja_pass_arg = func.jinja_pass_arg  # type: ignore[attr-defined]
        return checked

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if __obj != __self._range:  # range() says itself what is too many
            name = getattr(__obj, "__name__", type(__obj).__name__)
            bound_to = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)  # the sandbox wraps format
            __self._check_args(name, bound_to, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)
