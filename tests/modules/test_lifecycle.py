"""Every module exits non-zero with a clear log line when edgeHub cannot be reached (the restart policy retries)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgegen.common.certs import ensure_ca
from tests.modules.conftest import MODULES, module_env
from tests.support.net import free_loopback_address

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["sensor", "inference", "monitor"])
def test_exits_1_when_edgehub_is_unreachable(name: str, tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca")
    nobody = SimpleNamespace(host=free_loopback_address(), ca_file=ca.cert_path)  # nothing listens there
    proc = subprocess.run([sys.executable, str(MODULES / name / "main.py")], env=module_env(nobody, name),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot connect to edgeHub" in proc.stdout and "restart policy" in proc.stdout
