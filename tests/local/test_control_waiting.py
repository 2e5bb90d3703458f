"""`edgegen device status` on a hub-joined device that waits for its first deployment says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgegen.local.control import WAITING_FILE, ControlClient, mark_waiting
from edgegen.local.errors import DeviceError


def test_a_waiting_device_is_not_reported_as_absent(tmp_path: Path) -> None:
    mark_waiting(tmp_path, "cam-1", "127.0.0.1:8443")
    with pytest.raises(DeviceError) as info:
        ControlClient(tmp_path)
    assert "device 'cam-1' is joined to 127.0.0.1:8443 and waiting for its first deployment" in info.value.message
    assert "edgegen deploy -d cam-1" in (info.value.hint or "")


@pytest.mark.process
def test_a_leftover_marker_of_a_gone_process_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    (tmp_path / WAITING_FILE).write_text(json.dumps({"deviceId": "cam-1", "hub": "h", "pid": int(gone.stdout)}))
    with pytest.raises(DeviceError) as info:
        ControlClient(tmp_path)
    assert "no device is running" in info.value.message
