"""Private files: secrets (keys, tokens, passwords, deployment settings) are 0600 in 0700 folders from the moment
they exist, whatever the umask, and looser modes left by older versions are repaired with a warning.

- ``private_dir(path)``: the folder (and any missing parent) made 0700; an existing one looser than that is
  tightened (a warning names the path and the modes, never what is in it).
- ``write_private(path, data)``: atomic write; the temp file is created 0600 (``O_CREAT|O_EXCL``), so the content
  is never readable by others, not even for an instant, and the rename keeps that mode.
- ``open_private_sqlite(path)``: the database file is created 0600 *before* SQLite opens it; SQLite creates its
  ``-wal``, ``-shm`` and ``-journal`` files with the database file's mode (the unix VFS copies it), and leftovers
  of an older version are tightened.
- ``open_private_append(path)``: a log file opened for appending, created 0600 (module output may hold secrets).
- ``repair_private(path)``: tighten one existing file to 0600 (warning once), for files written by others.
- ``private_tree(root, skip)``: a state folder at start: the folder made (or tightened to) 0700, and every file and
  folder under it that the group or others may access tightened to 0600/0700 — one warning line per path — except
  the folders named in ``skip`` (venvs, models: code, not secrets) and certificates (``*.pem`` but not
  ``*.key.pem``: public).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # sqlite3 and secrets (hashlib) stay out of the CLI's start-up (genconfig writes through here)
    import sqlite3

__all__ = ["DIR_MODE", "FILE_MODE", "SQLITE_SIDECARS", "open_private_append", "open_private_sqlite", "private_dir",
           "private_tree", "repair_private", "write_atomic", "write_private"]

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def _tighten(path: Path, wanted: int, st: os.stat_result) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~wanted & 0o077 == 0:  # nothing for the group or others: leave the owner's bits alone
        return
    # one line per path, each its own message (not one template with arguments): the CLI's repeat filter
    # (edgegen.common.lograte) counts lines by template and would drop all but the first few repairs
    if st.st_uid != os.geteuid():
        log.warning(f"{path} is mode {mode:04o} and belongs to uid {st.st_uid}: not changing it "
                    "(others may read it)")
        return
    os.chmod(path, wanted)
    log.warning(f"{path} was mode {mode:04o} (readable by others); repaired to {wanted:04o}")


def repair_private(path: Path | str) -> None:
    """Tighten an existing file to 0600 (or a folder to 0700) when the group or others have any access."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return
    _tighten(p, DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE, st)


def private_dir(path: Path | str) -> Path:
    """Make ``path`` a 0700 folder: missing parents and itself are created 0700; an existing one is tightened."""
    p = Path(path)
    missing: list[Path] = []
    cur = p
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    made: set[Path] = set()
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)  # the umask can only take bits away: never looser than 0700
        except FileExistsError:  # made meanwhile by another process: checked below
            continue
        made.add(folder)
        if stat.S_IMODE(folder.stat().st_mode) != DIR_MODE:
            os.chmod(folder, DIR_MODE)  # a umask such as 0277 took the owner's own bits: give them back
    st = p.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(str(p))
    if p not in made:
        _tighten(p, DIR_MODE, st)
    return p


def private_tree(root: Path | str, skip: tuple[str, ...] = ()) -> Path:
    """``private_dir(root)``, then repair what an older version left readable under it (see the module doc)."""
    top = private_dir(root)
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here == top and d in skip)]
        for name in dirs:
            repair_private(here / name)
        for name in files:
            if name.endswith(".pem") and not name.endswith(".key.pem"):
                continue
            path = here / name
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):
                    _tighten(path, FILE_MODE, st)
    return top


def write_private(path: Path | str, data: str | bytes, *, fsync: bool = True, private_parent: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically, 0600 from creation. ``private_parent``: the folder is made (or
    tightened to) 0700 too; False leaves an existing folder's mode alone (a new one is still made 0700)."""
    target = Path(path)
    if private_parent or not target.parent.exists():
        private_dir(target.parent)
    return write_atomic(target, data, mode=FILE_MODE, fsync=fsync)


def write_atomic(path: Path | str, data: str | bytes, *, mode: int = FILE_MODE, fsync: bool = True) -> Path:
    """Write ``data`` (str: UTF-8) to ``path`` through a temp file in the same folder, created 0600 (``O_EXCL``)
    and given ``mode`` before a byte is written, then renamed over ``path``: a failure leaves the old file as it
    was. ``write_private`` is this with 0600 and a private folder; public files (manifests) pass their mode."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        os.fchmod(fd, mode)  # exactly this mode (the umask may have taken the owner's bits of 0600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def open_private_append(path: Path | str) -> BinaryIO:
    """``open(path, "ab")``, but a file it creates is 0600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    _exactly_0600_if_new(fd)
    return os.fdopen(fd, "ab")


def _exactly_0600_if_new(fd: int) -> None:
    """A file just created by ``os.open(..., 0o600)`` under a umask that took the owner's bits: give them back."""
    st = os.fstat(fd)
    if st.st_size == 0 and stat.S_IMODE(st.st_mode) != FILE_MODE and st.st_uid == os.geteuid():
        os.fchmod(fd, FILE_MODE)


def open_private_sqlite(path: Path | str, **connect: Any) -> sqlite3.Connection:
    """``sqlite3.connect(path, **connect)`` on a file created 0600 in a 0700 folder before SQLite opens it."""
    p = Path(path)
    private_dir(p.parent)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _exactly_0600_if_new(fd)
    finally:
        os.close(fd)
    for suffix in ("", *SQLITE_SIDECARS):
        repair_private(p.with_name(p.name + suffix))
    import sqlite3

    return sqlite3.connect(str(p), **connect)
