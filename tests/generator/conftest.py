"""Fixtures for generator tests: a writable copy of the iotedgedev fixtures with the upstream .env."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest


def _writable_copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR | (stat.S_IXUSR if p.is_dir() else 0))


@pytest.fixture
def iotedgedev_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "iotedgedev"


@pytest.fixture
def assets(iotedgedev_dir: Path, tmp_path: Path) -> Path:
    """tests/assets of iotedgedev, writable, with its CI dotenv (.env.tmp) as .env -- the upstream test set-up."""
    dst = tmp_path / "assets"
    _writable_copy(iotedgedev_dir / "assets", dst)
    shutil.copyfile(iotedgedev_dir / ".env.tmp", dst / ".env")
    (dst / ".env").chmod(0o644)
    shutil.copyfile(iotedgedev_dir / ".env.tmp", dst / "test_solution_shared_lib" / ".env")
    (dst / "test_solution_shared_lib" / ".env").chmod(0o644)
    return dst
