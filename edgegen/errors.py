"""The one error base every area derives from.

An error a person can act on says *where* (file, line, column, or a JSON path), *what* went wrong and
*what to do* (the hint). The CLI prints ``render()`` and exits 1; nothing below the CLI prints.

Errors keep their type across boundaries: a caller that knows more about *where* relocates the error with
``raise exc.at(file=...)`` and adds context with ``exc.add_note(...)`` (Python's own notes, rendered after the
headline); it never catches ``Exception`` to build a new error from the old one's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

__all__ = ["EdgegenError", "Location"]


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file position, a JSON path, or both."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    json_path: str | None = None
    source_line: str | None = field(default=None, compare=False)

    def describe(self) -> str:
        parts = []
        if self.file:
            pos = self.file
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            parts.append(pos)
        if self.json_path:
            parts.append(self.json_path)
        return " at ".join(parts) if len(parts) == 2 else (parts[0] if parts else "")

    def caret(self) -> str:
        """The offending source line with a caret under the column, or '' when unknown."""
        if self.source_line is None:
            return ""
        text = self.source_line.rstrip("\r\n")
        if self.column is None:
            return f"    {text}"
        return f"    {text}\n    {' ' * max(self.column - 1, 0)}^"


class EdgegenError(Exception):
    """Base of every user-facing error. Subclass per area (RenderError, RouteError, ...)."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def render(self) -> str:
        lines = []
        where = self.location.describe() if self.location else ""
        what = self._headline()
        lines.append(f"{where}: {what}" if where else what)
        caret = self.location.caret() if self.location else ""
        if caret:
            lines.append(caret)
        lines.extend(self.notes)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def at(self, where: Location | str | None = None, /, *, file: str | None = None, line: int | None = None,
           column: int | None = None, json_path: str | None = None, source_line: str | None = None) -> Self:
        """Relocate this error, keeping its type, message, hint and attributes; returns it (``raise exc.at(...)``).

        ``where`` replaces the whole location (a Location, or a file name); the keywords then set single parts,
        keeping the others. A column without a new line is dropped when the line changes."""
        base = Location(file=where) if isinstance(where, str) else (where or self.location or Location())
        parts: dict[str, object] = {k: v for k, v in (("file", file), ("line", line), ("column", column),
                                                     ("json_path", json_path), ("source_line", source_line))
                                    if v is not None}
        if "line" in parts and parts["line"] != base.line:
            parts.setdefault("column", None)
            parts.setdefault("source_line", None)
        self.location = replace(base, **parts)  # type: ignore[arg-type]
        return self

    @property
    def notes(self) -> list[str]:
        """Context added on the way out (``add_note``), oldest first."""
        return list(getattr(self, "__notes__", ()))

    def _headline(self) -> str:
        """The first line after the location; subclasses may prefix it (RouteError adds the column)."""
        return self.message

    def to_dict(self) -> dict[str, object]:
        loc = self.location or Location()
        return {
            "error": type(self).__name__,
            "message": self.message,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "path": loc.json_path,
            "hint": self.hint,
            **({"notes": self.notes} if self.notes else {}),
        }

    def __str__(self) -> str:
        return self.render()
