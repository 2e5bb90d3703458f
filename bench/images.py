"""Benchmark: `edgegen build --push` vs `iotedgedev solution push` on the same solution, same engine, same registry.

Starts a private podman service (Docker API) and a TLS+htpasswd docker-registry on 127.0.0.1 (the test fixtures),
writes a solution with N modules (FROM scratch + a COPY of 1 MiB of random hex text), then times both tools
alternating, RUNS times each (after one warm-up each: both then run against a warm build cache and a registry
that has the blobs, the common edit-build-push loop), and prints medians and the ratio.
iotedgedev 3.3.9 comes from `.bench-venvs/iotedgedev` (created with pip when absent, as bench/genconfig.py does).

    .venv/bin/python bench/images.py [--runs 10] [--modules 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.images.conftest import write_module, write_solution  # noqa: E402
from tests.support.podman import run_podman_service  # noqa: E402
from tests.support.registry import run_registry  # noqa: E402

IOTEDGEDEV_VENV = REPO / ".bench-venvs" / "iotedgedev"


def ensure_iotedgedev() -> Path | None:
    exe = IOTEDGEDEV_VENV / "bin" / "iotedgedev"
    if exe.exists():
        return exe
    print("installing iotedgedev 3.3.9 into", IOTEDGEDEV_VENV, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(IOTEDGEDEV_VENV)], check=True)
        subprocess.run([str(IOTEDGEDEV_VENV / "bin" / "pip"), "install", "-q", "iotedgedev==3.3.9"], check=True)
    except subprocess.CalledProcessError as exc:
        print(f"could not install iotedgedev ({exc}); timing edgegen alone")
        return None
    return exe


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, input="n\n", timeout=600)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--modules", type=int, default=3)
    args = ap.parse_args()
    iotedgedev = ensure_iotedgedev()
    base = Path(tempfile.mkdtemp(prefix="edgegen-bench-images-"))
    try:
        with run_podman_service() as host, run_registry() as reg:
            names = [f"mod{i}" for i in range(args.modules)]
            for name in names:
                write_module(base, name, repository="${CONTAINER_REGISTRY_SERVER}/bench/NAME",
                             dockerfile="FROM scratch\nCOPY payload.bin /payload.bin\n",
                             files={"payload.bin": os.urandom(1 << 20).hex()[: 1 << 20]})  # fmt: skip
            write_solution(base, {n: "${MODULES." + n + "}" for n in names}, {
                "CONTAINER_REGISTRY_SERVER": reg.host,
                "CONTAINER_REGISTRY_USERNAME": reg.username,
                "CONTAINER_REGISTRY_PASSWORD": reg.password,
                "DEFAULT_PLATFORM": "amd64",
                "CONFIG_OUTPUT_DIR": "config",
            })  # fmt: skip
            env = {**os.environ, "DOCKER_HOST": host, "COLUMNS": "120"}
            tools = {"edgegen build --push": [str(REPO / ".venv" / "bin" / "edgegen"), "build", "--push"]}
            if iotedgedev is not None:
                tools["iotedgedev solution push"] = [str(iotedgedev), "solution", "push"]
            for cmd in tools.values():  # warm-up: first build and first upload
                timed(cmd, base, env)
            times: dict[str, list[float]] = {k: [] for k in tools}
            for _ in range(args.runs):
                for label, cmd in tools.items():
                    times[label].append(timed(cmd, base, env))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nbuild + push of {args.modules} modules (FROM scratch + 1 MiB COPY), podman 4 Docker API, "
          f"registry with TLS + basic auth, {args.runs} runs each, alternating")  # fmt: skip
    medians = {k: statistics.median(v) for k, v in times.items()}
    for label, med in medians.items():
        print(f"  {label:28s} median {med:6.3f} s   min {min(times[label]):6.3f} s   max {max(times[label]):6.3f} s")
    if len(medians) == 2:
        ours, theirs = medians.values()
        print(f"  ratio edgegen / iotedgedev: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
