"""Findings as text (file:line:col, the source line with a caret, the hint) or as a JSON-able report."""

from __future__ import annotations

from typing import Any

from edgegen.generator.validation.findings import ERROR, INFO, SEVERITIES, WARNING, Finding

__all__ = ["render_finding", "summary", "to_json", "to_text"]

_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        counts[f.severity] += 1
    return counts


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.line or 0, f.column or 0))


def render_finding(f: Finding) -> str:
    """``Finding.render()``: file:line:col, severity, message, JSON path, the source line with a caret, the hint."""
    return f.render()


def to_text(file: str, findings: list[Finding]) -> str:
    counts = summary(findings)
    parts = [render_finding(f) for f in _sorted(findings)]
    verdict = "invalid" if counts[ERROR] else "valid"
    parts.append(
        f"{file}: {verdict} ({counts[ERROR]} error(s), {counts[WARNING]} warning(s), {counts[INFO]} info)"
    )
    return "\n\n".join(parts)


def to_json(file: str, findings: list[Finding]) -> dict[str, Any]:
    counts = summary(findings)
    return {
        "file": file,
        "valid": counts[ERROR] == 0,
        "counts": counts,
        "findings": [f.to_dict() for f in _sorted(findings)],
    }
