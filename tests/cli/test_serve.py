"""``edgegen serve``: a user's entry script over HTTP, no broker and no Azure; clear errors; Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modules.azml_diff import Call, send
from tests.support.azmlinfsrv import base_env, start_serve, wait_ready
from tests.support.cli import CliRunner
from tests.support.net import free_port

SCRIPT = """import json, os
def init():
    global model_dir
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
def run(raw_data):
    return {"input": json.loads(raw_data), "model_dir": model_dir}
"""


def test_missing_script_and_model_dir_are_explained(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, cli: CliRunner) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["serve"])
    assert code == 1 and "entry script score.py not found" in err and "hint:" in err
    (tmp_path / "score.py").write_text(SCRIPT)
    code, _, err = cli(["serve", "--model-dir", "nowhere"])
    assert code == 1 and "model folder nowhere not found" in err
    monkeypatch.setenv("MAX_REQUEST_BYTES", "lots")
    code, _, err = cli(["serve"])
    assert code == 1 and "MAX_REQUEST_BYTES='lots' is not a number" in err
    code, _, err = cli(["serve", "--port", "70000"])
    assert code == 2


@pytest.mark.process
@pytest.mark.integration
def test_serves_default_script_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(SCRIPT)
    (tmp_path / "model").mkdir()
    port = free_port()
    log = tmp_path / "serve.log"
    edgegen = Path(sys.executable).with_name("edgegen")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(edgegen), "serve", "--model-dir", "model", "--port", str(port)], cwd=tmp_path,
                                env=base_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc, "edgegen serve")
        reply = send(("127.0.0.1", port), Call("x", "POST", "/score", 200, b'{"a": 1}',
                                               (("Content-Type", "application/json"),)))
        assert reply.status == 200
        assert json.loads(reply.body) == {"input": {"a": 1}, "model_dir": str((tmp_path / "model").resolve())}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert f"serving score.py (plain run()) on http://127.0.0.1:{port}/score" in text
    assert "Traceback" not in text


@pytest.mark.process
@pytest.mark.integration
def test_init_failure_prints_the_traceback_and_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("def init():\n    raise FileNotFoundError('model.pkl is missing')\ndef run(x):\n    return x\n")
    proc = start_serve(script, free_port(), tmp_path, tmp_path / "serve.log")
    assert proc.wait(60) == 1
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback (most recent call last)" in text and 'broken.py", line 2, in init' in text
    assert "error: init() of broken.py failed: FileNotFoundError: model.pkl is missing" in text


@pytest.mark.process
@pytest.mark.integration
def test_busy_port_is_explained(tmp_path: Path) -> None:
    import socket

    (tmp_path / "score.py").write_text(SCRIPT)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_serve(tmp_path / "score.py", port, tmp_path, tmp_path / "serve.log")
        assert proc.wait(60) == 1
    text = (tmp_path / "serve.log").read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in text and "--port" in text and "Traceback" not in text
