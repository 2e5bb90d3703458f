"""Benchmark: `edgegen genconfig` vs `iotedgedev solution genconfig` (3.3.9) on the same solution.

    .venv/bin/python bench/genconfig.py [--runs 15]

Installs iotedgedev 3.3.9 into .bench-venvs/iotedgedev if absent (PyPI). Both CLIs render the repo's own
solution (deployment.template.json + modules/*/module.json) in a temp copy, alternating, each run a fresh
process; prints both medians and the ratio (target: edgegen <= 1/3 of iotedgedev's wall time), and checks the
two manifests are byte-identical. Then times the library call alone (render + validate, no process start) on a
generated 50-module template. If iotedgedev cannot be installed or run, says why and times edgegen alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".bench-venvs" / "iotedgedev"
IOTEDGEDEV = VENV / "bin" / "iotedgedev"
EDGEGEN = Path(sys.executable).parent / "edgegen"
sys.path.insert(0, str(REPO))

from tests.support.iotedgedev import closed_port, offline_env  # noqa: E402


def ensure_iotedgedev() -> str | None:
    """None when iotedgedev 3.3.9 is ready, else the reason it is not."""
    if IOTEDGEDEV.exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "iotedgedev==3.3.9"], check=True,
                       capture_output=True, text=True, timeout=900)
    except subprocess.CalledProcessError as exc:
        return f"pip install iotedgedev==3.3.9 failed: {(exc.stderr or exc.stdout or '').strip()[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not create the iotedgedev venv: {exc}"
    return None if IOTEDGEDEV.exists() else "iotedgedev executable missing after install"


def make_solution(dst: Path) -> Path:
    dst.mkdir(parents=True)
    # the model placeholder pinned in the copy (iotedgedev has no model registry): both tools then render the same
    # text, and edgegen still checks the pin against the registry (.models, copied)
    sys.path.insert(0, str(REPO))
    from edgegen.models.registry import Registry

    pin = Registry(REPO / ".models").pin("sensor-anomaly")
    template = (REPO / "deployment.template.json").read_text()
    assert "${MODELS.sensor-anomaly}" in template, "the repo's template changed: update bench/genconfig.py"
    (dst / "deployment.template.json").write_text(template.replace("${MODELS.sensor-anomaly}", pin))
    shutil.copytree(REPO / ".models", dst / ".models")
    for mj in sorted((REPO / "modules").glob("*/module.json")):
        (dst / "modules" / mj.parent.name).mkdir(parents=True)
        shutil.copyfile(mj, dst / "modules" / mj.parent.name / "module.json")
    (dst / ".env").write_text('CONFIG_OUTPUT_DIR="config"\nCONTAINER_REGISTRY_SERVER="localhost:5000"\n')
    return dst


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def fifty_module_solution(dst: Path, n: int = 50) -> Path:
    dst.mkdir(parents=True)
    modules = {}
    routes = {}
    for i in range(n):
        name = f"m{i:02d}"
        folder = dst / "modules" / name
        folder.mkdir(parents=True)
        (folder / "module.json").write_text(json.dumps({"image": {
            "repository": "${CONTAINER_REGISTRY_SERVER}/" + name,
            "tag": {"version": "1.0.${BUILD}", "platforms": {"amd64": "./Dockerfile.amd64",
                                                            "arm64v8": "./Dockerfile.arm64v8"}}}}))
        modules[name] = {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                         "settings": {"image": "${MODULES." + name + "}",
                                      "createOptions": {"Env": [f"K{j}=${{BUILD}}-{j}" for j in range(20)],
                                                        "HostConfig": {"Binds": [f"/data/{name}:/data"]}}},
                         "env": {"LEVEL": {"value": "${LOG_LEVEL}"}}}
        nxt = f"m{i + 1:02d}" if i + 1 < n else None
        routes[f"{name}Out"] = (f'FROM /messages/modules/{name}/outputs/out INTO BrokeredEndpoint("/modules/{nxt}'
                                '/inputs/in")' if nxt else f"FROM /messages/modules/{name}/outputs/* INTO $upstream")
    template = {"$schema-template": "4.0.0", "modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4",
                                                             "createOptions": {}}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                            "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4", "createOptions": {}}}},
            "modules": modules}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": routes,
                                            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}}}
    (dst / "deployment.template.json").write_text(json.dumps(template, indent=2))
    return dst


def bench_library(runs: int) -> None:
    sys.path.insert(0, str(REPO))
    from edgegen.pipeline import genconfig

    with tempfile.TemporaryDirectory() as tmp:
        sol = fifty_module_solution(Path(tmp) / "fifty")
        env = {"CONTAINER_REGISTRY_SERVER": "localhost:5000", "BUILD": "7", "LOG_LEVEL": "info"}
        for validate in (False, True):
            genconfig(cwd=sol, environ=env, validate=validate, write=False)  # warm-up (imports)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                genconfig(cwd=sol, environ=env, validate=validate, write=False)
                times.append(time.perf_counter() - start)
            what = "render + validate" if validate else "render only"
            print(f"library genconfig(), 50 modules, {what:17}: median {statistics.median(times) * 1000:7.2f} ms "
                  f"(min {min(times) * 1000:.2f}, {runs} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per tool (>= 10)")
    args = parser.parse_args()
    runs = max(10, args.runs)
    why_not = ensure_iotedgedev()
    if why_not:
        print(f"iotedgedev: not measured ({why_not})")
    with tempfile.TemporaryDirectory() as tmp, closed_port() as proxy_port:
        # iotedgedev offline: telemetry off, no first-run notice, its schema download refused at once
        env = offline_env(Path(tmp) / "home", proxy_port)
        ours = make_solution(Path(tmp) / "edgegen")
        theirs = make_solution(Path(tmp) / "iotedgedev")
        edgegen_cmd = [str(EDGEGEN), "genconfig"]
        iotedgedev_cmd = [str(IOTEDGEDEV), "solution", "genconfig"]
        # warm-up: page cache, .pyc files
        timed(edgegen_cmd, ours, env)
        if not why_not:
            try:
                timed(iotedgedev_cmd, theirs, env)
            except RuntimeError as exc:
                why_not = f"iotedgedev failed to run: {exc}"
                print(f"iotedgedev: not measured ({why_not})")
        t_edgegen: list[float] = []
        t_iotedgedev: list[float] = []
        for _ in range(runs):
            t_edgegen.append(timed(edgegen_cmd, ours, env))
            if not why_not:
                t_iotedgedev.append(timed(iotedgedev_cmd, theirs, env))
        out = "config/deployment.amd64.json"
        m_e = statistics.median(t_edgegen)
        print(f"solution: the repo's deployment.template.json + {len(list(ours.glob('modules/*')))} modules, "
              f"{runs} runs each, alternating, fresh process per run")
        print(f"edgegen genconfig              : median {m_e * 1000:7.1f} ms (min {min(t_edgegen) * 1000:.1f})")
        if t_iotedgedev:
            m_i = statistics.median(t_iotedgedev)
            same = (ours / out).read_bytes() == (theirs / out).read_bytes()
            print(f"iotedgedev solution genconfig  : median {m_i * 1000:7.1f} ms (min {min(t_iotedgedev) * 1000:.1f})")
            print(f"ratio edgegen/iotedgedev       : {m_e / m_i:.2f} (target <= 0.33); "
                  f"manifests byte-identical: {same}")
    bench_library(max(runs, 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
