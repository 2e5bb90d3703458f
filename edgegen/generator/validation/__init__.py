"""Offline validation of deployment manifests: our own JSON schemas plus semantic checks.

Public API::

    validate_manifest(manifest, *, file=None) -> list[Finding]   # pure: a parsed manifest in, findings out
    validate_text(text, *, file=None) -> list[Finding]           # parses, validates, adds file:line:col
    validate_file(path) -> list[Finding]                         # reads the file, then validate_text
    locate(findings, text, file=None) -> list[Finding]            # add positions to findings of a given text

Invalid JSON is reported as one error finding (rule ``json``) with file:line:col and the offending line.
``ValidationError`` wraps error findings for callers that must fail (``genconfig --fail-on-validation-error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from edgegen.common.safeload import InputError, read_text
from edgegen.generator.validation.findings import (
    ERROR,
    INFO,
    WARNING,
    Finding,
    ManifestError,
    ValidationError,
    format_path,
    has_errors,
)
from edgegen.generator.validation.jsonpos import SourceMap, parse_json_text, resolve_path
from edgegen.generator.validation.model import ManifestView

__all__ = [
    "ERROR",
    "INFO",
    "WARNING",
    "Finding",
    "ManifestError",
    "ValidationError",
    "format_path",
    "has_errors",
    "locate",
    "validate_file",
    "validate_manifest",
    "validate_text",
]


def validate_manifest(manifest: Mapping[str, Any], *, file: str | None = None,
                      messaging: Mapping[str, bool] | None = None) -> list[Finding]:
    """All findings for a parsed manifest (``{"modulesContent": …}`` or a deployment ``{"content": …}``).

    Findings come in document order of the checks: schema first, then semantic rules. ``file`` is only
    recorded on each finding (use ``validate_text`` / ``locate`` for line and column). ``messaging`` (module →
    whether its code uses edgeHub messaging, from ``edgegen.generator.messaging``) makes "no route to or from
    it" a warning for the modules that do; without it that is an info.
    """
    from edgegen.generator.validation import schema, semantic

    if not isinstance(manifest, Mapping):
        findings = [
            Finding.at(
                ERROR,
                (),
                f"a deployment manifest must be a JSON object, not {type(manifest).__name__}",
                'expected {"modulesContent": {"$edgeAgent": …, "$edgeHub": …}}',
                rule="structure",
            )
        ]
    else:
        view = ManifestView(manifest, messaging)
        if view.root is None:
            findings = [
                Finding.at(
                    ERROR,
                    (),
                    "no modulesContent found (neither at the top level nor under content)",
                    'a manifest looks like {"modulesContent": {"$edgeAgent": {"properties.desired": …}, '
                    '"$edgeHub": {"properties.desired": …}}}',
                    rule="structure",
                )
            ]
        else:
            findings = _dedupe(schema.check(view), semantic.check(view))
    if file is not None:
        findings = [f.located(file, f.line, f.column, f.source_line) for f in findings]
    return findings


def _dedupe(schema_findings: list[Finding], semantic_findings: list[Finding]) -> list[Finding]:
    """Schema findings first; a semantic finding at a path the schema already reported is dropped."""
    seen = {f.pointer for f in schema_findings if f.is_error}
    return [*schema_findings, *(f for f in semantic_findings if not (f.is_error and f.pointer in seen))]


def locate(findings: list[Finding], text: str, file: str | None = None,
           document: Any = None) -> list[Finding]:
    """Add ``file:line:col`` (and the source line) to findings whose JSON path can be found in ``text``."""
    return _locate(findings, SourceMap(text), file, document)


def _locate(findings: list[Finding], smap: SourceMap, file: str | None, document: Any) -> list[Finding]:
    out = []
    for f in findings:
        ptr = f.pointer
        if ptr is None and f.path and document is not None:
            ptr = resolve_path(document, f.path)
        pos = smap.position(ptr) if ptr is not None else None
        if pos is None:
            out.append(f.located(file or f.file, f.line, f.column, f.source_line))
        else:
            out.append(f.located(file or f.file, pos[0], pos[1], smap.line_text(pos[0])))
    return out


def validate_text(text: str, *, file: str | None = None) -> list[Finding]:
    """Parse ``text`` as JSON and validate it; findings carry file:line:col where the path is found."""
    try:
        manifest = parse_json_text(text, file)
    except ManifestError as exc:
        loc = exc.location
        assert loc is not None
        return [
            Finding(ERROR, "", exc.message, exc.hint, file=file, line=loc.line, column=loc.column,
                    rule="json", pointer=(), source_line=loc.source_line)
        ]
    smap = SourceMap(text)
    return [*_duplicate_keys(smap, file), *_locate(validate_manifest(manifest), smap, file, manifest)]


def _duplicate_keys(smap: SourceMap, file: str | None) -> list[Finding]:
    """JSON allows a key twice and keeps the last value silently; a manifest almost never means that."""
    out = []
    for ptr, offset in smap.duplicates:
        line, col = smap.line_col(offset)
        f = Finding.at(WARNING, ptr, f"duplicate key {ptr[-1]!r}: the earlier value is ignored",
                       "JSON keeps only the last of two equal keys; merge them or rename one", rule="duplicate-key")
        out.append(f.located(file, line, col, smap.line_text(line)))
    return out


def validate_file(path: str | PathLike[str]) -> list[Finding]:
    """Read a manifest file (UTF-8, BOM tolerated) and validate it."""
    try:
        text = read_text(path, what="manifest")
    except InputError as exc:
        hint = "check the path; pass a rendered manifest such as config/deployment.amd64.json"
        raise ManifestError(exc.message, location=exc.location, hint=hint if exc.kind == "read" else exc.hint) from None
    return validate_text(text, file=str(path))
