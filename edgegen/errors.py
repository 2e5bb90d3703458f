"""The one error base every area derives from.

An error a person can act on says *where* (file, line, column, or a JSON path), *what* went wrong and
*what to do* (the hint). The CLI prints ``render()`` and exits 1; nothing below the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

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
        }

    def __str__(self) -> str:
        return self.render()
