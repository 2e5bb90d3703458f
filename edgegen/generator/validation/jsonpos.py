"""Map JSON paths to line:column positions in the source text, and parse JSON with positioned errors.

``SourceMap(text)`` walks the text once and remembers where each value starts; object members are located
at their key (that is where a reader looks), array items at the value. Columns count characters, 1-based.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from edgegen.common.safeload import InputError, loads_json
from edgegen.generator.validation.findings import ManifestError, Segment

__all__ = ["SourceMap", "parse_json_text", "resolve_path"]

_WS = " \t\r\n"
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


class SourceMap:
    """Positions of every value of a JSON document, keyed by its path segments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self._pos: dict[tuple[Segment, ...], int] = {}
        self.duplicates: list[tuple[tuple[Segment, ...], int]] = []  # (path, offset of the later key)
        try:
            end = self._value(self._skip(0), ())
            self._ok = self._skip(end) == len(text)
        except (IndexError, ValueError):
            self._ok = False

    # -- public -------------------------------------------------------------------------------------
    def position(self, pointer: tuple[Segment, ...]) -> tuple[int, int] | None:
        """(line, column) of the nearest located ancestor-or-self of ``pointer``; None if nothing is known."""
        ptr = tuple(pointer)
        while True:
            if ptr in self._pos:
                return self.line_col(self._pos[ptr])
            if not ptr:
                return None
            ptr = ptr[:-1]

    def exact(self, pointer: tuple[Segment, ...]) -> tuple[int, int] | None:
        off = self._pos.get(tuple(pointer))
        return None if off is None else self.line_col(off)

    def line_col(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_left(self._newlines, offset)
        start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, offset - start + 1

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""

    # -- scanner ------------------------------------------------------------------------------------
    def _skip(self, i: int) -> int:
        n = len(self.text)
        while i < n and self.text[i] in _WS:
            i += 1
        return i

    def _value(self, i: int, ptr: tuple[Segment, ...]) -> int:
        self._pos.setdefault(ptr, i)
        ch = self.text[i]
        if ch == "{":
            return self._object(i + 1, ptr)
        if ch == "[":
            return self._array(i + 1, ptr)
        if ch == '"':
            return int(scanstring(self.text, i + 1)[1])
        for lit in ("true", "false", "null"):
            if self.text.startswith(lit, i):
                return i + len(lit)
        m = _NUMBER.match(self.text, i)
        if not m:
            raise ValueError(f"unexpected {ch!r} at {i}")
        return m.end()

    def _object(self, i: int, ptr: tuple[Segment, ...]) -> int:
        i = self._skip(i)
        if self.text[i] == "}":
            return i + 1
        while True:
            key_at = i
            key, i = scanstring(self.text, i + 1)
            i = self._skip(i)
            if self.text[i] != ":":
                raise ValueError("':' expected")
            child = (*ptr, key)
            # a later duplicate key wins in json.loads: point at the last one
            if child in self._pos:
                self.duplicates.append((child, key_at))
            self._pos[child] = key_at
            i = self._value(self._skip(i + 1), child)
            i = self._skip(i)
            if self.text[i] == "}":
                return i + 1
            if self.text[i] != ",":
                raise ValueError("',' expected")
            i = self._skip(i + 1)

    def _array(self, i: int, ptr: tuple[Segment, ...]) -> int:
        i = self._skip(i)
        if self.text[i] == "]":
            return i + 1
        index = 0
        while True:
            i = self._value(i, (*ptr, index))
            index += 1
            i = self._skip(i)
            if self.text[i] == "]":
                return i + 1
            if self.text[i] != ",":
                raise ValueError("',' expected")
            i = self._skip(i + 1)


def parse_json_text(text: str, file: str | None = None) -> Any:
    """JSON ``text`` read safely (``edgegen.common.safeload``): syntax errors, nesting deeper than 100 levels and
    lone surrogates become a ManifestError with file:line:col and the offending line."""
    try:
        return loads_json(text, file=file, what="the manifest")
    except InputError as exc:
        hint = exc.hint
        if exc.kind == "syntax" and ("${" in text or re.search(r":\s*\$[A-Za-z_]", text)):
            hint = f"{hint}; if this is a template with unquoted placeholders, render it with `edgegen genconfig` first"
        raise ManifestError(exc.message, location=exc.location, hint=hint) from None


def resolve_path(doc: Any, path: str) -> tuple[Segment, ...] | None:
    """Turn a dotted path (keys may contain dots, indices as ``[i]``) back into segments for ``doc``.

    Greedy over the actual keys: at each level the longest key that matches the rest of the path wins.
    """
    out: list[Segment] = []
    node = doc
    rest = path
    while rest:
        m = re.match(r"\[(\d+)\]", rest)
        if m and isinstance(node, list):
            idx = int(m.group(1))
            if idx >= len(node):
                return None
            out.append(idx)
            node = node[idx]
            rest = rest[m.end():].removeprefix(".")
            continue
        if not isinstance(node, Mapping):
            return None
        match = None
        for key in sorted((k for k in node if isinstance(k, str)), key=len, reverse=True):
            if rest == key or rest.startswith(key + ".") or rest.startswith(key + "["):
                match = key
                break
        if match is None:
            return None
        out.append(match)
        node = node[match]
        rest = rest[len(match):].removeprefix(".")
    return tuple(out)
