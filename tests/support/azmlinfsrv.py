"""Azure ML's inference server (azmlinfsrv) and our ``edgegen serve`` as processes, for the differential tests and
bench/score.py.

The peer lives in its own venv, ``.bench-venvs/azmlinfsrv``, installed by ``make peers`` from
``azmlinfsrv-requirements.txt`` (``install()`` does the same); ``.installed`` is written only when that succeeded.
azmlinfsrv hard-codes ``0.0.0.0`` (``constants.DEFAULT_HOST``, imported into ``amlserver``): it is started through its
own entry point with that constant set to a loopback address, nothing else changed, and ``listening_on`` lets a test
check where it really listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["PEER_VENV", "base_env", "install", "listening_on", "peer_python", "start_azmlinfsrv", "start_serve",
           "wait_ready"]

REPO = Path(__file__).resolve().parents[2]
PEER_VENV = REPO / ".bench-venvs" / "azmlinfsrv"
REQUIREMENTS = Path(__file__).with_name("azmlinfsrv-requirements.txt")
STAMP = PEER_VENV / ".installed"
LAUNCH = """import sys
import azureml_inference_server_http.amlserver as amlserver
amlserver.DEFAULT_HOST = sys.argv.pop(1)  # azmlinfsrv binds 0.0.0.0; keep it on loopback
amlserver.run()
"""
ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def peer_python() -> Path | None:
    """The peer venv's python when ``make peers`` installed it completely, else None."""
    python = PEER_VENV / "bin" / "python"
    return python if STAMP.is_file() and python.is_file() else None


def install() -> Path:
    """Create the peer venv when it is not complete (about a minute, from PyPI). Returns its python."""
    python = PEER_VENV / "bin" / "python"
    if peer_python() is None:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
        STAMP.write_text("")
    return python


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Only the basics from our environment (no SERVICE_NAME, AML_APP_ROOT … leaking in), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in ENV_KEYS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_azmlinfsrv(python: Path, script: Path, port: int, cwd: Path, log: Path, model_dir: Path | None = None,
                     host: str = "127.0.0.1", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    argv = [str(python), "-c", LAUNCH, host, "--entry_script", str(script), "--port", str(port)]
    if model_dir is not None:
        argv += ["--model_dir", str(model_dir)]
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=cwd, env=env or base_env(), stdout=out, stderr=subprocess.STDOUT)


def start_serve(script: Path, port: int, cwd: Path, log: Path, model_dir: Path | None = None,
                host: str = "127.0.0.1", env: dict[str, str] | None = None,
                extra_args: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """``edgegen serve`` as a user runs it (the venv's console script)."""
    edgegen = Path(sys.executable).with_name("edgegen")
    argv = [str(edgegen)] if edgegen.is_file() else [sys.executable, "-c", "from edgegen.cli import main; main()"]
    argv += ["serve", str(script), "--port", str(port), "--address", host, *extra_args]
    if model_dir is not None:
        argv += ["--model-dir", str(model_dir)]
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=cwd, env=env or base_env(), stdout=out, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes], what: str, host: str = "127.0.0.1",
               timeout: float = 90.0) -> None:
    """Until ``GET /`` answers 200; raises if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not answer on {host}:{port} within {timeout:g} s")


def listening_on(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses with a TCP socket listening on ``port`` (Linux ``/proc/net/tcp*``)."""
    from tests.support.listeners import listening

    return {address for address, bound in listening().values() if bound == port}
