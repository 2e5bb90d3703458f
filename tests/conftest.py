"""Fixtures shared across test areas."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (conformance vectors and notes); tests that need it skip with a reason when absent."""
    if not (SHARED / "conformance").is_dir():
        pytest.skip(f"conformance vectors not found at {SHARED / 'conformance'} (the ../shared folder is absent)")
    return SHARED
