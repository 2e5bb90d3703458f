"""The generator's error types: one base (``GeneratorError``) under ``EdgegenError``.

Each carries a ``Location`` (file/line/column or JSON path) and a hint; the CLI prints ``render()``.
"""

from __future__ import annotations

from edgegen.errors import EdgegenError, Location

__all__ = ["GeneratorError", "Location", "RenderError", "ScaffoldError", "UnresolvedError"]


class GeneratorError(EdgegenError):
    """Base of every error raised by ``edgegen.generator``."""


class RenderError(GeneratorError):
    """A deployment template could not be rendered (bad JSON/YAML/Jinja, createOptions too big, ...)."""


class UnresolvedError(RenderError):
    """A variable or ``${MODULES...}`` placeholder resolved to nothing."""

    def __init__(self, message: str, *, name: str, location: Location | None = None, hint: str | None = None,
                 searched: tuple[str, ...] = ()) -> None:
        super().__init__(message, location=location, hint=hint)
        self.name = name
        self.searched = searched

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["name"] = self.name
        data["searched"] = list(self.searched)
        return data


class ScaffoldError(GeneratorError):
    """``edgegen new`` / ``edgegen add`` refused (bad name, module exists, template not editable, ...)."""
