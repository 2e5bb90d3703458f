"""Wheels for an offline image build: ``pip`` on the host fills ``<context>/wheels/`` from ``requirements.txt``.

A module whose build context has a ``wheels/`` folder and a ``requirements.txt`` gets the wheels of every
requirement (dependencies included) for the image's platform there before the build, so its Dockerfile can
``pip install --no-index --find-links`` them and the build needs no network (the repo's own modules do). The
folder's ``.edgegen-wheels`` stamp holds a hash of the requirements and the target; an unchanged module downloads
nothing again.

- When the target is this machine's (same CPU architecture and Python ``major.minor`` as the Dockerfile's
  ``python:X.Y`` base): ``pip wheel`` — binary wheels as published, source-only packages built into wheels here.
- Otherwise: ``pip download --only-binary=:all: --platform manylinux… --python-version X.Y`` — every requirement
  must then publish a wheel for that platform, or the build is told which one does not.
"""

from __future__ import annotations

import hashlib
import platform as host_platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import Location
from edgegen.images.errors import ImageError

__all__ = ["WheelsResult", "prepare_wheels", "target_of"]

STAMP = ".edgegen-wheels"
_ARCH = {"amd64": "x86_64", "arm64v8": "aarch64", "arm32v7": "armv7l"}
_FROM_PYTHON = re.compile(r"^\s*FROM\s+(?:--\S+\s+)?\S*python:(\d+)\.(\d+)", re.I | re.M)


@dataclass(frozen=True)
class WheelsResult:
    folder: Path
    count: int
    downloaded: bool  # False: the stamp said they were already there
    how: str


def target_of(platform: str, dockerfile: Path) -> tuple[str, str]:
    """(CPU architecture, Python "X.Y") an image for ``platform`` built from ``dockerfile`` runs."""
    arch = _ARCH.get(platform.split(".", 1)[0], host_platform.machine())
    try:
        match = _FROM_PYTHON.search(dockerfile.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        match = None
    version = f"{match.group(1)}.{match.group(2)}" if match else f"{sys.version_info[0]}.{sys.version_info[1]}"
    return arch, version


def prepare_wheels(context: Path, platform: str, dockerfile: Path, *, python: str | None = None,
                   timeout: float = 900) -> WheelsResult | None:
    """Fill ``context/wheels`` for ``platform``; None when the context asks for no wheels."""
    folder = context / "wheels"
    requirements = context / "requirements.txt"
    if not folder.is_dir() or not requirements.is_file():
        return None
    python = python or sys.executable
    arch, version = target_of(platform, dockerfile)
    native = arch == host_platform.machine() and version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    key = hashlib.sha256(requirements.read_bytes() + f"|{arch}|{version}|{native}".encode()).hexdigest()
    stamp = folder / STAMP
    wheels = sorted(folder.glob("*.whl"))
    if stamp.is_file() and stamp.read_text().strip() == key and wheels:
        return WheelsResult(folder, len(wheels), False, "cached")
    for old in wheels:
        old.unlink()
    stamp.unlink(missing_ok=True)
    base = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    if native:
        cmd = [*base, "wheel", "-w", str(folder), "-r", str(requirements)]
        how = f"pip wheel (this machine is {arch}, Python {version})"
    else:
        cmd = [*base, "download", "-d", str(folder), "-r", str(requirements), "--only-binary=:all:",
               "--python-version", version, "--implementation", "cp",
               *[a for tag in (f"manylinux2014_{arch}", f"manylinux_2_17_{arch}", f"manylinux_2_28_{arch}",
                               f"musllinux_1_1_{arch}", f"linux_{arch}") for a in ("--platform", tag)]]
        how = f"pip download of binary wheels for {arch}, Python {version}"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ImageError(f"downloading the wheels of {requirements} took more than {timeout:.0f}s",
                         location=Location(file=str(requirements)), hint="check the package index is reachable") \
            from None
    if proc.returncode != 0:
        tail = "\n".join(f"  | {line}" for line in (proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ImageError(
            f"could not get the wheels of {requirements} ({how}):\n{tail}",
            location=Location(file=str(requirements)),
            hint="every requirement needs a wheel for the target platform; or build with --no-wheels so the image "
            "build installs from the package index itself",
        )
    stamp.write_text(key + "\n")
    return WheelsResult(folder, len(list(folder.glob("*.whl"))), True, how)
