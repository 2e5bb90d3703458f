"""--engine auto|docker|process: which runtime the device picks, and what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.local.containers import choose_engine
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
