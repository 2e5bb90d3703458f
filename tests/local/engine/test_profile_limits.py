"""`edgegen profile`'s recommendation, checked on the engine: the repo's inference image, limited to the
recommended ``cpu`` and ``memoryInGB`` (HostConfig.NanoCpus/Memory, as genconfig --resource-limits writes them),
serves the same samples at the profiled concurrency with every request answered, the limits enforced by the
engine's cgroup and not exceeded (no OOM kill). Reuses the session's image when the solution test built it."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from edgegen.generator.createoptions import parse_deployment_config
from edgegen.images.publish import build_and_push
from edgegen.local.containerengine import ContainerEngine
from edgegen.models.layout import lay_out
from edgegen.models.profile import measure_level, run_profile, write_deployment_config
from edgegen.models.refs import parse_ref
from edgegen.models.registry import Registry
from tests.local.engine.conftest import REPO, engine_solution
from tests.support.net import free_port
from tests.support.registry import RegistryInfo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# the scoring core the module runs (amlhost), alone: no edge hub is needed to check the scoring workload's limits
SERVE = ("import asyncio, modelpath, pathlib, sys\n"
         "from amlhost.serve import ServeOptions, serve\n"
         "modelpath.prepare()\n"
         "async def main():\n"
         "    await serve(ServeOptions(pathlib.Path('/app/score.py'), None, '127.0.0.1', int(sys.argv[1]),\n"
         "                             app_root=pathlib.Path('/app')), asyncio.Event(),\n"
         "                lambda *_: print('ready', flush=True))\n"
         "asyncio.run(main())\n")
LIMITS = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "


def _inference_image(engine: ContainerEngine, env: dict[str, str], reg: RegistryInfo, tmp: Path) -> str:
    tag = f"{reg.host}/inference:0.1.0-amd64"
    if engine.image(tag) is None:
        sol = engine_solution(tmp, reg, message_count=1, interval=1, scoring_port=free_port())
        build_and_push(sol, "amd64", env, lambda _line: None)
    return tag


def test_profile_recommendation_holds_under_the_engines_limits(engine_host: str, registry: RegistryInfo,
                                                                tmp_path: Path) -> None:
    models = Registry(REPO / ".models")
    pinned = models.get(parse_ref("sensor-anomaly:2")).pinned()
    layout = lay_out(models, [pinned], tmp_path / "app")
    samples = [json.dumps([[20 + i / 10, 1.0 + i / 100, 21.0, 25]]).encode() for i in range(40)]
    result = run_profile(REPO / "modules" / "inference" / "score.py", Path(layout["AZUREML_MODEL_DIR"]), samples,
                         env=layout, models=[pinned.name], concurrency=[2], duration=1.0, margin=0.25,
                         workdir=tmp_path / "profile")
    # what genconfig --resource-limits makes of the deploymentconfig.json the profile writes
    config = write_deployment_config(tmp_path / "deploymentconfig.json", result.cpu, result.memory_in_gb)
    limits = parse_deployment_config(config.read_text(), str(config)).host_config()
    memory, nano_cpus = limits["Memory"], limits["NanoCpus"]
    env = {"DOCKER_HOST": engine_host}
    with ContainerEngine.connect(env) as engine:
        image = _inference_image(engine, env, registry, tmp_path / "build")
        port = free_port()
        body = {"Image": image, "Cmd": ["sh", "-c", f"{LIMITS}exec python -c \"$SERVE\" {port}"],
                "Env": [f"SERVE={SERVE}", f"EDGEGEN_MODELS={layout['EDGEGEN_MODELS']}"],
                "HostConfig": {"NetworkMode": "host", "Memory": memory, "NanoCpus": nano_cpus}}
        container = engine.create(f"profile-check-{port}", body)
        try:
            engine.start(container)
            deadline = time.monotonic() + 60
            while b"ready" not in engine.logs(container):
                state = (engine.inspect(container) or {}).get("State", {})
                assert state.get("Running"), engine.logs(container).decode(errors="replace")
                assert time.monotonic() < deadline, engine.logs(container).decode(errors="replace")
                time.sleep(0.2)
            info = engine.inspect(container)
            assert info is not None
            assert (info["HostConfig"]["Memory"], info["HostConfig"]["NanoCpus"]) == (memory, nano_cpus)
            # the engine's cgroup holds the limit the profile recommended (read inside the container)
            assert int(engine.logs(container).split()[0]) == memory // 4096 * 4096  # the kernel keeps whole pages
            url = f"http://127.0.0.1:{port}"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            req = urllib.request.Request(url + "/score", data=samples[0], headers={"Content-Type": "application/json"})
            with opener.open(req, timeout=10) as resp:
                assert "anomaly" in resp.read().decode()
            level = measure_level(url, info["State"]["Pid"], samples, 2, 1.0)
            assert level.requests > 0 and level.errors == 0, level
            assert level.peak_memory_bytes < memory, (level, memory)
            after = engine.inspect(container) or {}
            assert after["State"]["Running"] and not after["State"].get("OOMKilled"), after["State"]
        finally:
            engine.remove(container)
