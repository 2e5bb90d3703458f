"""Benchmark: the local device with its modules as processes vs as containers, in one run.

For each engine it starts the repo's solution (sensor → inference → monitor → $upstream) with the sensor sending
as fast as its SEND_INTERVAL allows, and measures
  - start: from ``Device.start()`` to the first message in ``$upstream`` (edge hub, workload API, modules,
    their SDK connections, the first message through three modules);
  - steady: messages per second reaching ``$upstream`` over the WINDOW seconds after the first one.
Containers run on a private podman service (Docker API, runc, overlay storage) holding the offline base image
(tests/support/baseimage.py); the module images are built once before timing (not timed), run with
imagePullPolicy never. Process mode reuses this interpreter's packages (--reuse-site-packages). One warm-up
run per engine (venvs, image layers, page cache), then RUNS timed runs each, alternating; medians printed.

    .venv/bin/python bench/device_start.py [--runs 3] [--window 10] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgegen.images import Engine  # noqa: E402
from edgegen.images.models import build_with_models  # noqa: E402
from edgegen.images.plan import plan_targets  # noqa: E402
from edgegen.local.device import Device, DeviceConfig  # noqa: E402
from edgegen.models.registry import SolutionModels  # noqa: E402
from edgegen.pipeline import genconfig  # noqa: E402
from tests.support.baseimage import import_base  # noqa: E402
from tests.support.podman import run_podman_service  # noqa: E402


def manifest_for(work: Path, interval: float) -> Path:
    # manifests/deployment.amd64.json (the model ${MODELS.x} pinned from the repo's registry), adjusted below
    result = genconfig(cwd=REPO, platform="amd64", models=SolutionModels(REPO))
    data: dict[str, Any] = json.loads((REPO / result.output_path).read_text())
    mc = data["modulesContent"]
    modules = mc["$edgeAgent"]["properties.desired"]["modules"]
    for spec in modules.values():
        spec["imagePullPolicy"] = "never"
    modules["sensor"]["env"].update(MESSAGE_COUNT={"value": "0"}, SEND_INTERVAL={"value": str(interval)})
    mc["sensor"]["properties.desired"]["SendInterval"] = interval
    modules["inference"]["env"]["SCORING_PORT"] = {"value": "off"}
    path = work / "deployment.json"
    path.write_text(json.dumps(data))
    return path


async def one_run(engine: str, manifest: Path, state: Path, docker_host: str, window: float) -> tuple[float, float]:
    config = DeviceConfig(state_dir=state, manifest=manifest, solution_dir=REPO, engine=engine,
                          engine_env={"DOCKER_HOST": docker_host}, share_site_packages=True,
                          venv_dir=state.parent / "venvs", control_api=False, durable_ack=False)
    dev = Device(config)
    t0 = time.perf_counter()
    async with dev:
        up = dev.local_upstream
        assert up is not None
        while up.count() == 0:
            if time.perf_counter() - t0 > 180:
                raise RuntimeError(f"{engine}: no message in 180 s: {dev.agent.status()}")
            await asyncio.sleep(0.01)
        first = time.perf_counter() - t0
        n0 = up.count()
        await asyncio.sleep(window)
        rate = (up.count() - n0) / window
    return first, rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=0.01, help="sensor SEND_INTERVAL in seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgegen-bench-start-") as tmp, \
            run_podman_service(driver="overlay") as host:
        work = Path(tmp)
        import_base(host)
        with Engine.connect({"DOCKER_HOST": host}) as eng:
            plan = plan_targets(cwd=REPO, platform="amd64")
            for target in plan.targets:  # as `edgegen build`: the models the modules pin baked in and checked
                built, _ = build_with_models(eng, target, plan.container_tag, SolutionModels(REPO))
                print(f"built {built.tag} in {built.seconds:.1f}s (not timed)", flush=True)
        manifest = manifest_for(work, args.interval)
        results: dict[str, list[tuple[float, float]]] = {"process": [], "docker": []}
        for i in range(args.runs + 1):
            for engine in ("process", "docker"):
                first, rate = asyncio.run(one_run(engine, manifest, work / f"{engine}-{i}", host, args.window))
                label = "warm-up" if i == 0 else f"run {i}"
                print(f"{label:8} {engine:8} first message after {first:6.2f}s, steady {rate:7.1f} msg/s", flush=True)
                if i:
                    results[engine].append((first, rate))
    p_first = statistics.median(r[0] for r in results["process"])
    d_first = statistics.median(r[0] for r in results["docker"])
    p_rate = statistics.median(r[1] for r in results["process"])
    d_rate = statistics.median(r[1] for r in results["docker"])
    print()
    print(f"{'':28}{'process':>10}{'docker':>10}{'docker/process':>16}")
    print(f"{'first message upstream (s)':28}{p_first:10.2f}{d_first:10.2f}{d_first / p_first:16.2f}")
    print(f"{'steady msg/s':28}{p_rate:10.1f}{d_rate:10.1f}{d_rate / max(p_rate, 1e-9):16.2f}")
    print(f"(medians of {args.runs} runs, sensor SEND_INTERVAL {args.interval}s, window {args.window}s)")


if __name__ == "__main__":
    main()
