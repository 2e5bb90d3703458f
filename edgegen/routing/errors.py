"""The routing area's one error type: a route or condition that cannot be parsed or compiled."""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = ["RouteError"]


class RouteError(EdgegenError):
    """A syntax, type or sink error in a route or condition, with the column it happened at.

    ``text`` is the whole route (or condition) as given, ``column`` 1-based, ``expected`` what the parser
    wanted there. ``render()`` shows the text with a caret under the column, then the hint.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        column: int | None = None,
        expected: str | None = None,
        hint: str | None = None,
        file: str | None = None,
        json_path: str | None = None,
    ) -> None:
        self.text = text
        self.column = column
        self.expected = expected
        if expected and not hint:
            hint = f"expected {expected}"
        line: int | None = 1 if file and column is not None else None
        location = Location(file=file, line=line, column=column, json_path=json_path,
                            source_line=_one_line(text) if text else None)
        super().__init__(message, location=location, hint=hint)

    def _headline(self) -> str:
        # Outside a file the caret line has no "file:line:col", so the column goes in front of the message.
        in_file = bool(self.location and self.location.file)
        col = f"column {self.column}: " if self.column is not None and not in_file else ""
        return f"{col}{self.message}"


def _one_line(text: str) -> str:
    # Routes live on one line in a manifest; newlines inside would break the caret, so show them as spaces.
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
