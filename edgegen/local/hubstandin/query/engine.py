"""Run a parsed query over twin documents: filter, group, aggregate, project, TOP — and page the rows.

Projection follows IoT Hub: ``SELECT *`` returns whole twins; a path is named by its alias or its last
segment (``properties.reported.fw`` → ``fw``) and left out of a row where it is undefined; an unnamed
aggregate is named ``$1``, ``$2``… by position among the unnamed aggregates. Aggregates without ``GROUP BY``
give exactly one row (``COUNT()`` of nothing is 0; ``MIN``/``MAX``/``AVG`` of nothing are left out).
Rows come in the order of the documents given (the backend sorts twins by id); groups in order of first
appearance. Paging is by offset: a continuation token names the query it belongs to, so a token given
with another query is refused instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from edgegen.local.hubstandin.query.ast import Aggregate, Path, Query, SelectItem, Source, TargetCondition
from edgegen.local.hubstandin.query.errors import QueryError
from edgegen.local.hubstandin.query.evaluate import Doc, compile_expr, lookup, resolve_parts
from edgegen.local.hubstandin.query.functions import is_number
from edgegen.local.hubstandin.query.parser import parse_query, parse_target
from edgegen.routing.values import ABSENT

__all__ = ["CompiledQuery", "Page", "Target", "compile_query", "compile_target", "page_rows"]

MAX_PAGE = 1000
DEFAULT_PAGE = 100


def _selector(where: Callable[[Doc], Any] | None) -> Callable[[Doc], bool]:
    if where is None:
        return lambda doc: True
    return lambda doc: where(doc) is True


@dataclass(frozen=True)
class Target:
    """A compiled ``targetCondition``: which collection it looks at and whether a twin matches."""

    text: str
    source: Source
    matches: Callable[[Doc], bool]


def compile_target(text: str) -> Target:
    parsed: TargetCondition = parse_target(text)
    if parsed.source is Source.JOBS:
        raise QueryError("a target condition cannot look at devices.jobs", text=text, column=1,
                         hint="target devices (a condition) or modules (FROM devices.modules WHERE …)")
    if parsed.empty:
        return Target(text, parsed.source, lambda doc: False)
    where = compile_expr(parsed.where, text, parsed.source) if parsed.where is not None else None
    return Target(text, parsed.source, _selector(where))


def _name(item: SelectItem, unnamed: list[int]) -> str:
    if item.alias:
        return item.alias
    if isinstance(item.value, Path):
        return item.value.parts[-1]
    unnamed[0] += 1
    return f"${unnamed[0]}"


def _aggregate(func: str, values: list[Any]) -> Any:
    if func == "COUNT":
        return len(values)
    nums = [v for v in values if is_number(v)]
    if func == "SUM":
        return sum(nums)
    if not nums:
        return ABSENT
    if func == "AVG":
        return sum(nums) / len(nums)
    return min(nums) if func == "MIN" else max(nums)


@dataclass(frozen=True)
class CompiledQuery:
    text: str
    query: Query
    where: Callable[[Doc], bool]
    names: tuple[str, ...]  # the output key of each select item

    @property
    def source(self) -> Source:
        return self.query.source

    @property
    def item_type(self) -> str:
        """``x-ms-item-type``: whole twins, or raw JSON rows."""
        return "Twin" if self.query.star else "Raw"

    def select(self, docs: Iterable[Doc]) -> list[Doc]:
        return [d for d in docs if self.where(d)]

    def run(self, docs: Iterable[Doc]) -> list[Any]:
        """The result rows (before paging)."""
        chosen = self.select(docs)
        q = self.query
        if q.star:
            rows: list[Any] = chosen
        elif not q.aggregated:
            rows = [self._project(d) for d in chosen]
        else:
            rows = self._grouped(chosen)
        return rows[: q.top] if q.top is not None else rows

    def _paths(self, item: SelectItem) -> tuple[str, ...]:
        assert isinstance(item.value, Path)
        return resolve_parts(item.value.parts, self.source)

    def _project(self, doc: Doc) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, item in zip(self.names, self.query.items, strict=True):
            value = lookup(doc, self._paths(item))
            if value is not ABSENT:
                row[name] = value
        return row

    def _grouped(self, docs: list[Doc]) -> list[dict[str, Any]]:
        keys = [resolve_parts(p.parts, self.source) for p in self.query.group_by]
        groups: dict[str, list[Doc]] = {}
        for doc in docs:
            values = [lookup(doc, k) for k in keys]
            marker = json.dumps([None if v is ABSENT else [v] for v in values], sort_keys=True, default=str)
            groups.setdefault(marker, []).append(doc)
        if not keys:
            groups = {"": docs}
        rows = []
        for members in groups.values():
            row: dict[str, Any] = {}
            for name, item in zip(self.names, self.query.items, strict=True):
                if isinstance(item.value, Aggregate):
                    agg = item.value
                    parts = resolve_parts(agg.arg.parts, self.source) if agg.arg else ()
                    values = members if agg.arg is None else [lookup(m, parts) for m in members]
                    value = _aggregate(agg.func, [v for v in values if v is not ABSENT])
                else:
                    value = lookup(members[0], self._paths(item))
                if value is not ABSENT:
                    row[name] = value
            rows.append(row)
        return rows


def compile_query(text: str) -> CompiledQuery:
    q = parse_query(text)
    if q.source is Source.JOBS:
        raise QueryError("queries over devices.jobs are not supported by the local stand-in", text=text,
                         column=q.source_span.start + 1, hint="query devices or devices.modules")
    if q.group_by and q.star:
        raise QueryError("SELECT * cannot be grouped", text=text, column=q.span.start + 1,
                         hint="select the grouped properties and aggregates, e.g. "
                              "SELECT tags.site, COUNT() AS n FROM devices GROUP BY tags.site")
    if q.aggregated:
        grouped = {resolve_parts(p.parts, q.source) for p in q.group_by}
        for item in q.items:
            if isinstance(item.value, Path) and resolve_parts(item.value.parts, q.source) not in grouped:
                raise QueryError(f"{item.value.dotted} is neither aggregated nor in GROUP BY", text=text,
                                 column=item.span.start + 1,
                                 hint=f"add GROUP BY {item.value.dotted}, or wrap it in an aggregate")
    unnamed = [0]
    names = tuple(_name(i, unnamed) for i in q.items)
    seen: set[str] = set()
    for name, item in zip(names, q.items, strict=True):
        if name in seen:
            raise QueryError(f"two selected values are both named {name!r}", text=text, column=item.span.start + 1,
                             hint="give one of them another name with AS")
        seen.add(name)
    where = compile_expr(q.where, text, q.source) if q.where is not None else None
    for p in q.group_by:  # group paths compile like any path (checks nothing more, but keeps one way in)
        compile_expr(p, text, q.source)
    return CompiledQuery(text, q, _selector(where), names)


# ---- paging ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    items: list[Any]
    continuation: str | None


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_rows(text: str, rows: Sequence[Any], continuation: str | None, max_items: int | None) -> Page:
    """One page of ``rows``; ``continuation`` is the token the previous page returned (or None)."""
    size = DEFAULT_PAGE if max_items is None else max_items
    if size <= 0:
        raise QueryError(f"x-ms-max-item-count must be a positive number, not {size}")
    size = min(size, MAX_PAGE)
    offset = 0
    if continuation:
        try:
            doc = json.loads(base64.urlsafe_b64decode(continuation.encode() + b"=="))
            offset = int(doc["o"])
            ok = doc["q"] == _fingerprint(text) and offset >= 0
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise QueryError("the continuation token does not belong to this query",
                             hint="send the same query text with the x-ms-continuation the previous page gave")
    items = list(rows[offset: offset + size])
    nxt = offset + size
    token = None
    if nxt < len(rows):
        raw = json.dumps({"o": nxt, "q": _fingerprint(text)}, separators=(",", ":")).encode()
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return Page(items, token)
