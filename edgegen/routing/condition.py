"""``compile_condition``: parse + type-check once, then a callable ``Condition(message) -> Bool``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgegen.routing.ast import Binary, BinaryOp, Node, Unary, UnaryOp, children
from edgegen.routing.compiler import Compiled, Compiler
from edgegen.routing.errors import RouteError
from edgegen.routing.message import Message
from edgegen.routing.ops import to_bool
from edgegen.routing.parser import parse_condition
from edgegen.routing.values import ABSENT, TRUE, Bool, Ty

__all__ = ["Condition", "Step", "compile_condition", "compile_parsed"]


@dataclass(frozen=True)
class Step:
    """One sub-expression's value for a message (used to explain why a route did not fire)."""

    text: str
    start: int
    end: int
    depth: int
    type: Ty
    value: Any

    def shown(self) -> str:
        v = self.value
        if isinstance(v, Bool):
            return str(v)
        if v is ABSENT:
            return "undefined"
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
        return repr(v)


class Condition:
    """A compiled WHERE condition. Call it with a Message; it returns TRUE, FALSE or UNDEFINED."""

    def __init__(self, text: str, ast: Node, compiled: Compiled, parts: dict[int, Compiled],
                 span_text: str | None = None) -> None:
        self.text = text
        self.span_text = text if span_text is None else span_text  # the text the AST spans index into
        self.ast = ast
        self.type = compiled.ty
        self.uses_body = compiled.uses_body
        self.is_constant = compiled.const
        self.predicate = to_bool(compiled.ty, compiled.fn)
        self._parts = parts

    def __call__(self, message: Message) -> Bool:
        return self.predicate(message)

    @property
    def constant_value(self) -> Bool | None:
        """The result when it does not depend on the message (e.g. ``false``, ``1 = 2``), else None."""
        return self.predicate(Message()) if self.is_constant else None

    def steps(self, message: Message) -> list[Step]:
        """Every sub-expression with its value, parents first."""
        out: list[Step] = []

        def visit(node: Node, depth: int) -> None:
            part = self._parts.get(id(node))
            if part is not None:
                out.append(Step(node.span.text(self.span_text), node.span.start, node.span.end, depth, part.ty,
                                part.fn(message)))
            for child in children(node):
                visit(child, depth + 1)

        visit(self.ast, 0)
        return out

    def culprits(self, message: Message) -> list[Step]:
        """The smallest sub-expressions that made the condition not true."""
        found: list[Step] = []

        def value(node: Node) -> Bool:
            part = self._parts[id(node)]
            return to_bool(part.ty, part.fn)(message)

        def visit(node: Node) -> None:
            v = value(node)
            if v is TRUE:
                return
            if isinstance(node, Binary) and node.op in (BinaryOp.AND, BinaryOp.OR):
                kids = [k for k in (node.left, node.right) if value(k) is not TRUE]
                if kids:
                    for k in kids:
                        visit(k)
                    return
            if isinstance(node, Unary) and node.op is UnaryOp.NOT:
                pass
            part = self._parts[id(node)]
            found.append(Step(node.span.text(self.span_text), node.span.start, node.span.end, 0, part.ty,
                              part.fn(message)))

        visit(self.ast)
        return found


def compile_parsed(text: str, ast: Node, *, body_query: bool = True, twin_change_includes: bool = False,
                   source: str | None = None, span_text: str | None = None) -> Condition:
    """Compile an AST parsed from ``span_text`` (the whole route) or ``text`` (the condition alone)."""
    full = text if span_text is None else span_text
    compiler = Compiler(full, body_query=body_query, twin_change_includes=twin_change_includes, source=source)
    compiled = compiler.compile(ast)
    return Condition(text, ast, compiled, compiler.parts, span_text=full)


def compile_condition(text: str, *, body_query: bool = True, twin_change_includes: bool = False,
                      source: str | None = None) -> Condition:
    """Compile a WHERE condition. Syntax and type errors raise RouteError (with a caret), never ``false`` later.

    ``body_query`` enables ``$body.…`` queries; ``twin_change_includes`` enables that function, which also needs
    ``source`` to be ``/twinChangeNotifications`` when a source is given.
    """
    if not isinstance(text, str):
        raise RouteError(f"a condition must be a string, not {type(text).__name__}")
    return compile_parsed(text, parse_condition(text), body_query=body_query,
                          twin_change_includes=twin_change_includes, source=source)



