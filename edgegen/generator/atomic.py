"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A run that fails at any point before the rename leaves the previous file as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgegen.common.private import write_atomic

__all__ = ["write_text_atomic"]


def write_text_atomic(path: Path | str, text: str, *, encoding: str = "utf-8", mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (parents created). The file gets ``mode`` when given (the temp file is
    0600 from creation, so a secret is never readable by others), else an existing file's mode is kept and a new one
    gets the umask's."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    return write_atomic(target, text.encode(encoding), mode=mode)
