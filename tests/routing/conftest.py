"""Routing tests: print how many conformance vectors of each shared file passed, at the end of every run."""

from __future__ import annotations

from collections import Counter
from typing import Any

# test function in test_conformance.py -> the shared vector file it replays
VECTOR_FILES = {
    "test_conditions": "conditions.json",
    "test_body_queries": "body_queries.json",
    "test_twin_change_includes": "twin_change_includes.json",
    "test_message_sources": "message_sources.json",
    "test_routes": "routes.json",
}
_counts: dict[str, Counter[str]] = {}


def pytest_runtest_logreport(report: Any) -> None:
    if "test_conformance.py::" not in report.nodeid:
        return
    func = report.nodeid.split("::", 1)[1].split("[", 1)[0]
    name = VECTOR_FILES.get(func)
    if name is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _counts.setdefault(name, Counter())[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _counts:
        return
    terminalreporter.section("routing conformance (tests/conformance/routing)")
    for name in VECTOR_FILES.values():
        c = _counts.get(name)
        if c is None:
            continue
        total = sum(c.values())
        extra = "".join(f", {c[k]} {k}" for k in ("failed", "skipped") if c[k])
        terminalreporter.write_line(f"{name:28s} {c['passed']:5d}/{total} passed{extra}")
