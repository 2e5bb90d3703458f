"""One copy of the scoring core: the module folder's ``amlhost`` is what edgegen imports in a checkout, and what an
installed edgegen ships (the wheel's ``amlhost/`` is the module's, byte for byte), so the two cannot drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import amlhost
import pytest

from tests.modules.conftest import MODULES
from tests.support.net import free_port

CORE = MODULES / "inference" / "amlhost"


def _core_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_edgegen_imports_the_module_folders_core() -> None:
    assert Path(amlhost.__file__).resolve().parent == CORE.resolve()


@pytest.mark.process
@pytest.mark.slow
def test_wheel_ships_the_same_core_and_edgegen_serve_runs_from_it(repo_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"  # a clean copy: setuptools' build/ in the checkout may hold files removed since
    for name in ("edgegen", "modules/inference/amlhost"):
        shutil.copytree(repo_root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo_root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w",
                            str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("edgegen-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert _core_files(site / "amlhost") == _core_files(CORE)
    assert (site / "edgegen" / "cli" / "serve.py").is_file()

    script = tmp_path / "score.py"
    script.write_text("import json\ndef init(): pass\ndef run(raw):\n    return json.loads(raw)\n")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    code = ("import amlhost, edgegen, sys; print(amlhost.__file__, edgegen.__file__, flush=True); "
            "from edgegen.cli import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", str(script), "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        from tests.support.azmlinfsrv import wait_ready

        wait_ready(port, proc, "edgegen serve from the wheel", timeout=60)
        from tests.modules.azml_diff import Call, send

        reply = send(("127.0.0.1", port), Call("x", "POST", "/score", 200, b"[1, 2]",
                                               (("Content-Type", "application/json"),)))
        assert reply.status == 200 and reply.body == b"[1, 2]"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    first = output.splitlines()[0].split()
    assert first[0].startswith(str(site)) and first[1].startswith(str(site)), output
