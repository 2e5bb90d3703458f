"""Fixtures shared across test areas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import profiles  # noqa: F401  (registers and loads the Hypothesis profile first)
from tests.support.cli import CliRunner, make_runner

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = REPO / "tests" / "conformance"  # upstream vectors and fixtures, copied with provenance (README.md)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """tests/conformance: edgeHub's routing vectors, iotedgedev's fixtures, the official schemas and payloads."""
    return CONFORMANCE


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``cli(["genconfig", "--output", "json"])`` runs edgegen in process: a CliResult (code, out, err)."""
    return make_runner(capsys)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests (``@pytest.mark.soak``) run only with ``EDGEGEN_SOAK=1``: minutes each, not for every CI run."""
    if os.environ.get("EDGEGEN_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="a soak test: set EDGEGEN_SOAK=1 to run it (minutes; not part of make test)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
