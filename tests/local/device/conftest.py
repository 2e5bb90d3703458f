"""Fixtures for device tests: one venv cache for the whole session (venvs take seconds to make)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module venvs shared by every device test; they see this interpreter's packages (--reuse-site-packages)."""
    return tmp_path_factory.mktemp("device-venvs")
