"""Profiling a script of known cost: the figures land within stated tolerances, the recommendation covers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.generator.createoptions import parse_deployment_config
from edgegen.models.errors import ModelError
from edgegen.models.profile import LevelResult, load_samples, recommend, run_profile, write_deployment_config

pytestmark = [pytest.mark.integration]

CPU_MS = 10.0  # CPU time each run() burns (thread CPU time: the same however busy the machine is)
BALLAST_MIB = 64  # memory init() keeps

KNOWN_COST = f'''
import json, time
ballast = None

def init():
    global ballast
    ballast = bytearray({BALLAST_MIB} * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: resident, not just reserved

def run(raw):
    start = time.thread_time()
    while time.thread_time() - start < {CPU_MS / 1000}:
        pass
    return {{"echo": json.loads(raw)}}
'''


@pytest.mark.parametrize("host", ["edgegen-serve", "builtin"])
def test_known_cost_script(tmp_path: Path, host: str) -> None:
    script = tmp_path / "score.py"
    script.write_text(KNOWN_COST)
    samples = [json.dumps({"i": i}).encode() for i in range(5)]
    result = run_profile(script, tmp_path, samples, env={}, models=[], concurrency=[1, 2], duration=1.5,
                         margin=0.25, host=host, workdir=tmp_path / "work")
    assert result.host == host
    assert [lv.concurrency for lv in result.levels] == [1, 2]
    for lv in result.levels:
        assert lv.errors == 0 and lv.requests > 10
        # stated tolerance: the CPU per request is the script's 10 ms plus at most 30 % + 3 ms of host overhead
        assert CPU_MS <= lv.cpu_ms_per_request <= CPU_MS * 1.3 + 3, lv
        assert lv.p50_ms >= CPU_MS * 0.95 and lv.p50_ms <= lv.p90_ms <= lv.p99_ms  # never faster than its CPU cost
        assert lv.throughput <= 1000 / CPU_MS * 1.05  # one worker: at most 100 requests/s
        # peak memory: the ballast plus an interpreter with aiohttp (under 150 MiB here)
        assert BALLAST_MIB * 1024**2 <= lv.peak_memory_bytes <= (BALLAST_MIB + 150) * 1024**2, lv
    # the recommendation holds: it covers every measured level with the margin it states
    assert result.cpu >= max(lv.cpu_cores for lv in result.levels) * 1.25 - 1e-9
    assert result.memory_in_gb * 1024**3 >= max(lv.peak_memory_bytes for lv in result.levels) * 1.25
    path = write_deployment_config(tmp_path / "deploymentconfig.json", result.cpu, result.memory_in_gb)
    limits = parse_deployment_config(path.read_text(), str(path))  # what genconfig turns into HostConfig
    assert limits.nano_cpus == round(result.cpu * 1e9) and limits.memory == round(result.memory_in_gb * 1024**3)


def test_recommend_rounds_up_with_margin() -> None:
    lv = LevelResult(1, 10, 0, 1.0, 10.0, 1, 1, 1, cpu_cores=0.41, cpu_ms_per_request=1, peak_memory_bytes=200 * 2**20)
    assert recommend([lv], 0.25) == (0.55, 0.25)  # 0.5125 -> 0.55 cores; 250 MiB -> 0.25 GB
    idle = LevelResult(1, 10, 0, 1.0, 10.0, 1, 1, 1, cpu_cores=0.0, cpu_ms_per_request=0, peak_memory_bytes=1)
    assert recommend([idle], 0.0) == (0.1, 0.1)  # floors


def test_existing_deployment_config_keeps_its_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "deploymentconfig.json"
    path.write_text(json.dumps({"computeType": "ACI", "containerResourceRequirements": {"gpu": 0}, "x": 1}))
    write_deployment_config(path, 0.5, 1.0)
    assert json.loads(path.read_text()) == {"computeType": "ACI", "x": 1,
                                            "containerResourceRequirements": {"gpu": 0, "cpu": 0.5, "memoryInGB": 1.0}}
    path.write_text("{oops")
    with pytest.raises(ModelError, match="invalid JSON"):
        write_deployment_config(path, 0.5, 1.0)


def test_failing_init_and_bad_samples_are_clear(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    script.write_text("def init():\n    raise RuntimeError('no model here')\ndef run(x):\n    return x\n")
    with pytest.raises(ModelError, match="exited with 1 before it was ready") as exc:
        run_profile(script, tmp_path, [b"{}"], env={}, models=[], concurrency=[1], duration=1, margin=0.25,
                    host="builtin", workdir=tmp_path / "work")
    assert "no model here" in exc.value.message
    bad = tmp_path / "samples.jsonl"
    bad.write_text('{"ok": 1}\n{nope\n')
    with pytest.raises(ModelError, match="not JSON") as exc:
        load_samples(bad)
    assert exc.value.location is not None and exc.value.location.line == 2
