"""What validation reports: findings (severity, JSON path, message, hint) and the area's errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edgegen.errors import EdgegenError, Location

__all__ = [
    "ERROR",
    "INFO",
    "SEVERITIES",
    "WARNING",
    "Finding",
    "ManifestError",
    "ValidationError",
    "format_path",
    "has_errors",
]

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

Segment = str | int


def format_path(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """Path segments as text: ``('modulesContent', '$edgeAgent', 'properties.desired', 'modules', 0)``
    becomes ``modulesContent.$edgeAgent.properties.desired.modules[0]``.

    Keys are joined with dots (keys such as ``properties.desired`` keep theirs); array indices become ``[i]``.
    """
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out


@dataclass(frozen=True)
class Finding:
    """One problem (or note) found in a manifest.

    ``path`` is the JSON path as text; ``pointer`` the same path as exact segments (keys may contain dots),
    used to find the position in the source. ``rule`` names the check (``schema``, ``route-syntax``, ...).
    """

    severity: str
    path: str
    message: str
    hint: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    rule: str | None = None
    pointer: tuple[Segment, ...] | None = field(default=None, compare=False, repr=False)
    source_line: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @classmethod
    def at(
        cls,
        severity: str,
        pointer: tuple[Segment, ...] | list[Segment],
        message: str,
        hint: str | None = None,
        *,
        rule: str | None = None,
    ) -> Finding:
        """A finding built from path segments (the usual way inside the validators)."""
        ptr = tuple(pointer)
        return cls(severity, format_path(ptr), message, hint, rule=rule, pointer=ptr)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def located(self, file: str | None, line: int | None = None, column: int | None = None,
                source_line: str | None = None) -> Finding:
        return replace(self, file=file, line=line, column=column, source_line=source_line)

    def location(self) -> Location:
        return Location(self.file, self.line, self.column, self.path or None, self.source_line)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("pointer")
        data.pop("source_line")
        return data

    def render(self) -> str:
        """``file:line:col: severity: message``, the JSON path, the source line with a caret, the hint."""
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
            where += ": "
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.path:
            lines.append(f"    at {self.path}")
        if self.source_line is not None and self.line is not None:
            text = self.source_line.rstrip("\r\n")
            lines.append(f"    | {text}")
            if self.column is not None:
                lines.append(f"    | {' ' * max(self.column - 1, 0)}^")
        if self.hint:
            hint_lines = self.hint.split("\n")
            lines.append(f"    hint: {hint_lines[0]}")
            lines.extend(f"          {h}" for h in hint_lines[1:])
        return "\n".join(lines)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)


class ManifestError(EdgegenError):
    """A manifest that cannot be read at all (not JSON, not an object)."""


class ValidationError(EdgegenError):
    """Raised by callers that turn error findings into a failure (``genconfig --fail-on-validation-error``)."""

    def __init__(self, findings: list[Finding], *, file: str | None = None) -> None:
        errors = [f for f in findings if f.is_error]
        first = errors[0] if errors else (findings[0] if findings else None)
        message = f"deployment manifest validation failed: {len(errors)} error(s)"
        if first is not None:
            message += f"; first: {first.message}"
        location = first.location() if first is not None else Location(file=file)
        super().__init__(message, location=location, hint=first.hint if first else None)
        self.findings = findings
