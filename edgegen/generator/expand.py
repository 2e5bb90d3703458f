"""Variable expansion on a template's raw text, as iotedgedev does it, but with positions.

iotedgedev runs ``os.path.expandvars`` over the whole text before parsing: ``$NAME`` and ``${NAME}`` are
replaced when ``NAME`` is set, and silently left in place otherwise. ``expand`` does the same replacement
(same pattern, same left-to-right scan) and also records every reference with its line and column, so that
the caller can turn the unresolved ones into errors, and map a position in the expanded text back to the
source (for JSON errors).

Never variables: ``$edgeAgent``, ``$edgeHub``, ``$upstream`` and ``$schema-...`` (``$schema-template``,
``$schema-version``) are left alone even if the environment happens to define ``edgeAgent`` or ``schema``.
Names that edgeHub's route language uses for system properties (``$body``, ``$connectionModuleId``, ...) and
names starting with a digit are still replaced when set (as iotedgedev would) but are not reported as unresolved.
Placeholders (``${MODULES.x}``, ``${MODULEDIR<...>}``, ``${MODELS.x}``) are not reported here: they are resolved
later.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["NEVER_VARIABLES", "ROUTE_NAMES", "Expansion", "Reference", "expand", "line_col"]

# posixpath.expandvars' pattern
_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)

NEVER_VARIABLES = frozenset({"edgeAgent", "edgeHub", "upstream"})
ROUTE_NAMES = frozenset({
    "body", "contentType", "contentEncoding", "messageId", "correlationId", "userId", "to", "ack",
    "expiryTimeUtc", "absoluteExpiryTime", "creationTimeUtc", "enqueuedTime", "connectionDeviceId",
    "connectionModuleId", "connectionAuthMethod", "connectionDeviceGenerationId", "outputName", "interfaceId",
    "messageSchema", "dt-dataschema", "dt-subject", "version", "metadata", "twin",
})


@dataclass(frozen=True)
class Reference:
    """One ``$NAME``/``${NAME}`` occurrence in the source text."""

    name: str
    raw: str  # the text as written, e.g. "${TTL}"
    offset: int  # in the source text
    line: int  # 1-based
    column: int  # 1-based
    resolved: bool

    @property
    def is_placeholder(self) -> bool:
        return self.name.startswith(("MODULES.", "MODULEDIR<", "MODELS."))


@dataclass
class Expansion:
    source: str
    text: str
    references: list[Reference]
    # (start in text, start in source, length) of every stretch copied from the source unchanged
    _copied: list[tuple[int, int, int]] = field(default_factory=list, repr=False)
    # (start in text, source offset of the reference) for every substituted value
    _substituted: list[tuple[int, int]] = field(default_factory=list, repr=False)

    @property
    def unresolved(self) -> list[Reference]:
        """References left in place that look like real variables (not placeholders, not route names)."""
        return [r for r in self.references if not r.resolved and _reportable(r.name)]

    def source_offset(self, offset: int) -> int:
        """Map an offset in the expanded text back to the source text."""
        starts = [c[0] for c in self._copied]
        i = bisect.bisect_right(starts, offset) - 1
        if i >= 0:
            out_start, src_start, length = self._copied[i]
            if offset < out_start + length:
                return src_start + (offset - out_start)
        subs = [s[0] for s in self._substituted]
        j = bisect.bisect_right(subs, offset) - 1
        if j >= 0:
            return self._substituted[j][1]
        return min(offset, len(self.source))


def _reportable(name: str) -> bool:
    if name.startswith(("MODULES.", "MODULEDIR<", "MODELS.")):
        return False
    return not (name in ROUTE_NAMES or name[:1].isdigit())


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``offset`` in ``text``."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    line = bisect.bisect_right(starts, offset)
    return line, offset - starts[line - 1] + 1


def expand(text: str, env: Mapping[str, str]) -> Expansion:
    """Expand ``$NAME``/``${NAME}`` from ``env`` exactly like ``os.path.expandvars`` (minus the never-variables)."""
    if "$" not in text:
        return Expansion(text, text, [], [(0, 0, len(text))], [])
    out: list[str] = []
    refs: list[Reference] = []
    copied: list[tuple[int, int, int]] = []
    substituted: list[tuple[int, int]] = []
    line_starts: list[int] | None = None
    out_len = 0
    pos = 0  # source position copied up to
    i = 0
    while True:
        m = _VAR.search(text, i)
        if not m:
            break
        i, j = m.span(0)
        name = m.group(1)
        braced = name.startswith("{") and name.endswith("}")
        if braced:
            name = name[1:-1]
        elif name in NEVER_VARIABLES or (name == "schema" and text.startswith("-", j)):
            i = j
            continue
        if line_starts is None:
            line_starts = [0] + [lm.end() for lm in re.finditer("\n", text)]
        line = bisect.bisect_right(line_starts, i)
        column = i - line_starts[line - 1] + 1
        value = env.get(name)
        refs.append(Reference(name, m.group(0), i, line, column, value is not None))
        if value is None:
            i = j
            continue
        if i > pos:
            copied.append((out_len, pos, i - pos))
            out.append(text[pos:i])
            out_len += i - pos
        substituted.append((out_len, i))
        out.append(value)
        out_len += len(value)
        pos = i = j
    if pos < len(text):
        copied.append((out_len, pos, len(text) - pos))
        out.append(text[pos:])
    return Expansion(text, "".join(out), refs, copied, substituted)
