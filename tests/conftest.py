"""Fixtures shared across test areas."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = REPO / "tests" / "conformance"  # upstream vectors and fixtures, copied with provenance (README.md)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """tests/conformance: edgeHub's routing vectors, iotedgedev's fixtures, the official schemas and payloads."""
    return CONFORMANCE
