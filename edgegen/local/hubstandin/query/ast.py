"""Typed syntax tree of queries and target conditions. Every node is frozen and carries its span."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgegen.routing.ast import Span

__all__ = [
    "Aggregate",
    "Array",
    "Binary",
    "BinaryOp",
    "Call",
    "Expr",
    "Literal",
    "Path",
    "Query",
    "SelectItem",
    "Source",
    "Span",
    "TargetCondition",
    "Unary",
    "UnaryOp",
    "walk",
]


class Source(Enum):
    """The document collection a query runs over."""

    DEVICES = "devices"
    MODULES = "devices.modules"
    JOBS = "devices.jobs"


@dataclass(frozen=True)
class Literal:
    span: Span
    value: str | int | float | bool | None


@dataclass(frozen=True)
class Array:
    span: Span
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Path:
    """``tags.site.name``, ``properties.desired.$version``, ``configurations.[[id]].status``."""

    span: Span
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class UnaryOp(Enum):
    NOT = "NOT"
    NEG = "-"


@dataclass(frozen=True)
class Unary:
    span: Span
    op: UnaryOp
    operand: Expr


class BinaryOp(Enum):
    OR = "OR"
    AND = "AND"
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "IN"
    NIN = "NIN"
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"


@dataclass(frozen=True)
class Binary:
    span: Span
    op: BinaryOp
    left: Expr
    right: Expr
    op_span: Span


@dataclass(frozen=True)
class Call:
    span: Span
    name: str  # as written
    name_span: Span
    args: tuple[Expr, ...]


Expr = Literal | Array | Path | Unary | Binary | Call


@dataclass(frozen=True)
class Aggregate:
    """``COUNT()``, ``AVG(path)``, ``SUM(path)``, ``MIN(path)``, ``MAX(path)`` in a SELECT list."""

    span: Span
    func: str  # upper case
    arg: Path | None


@dataclass(frozen=True)
class SelectItem:
    span: Span
    value: Path | Aggregate
    alias: str | None


@dataclass(frozen=True)
class Query:
    span: Span
    top: int | None
    items: tuple[SelectItem, ...]  # empty for SELECT *
    source: Source
    source_span: Span
    where: Expr | None
    group_by: tuple[Path, ...]

    @property
    def star(self) -> bool:
        return not self.items

    @property
    def aggregated(self) -> bool:
        return bool(self.group_by) or any(isinstance(i.value, Aggregate) for i in self.items)


@dataclass(frozen=True)
class TargetCondition:
    """A configuration's target: ``*``, a condition over device twins, or ``FROM devices.modules WHERE …``."""

    source: Source
    where: Expr | None  # None: every twin of the source ('*')
    empty: bool = False  # '' targets nothing


def walk(node: Expr) -> list[Expr]:
    """The node and its descendants, parents first."""
    out: list[Expr] = [node]
    if isinstance(node, Unary):
        out += walk(node.operand)
    elif isinstance(node, Binary):
        out += walk(node.left) + walk(node.right)
    elif isinstance(node, Call | Array):
        for child in node.args if isinstance(node, Call) else node.items:
            out += walk(child)
    return out
