"""The query language's one error type: a query or target condition that does not parse or type-check."""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = ["QueryError"]

DEFAULT_HINT = "queries look like: SELECT deviceId, tags.site AS site FROM devices WHERE tags.environment = 'prod'"


class QueryError(EdgegenError):
    """Carries the whole text and the 1-based column of the problem; ``render()`` draws a caret under it."""

    def __init__(self, message: str, *, text: str = "", column: int | None = None, hint: str | None = None) -> None:
        self.text = text
        self.column = column
        one_line = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        super().__init__(message, location=Location(column=column, source_line=one_line if text else None),
                         hint=hint or DEFAULT_HINT)

    def _headline(self) -> str:
        return f"column {self.column}: {self.message}" if self.column is not None else self.message
