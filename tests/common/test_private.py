"""The private-file primitives: 0600 files and 0700 folders from creation, whatever the umask; SQLite's own files
too; looser modes left by older versions repaired with one warning line per path that names no secret."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegen.common.private import (
    open_private_append,
    open_private_sqlite,
    private_dir,
    private_tree,
    repair_private,
    write_private,
)

SECRET = "SharedAccessKey=c2VjcmV0LWtleS1ub3Qtc2hvd24="


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077, 0o277])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_private_dir_is_0700_with_its_missing_parents(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "a" / "b" / "state"
    before = mode(tmp_path)
    assert private_dir(target) == target
    for folder in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert mode(folder) == 0o700, folder
    assert mode(tmp_path) == before  # an existing parent is not ours to change
    private_dir(target)  # again: nothing to do
    assert mode(target) == 0o700


def test_write_private_is_0600_from_creation(tmp_path: Path, umask: int) -> None:
    """The temp file is created 0600 before a byte is written: watched from another thread during many writes,
    no file in the folder is ever seen with a mode that lets the group or others in."""
    folder = private_dir(tmp_path / "s")
    os.chmod(folder, 0o755)  # so that only the files' own modes protect them while we watch
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for entry in os.scandir(folder):
                with contextlib.suppress(FileNotFoundError):
                    seen.add(stat.S_IMODE(entry.stat().st_mode))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n in range(300):
            write_private(folder / "keys.json", f'{{"n": {n}, "key": "{SECRET}"}}', fsync=False,
                          private_parent=False)
    finally:
        done.set()
        watcher.join()
    assert seen and all(m & 0o077 == 0 for m in seen), sorted(oct(m) for m in seen)
    assert mode(folder / "keys.json") == 0o600
    assert (folder / "keys.json").read_text() == f'{{"n": 299, "key": "{SECRET}"}}'
    assert [p.name for p in folder.iterdir()] == ["keys.json"]  # no temp file left


def test_write_private_makes_its_folder_private_unless_told(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "manifests"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    write_private(shared / "deployment.json", b"{}", private_parent=False)
    assert mode(shared) == 0o755 and mode(shared / "deployment.json") == 0o600
    fresh = tmp_path / "new" / "config"
    write_private(fresh / "deployment.json", b"{}", private_parent=False)
    assert mode(fresh) == 0o700  # a folder we make is private
    with caplog.at_level(logging.WARNING, logger="edgegen.common.private"):
        write_private(shared / "deployment.json", b"{}")
    assert mode(shared) == 0o700
    assert [r.getMessage() for r in caplog.records] == [f"{shared} was mode 0755 (readable by others); "
                                                        "repaired to 0700"]


def test_sqlite_file_and_its_siblings_are_0600(tmp_path: Path, umask: int) -> None:
    db_path = tmp_path / "state" / "hub.sqlite"
    db = open_private_sqlite(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE keys (k TEXT)")
        db.execute("INSERT INTO keys VALUES (?)", (SECRET,))
        made = sorted(p.name for p in db_path.parent.iterdir())
        assert made == ["hub.sqlite", "hub.sqlite-shm", "hub.sqlite-wal"]
        assert {name: mode(db_path.parent / name) for name in made} == dict.fromkeys(made, 0o600)
        assert mode(db_path.parent) == 0o700
    finally:
        db.close()


def test_sqlite_rollback_journal_is_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        db = open_private_sqlite(tmp_path / "s.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=PERSIST")  # keeps the -journal file after the transaction
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES ('x')")
        db.close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "s.sqlite-journal") == 0o600


def test_older_loose_modes_are_repaired_with_one_line_each(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "hub"
        state.mkdir()
        import sqlite3

        db = sqlite3.connect(state / "hub.sqlite", isolation_level=None)  # as an older version made it
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE keys (k TEXT)")
        db.execute("INSERT INTO keys VALUES (?)", (SECRET,))
        (state / "hub.json").write_text(SECRET)
        assert mode(state) == 0o755 and mode(state / "hub.sqlite-wal") == 0o644
        with caplog.at_level(logging.WARNING, logger="edgegen.common.private"):
            private_dir(state)
            repair_private(state / "hub.json")
            open_private_sqlite(state / "hub.sqlite").close()
            repair_private(state / "hub.json")  # already repaired: no second line
        db.close()
    finally:
        os.umask(old)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"{state} was mode 0755 (readable by others); repaired to 0700",
                     f"{state / 'hub.json'} was mode 0644 (readable by others); repaired to 0600",
                     f"{state / 'hub.sqlite'} was mode 0644 (readable by others); repaired to 0600",
                     f"{state / 'hub.sqlite-wal'} was mode 0644 (readable by others); repaired to 0600",
                     f"{state / 'hub.sqlite-shm'} was mode 0644 (readable by others); repaired to 0600"]
    assert not any(SECRET in line or "c2Vj" in line for line in lines)
    assert all(mode(p) == 0o600 for p in state.iterdir())


def test_a_file_in_the_way_of_a_private_dir_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        private_dir(tmp_path / "state")


def test_private_tree_repairs_a_state_folder_but_not_code_or_certificates(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What a device or hub does at start with a state folder an older version left open."""
    old = os.umask(0o022)
    try:
        state = tmp_path / "device"
        for rel in ("twins.json", "logs/sensor.log", "certs/ca.key.pem", "certs/ca.pem", "run/m.json",
                    "venvs/m/bin/python"):
            (state / rel).parent.mkdir(parents=True, exist_ok=True)
            (state / rel).write_text(SECRET)
        os.chmod(state / "venvs/m/bin/python", 0o755)
    finally:
        os.umask(old)
    with caplog.at_level(logging.WARNING, logger="edgegen.common.private"):
        private_tree(state, skip=("venvs",))
    repaired = sorted(r.getMessage().split(" was mode")[0] for r in caplog.records)
    assert repaired == sorted(str(state / rel) for rel in (
        "", "twins.json", "logs", "logs/sensor.log", "certs", "certs/ca.key.pem", "run", "run/m.json"))
    assert mode(state / "certs/ca.pem") == 0o644  # a certificate is public
    assert mode(state / "venvs/m/bin/python") == 0o755  # code, not a secret
    assert all(mode(state / rel) == 0o600 for rel in ("twins.json", "logs/sensor.log", "certs/ca.key.pem"))


def test_open_private_append_creates_0600_and_appends(tmp_path: Path, umask: int) -> None:
    for n in range(2):
        with open_private_append(tmp_path / "m.log") as fh:
            fh.write(f"line {n}\n".encode())
    assert mode(tmp_path / "m.log") == 0o600
    assert (tmp_path / "m.log").read_text() == "line 0\nline 1\n"


def test_every_repair_gets_its_line_through_the_clis_repeat_filter(tmp_path: Path) -> None:
    """The CLI puts a repeat filter on its log handlers (edgegen.common.lograte, at most 5 lines of a kind per 10 s):
    each repaired path is still one line of its own."""
    import io

    from edgegen.common import lograte

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chmod(state, 0o700)
    for n in range(8):
        (state / f"f{n}.json").write_text("{}")
        os.chmod(state / f"f{n}.json", 0o644)
    stream = io.StringIO()
    logger = logging.getLogger("edgegen.common.private")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        lograte.install(logger)
        private_tree(state)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{state / f'f{n}.json'} was mode 0644 (readable by others); repaired to 0600"
                                   for n in range(8))
