"""Typed syntax tree of a condition. Every node is frozen and carries its span in the source text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Binary",
    "BinaryOp",
    "Call",
    "Empty",
    "Literal",
    "LiteralKind",
    "Node",
    "Property",
    "Span",
    "SysProperty",
    "Unary",
    "UnaryOp",
    "children",
    "walk",
]


@dataclass(frozen=True)
class Span:
    start: int  # 0-based offset into the condition text
    end: int

    def text(self, source: str) -> str:
        return source[self.start : self.end]


class LiteralKind(Enum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    NULL = "null"
    UNDEFINED = "undefined"


@dataclass(frozen=True)
class Literal:
    span: Span
    kind: LiteralKind
    value: float | str | bool | None


@dataclass(frozen=True)
class Property:
    """A bare name: the application property of that name (a string)."""

    span: Span
    name: str


@dataclass(frozen=True)
class SysProperty:
    """``$name`` (application property ``$name``, else ``$body`` query, else system property) or ``{$name}``."""

    span: Span
    name: str  # without the leading '$'
    escaped: bool  # written as {$name}: never the application property


class UnaryOp(Enum):
    NEG = "-"
    NOT = "NOT"


@dataclass(frozen=True)
class Unary:
    span: Span
    op: UnaryOp
    operand: Node


class BinaryOp(Enum):
    MUL = "*"
    DIV = "/"
    MOD = "%"
    ADD = "+"
    SUB = "-"
    CONCAT = "||"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "="
    NE = "!="
    AND = "AND"
    OR = "OR"
    COALESCE = "??"


@dataclass(frozen=True)
class Binary:
    span: Span
    op: BinaryOp
    left: Node
    right: Node
    op_span: Span


@dataclass(frozen=True)
class Call:
    span: Span
    name: str
    name_span: Span
    args: tuple[Node, ...]
    raw_args: str  # argument tokens joined without spaces (edgeHub's GetText), used by twin_change_includes


@dataclass(frozen=True)
class Empty:
    """An empty (or whitespace/comment-only) condition: always undefined."""

    span: Span


Node = Literal | Property | SysProperty | Unary | Binary | Call | Empty


def children(node: Node) -> list[Node]:
    """The node's direct sub-expressions, left to right."""
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, Call):
        return list(node.args)
    return []


def walk(node: Node) -> list[Node]:
    """The node and all its descendants, parents first."""
    out: list[Node] = [node]
    for child in children(node):
        out += walk(child)
    return out
