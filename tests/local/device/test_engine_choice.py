"""--engine auto|docker|process: which runtime the device picks, and what it says."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from edgegen.local.containers import choose_engine, short_socket_dir
from edgegen.local.errors import DeviceError


def test_choice_without_an_engine(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    assert choose_engine("process", env).kind == "process"
    auto = choose_engine("auto", env)
    assert auto.kind == "process" and auto.engine is None
    assert auto.reason.startswith("modules run as processes: ") and "no-engine.sock" in auto.reason
    with pytest.raises(DeviceError) as err:
        choose_engine("docker", env)
    assert "--engine docker" in err.value.message and "DOCKER_HOST" in (err.value.hint or "")
    with pytest.raises(DeviceError):
        choose_engine("kubernetes", env)


def test_the_workload_socket_folder_is_the_same_for_the_same_state(tmp_path: Path) -> None:
    """Containers adopted after a crash keep their socket's path: the folder depends on the state directory only
    (a temp folder when its own path is too long for a unix socket, used only when it is this user's 0700 one)."""
    short = Path(tempfile.mkdtemp(prefix="w")) / "workload"
    deep = tmp_path / ("x" * 90) / "workload"
    folder = short_socket_dir(deep)
    try:
        assert short_socket_dir(short) == short and stat.S_IMODE(short.stat().st_mode) == 0o700
        assert folder == short_socket_dir(deep) != deep and len(str(folder)) < 70
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.getuid()
        assert short_socket_dir(tmp_path / ("y" * 90) / "workload") not in (folder, deep)
        os.chmod(folder, 0o755)  # not private (another user could have made it): not used
        other = short_socket_dir(deep)
        assert other != folder
        other.rmdir()
    finally:
        shutil.rmtree(short.parent, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(short_socket_dir(tmp_path / ("y" * 90) / "workload"), ignore_errors=True)
