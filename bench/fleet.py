"""Benchmark: a 10,000-device fleet.yaml rendered and validated (target: <= 10 s), next to its peers.

    .venv/bin/python bench/fleet.py [--devices 10000] [--groups 20] [--override-pct 5] [--worst-sample 300]
                                    [--own-var HEARTBEAT|MESSAGE_COUNT]

The repo's own solution (template with three variables, modules/*/module.json) in a temp copy. Printed side by
side, all in one run:

1. edgegen ``render_fleet``: ``--groups`` groups, ``--devices`` devices, ``--override-pct`` % of them with their
   own value of ``--own-var`` (each such device gets its own manifest); renders cached per variable set,
   validation per manifest — the real cost is one render + validation per *distinct* manifest.
   ``HEARTBEAT`` (default) is a module twin's desired property; ``MESSAGE_COUNT`` is a module's env in
   ``$edgeAgent``, so every device's ``$edgeAgent`` twin differs and its schema check cannot be shared.
2. a loop over ``genconfig`` + ``validate_manifest`` per device (every device rendered and validated on its
   own), timed on ``--worst-sample`` devices and extrapolated to the fleet: once as it runs (the library's
   route and schema caches warm), once with those caches cleared before every device (cold).
3. iotedgedev 3.3.9 ``solution genconfig`` per device (one process per device, as a script would call it),
   when ``.bench-venvs/iotedgedev`` exists (bench/genconfig.py installs it): 3 runs, extrapolated.
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
IOTEDGEDEV = REPO / ".bench-venvs" / "iotedgedev" / "bin" / "iotedgedev"


def make_solution(dst: Path) -> Path:
    dst.mkdir(parents=True)
    template = (REPO / "deployment.template.json").read_text()
    template = template.replace('"SendInterval": 1', '"SendInterval": ${SEND_INTERVAL}')
    template = template.replace('"heartbeatSeconds": 30', '"heartbeatSeconds": ${HEARTBEAT}')
    template = template.replace('"MESSAGE_COUNT": { "value": "0" }', '"MESSAGE_COUNT": { "value": "${MESSAGE_COUNT}" }')
    assert template.count("${") >= 6, "the repo's template changed: update bench/fleet.py"
    (dst / "deployment.template.json").write_text(template)
    for mj in sorted((REPO / "modules").glob("*/module.json")):
        (dst / "modules" / mj.parent.name).mkdir(parents=True)
        shutil.copyfile(mj, dst / "modules" / mj.parent.name / "module.json")
    shutil.copytree(REPO / ".models", dst / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    (dst / ".env").write_text('CONFIG_OUTPUT_DIR="config"\nSEND_INTERVAL=1\nHEARTBEAT=30\nMESSAGE_COUNT=0\n')
    return dst


def write_fleet(path: Path, devices: int, groups: int, override_pct: float, own_var: str = "HEARTBEAT") -> int:
    per_group = devices // groups
    every = int(100 / override_pct) if override_pct > 0 else 0
    lines = ["variables:", "  HEARTBEAT: '30'", "groups:"]
    overrides = n = 0
    for g in range(groups):
        lines += [f"  g{g:02d}:", f"    targetCondition: \"tags.site='s{g:02d}'\"", f"    priority: {g + 1}",
                  f"    variables: {{SEND_INTERVAL: '{g % 7 + 1}'}}", "    devices:"]
        for _ in range(per_group):
            if every and n % every == 0:
                lines.append(f"      dev-{n:05d}: {{variables: {{{own_var}: '{10 + n}'}}}}")
                overrides += 1
            else:
                lines.append(f"      dev-{n:05d}: {{}}")
            n += 1
    path.write_text("\n".join(lines) + "\n")
    return overrides


def clear_library_caches() -> None:
    """Forget the routing parse/compile LRUs and validation's schema memos (the cold, first-manifest cost)."""
    from edgegen.generator.validation import schema
    from edgegen.routing import route, table

    route._parse_cached.cache_clear()
    table._compile.cache_clear()
    schema.clear_caches()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--override-pct", type=float, default=5.0)
    parser.add_argument("--worst-sample", type=int, default=300)
    parser.add_argument("--own-var", choices=("HEARTBEAT", "MESSAGE_COUNT"), default="HEARTBEAT")
    args = parser.parse_args()

    from edgegen.generator.validation import validate_manifest
    from edgegen.hub.fleet import render_fleet
    from edgegen.models.registry import SolutionModels
    from edgegen.pipeline import genconfig

    with tempfile.TemporaryDirectory() as tmp:
        sol = make_solution(Path(tmp) / "sol")
        fleet = sol / "fleet.yaml"
        overrides = write_fleet(fleet, args.devices, args.groups, args.override_pct, args.own_var)
        env = {"PATH": os.environ.get("PATH", "")}
        render_fleet(fleet, cwd=sol, environ=env)  # warm-up: imports, schema compilation
        start = time.perf_counter()
        plan = render_fleet(fleet, cwd=sol, environ=env)
        total = time.perf_counter() - start
        devices = len(plan.device_deployment)
        print(f"fleet: {devices} devices, {args.groups} groups, {overrides} devices with their own {args.own_var} "
              f"-> {len(plan.deployments)} deployments")
        print(f"edgegen render_fleet (cached)      : {total:7.2f} s  (renders {plan.renders}, validations "
              f"{plan.validations}; render {plan.stats['render_s']:.2f} s, validate {plan.stats['validate_s']:.2f} s,"
              f" errors {len(plan.errors())})  target <= 10 s: {'met' if total <= 10 else 'NOT met'}")

        for cold in (False, True):
            times = []
            for i in range(args.worst_sample):
                if cold:
                    clear_library_caches()
                own = {args.own_var: str(10 + i)}
                t0 = time.perf_counter()
                result = genconfig(cwd=sol, environ={**env, "SEND_INTERVAL": str(i % 7 + 1), **own}, write=False,
                                   validate=False, models=SolutionModels(sol))
                validate_manifest(result.manifest)
                times.append(time.perf_counter() - t0)
            per = statistics.mean(times)
            label = "caches cleared" if cold else "caches warm"
            print(f"per-device genconfig + validate    : {per * devices:7.2f} s  (extrapolated: {per * 1000:.2f} ms "
                  f"x {devices} devices, from {args.worst_sample} distinct devices; library {label})")

        if IOTEDGEDEV.exists():
            home = Path(tmp) / "home"
            home.mkdir()
            penv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
                    "SEND_INTERVAL": "3", "HEARTBEAT": "30"}
            runs = []
            for _ in range(4):
                t0 = time.perf_counter()
                subprocess.run([str(IOTEDGEDEV), "solution", "genconfig"], cwd=sol, env=penv, capture_output=True,
                               stdin=subprocess.DEVNULL, check=False)
                runs.append(time.perf_counter() - t0)
            per_proc = statistics.median(runs[1:])
            print(f"iotedgedev genconfig per device    : {per_proc * devices:7.0f} s  (extrapolated: "
                  f"{per_proc:.2f} s per process x {devices} devices, median of 3 after a warm-up)")
        else:
            print("iotedgedev genconfig per device    : not measured (.bench-venvs/iotedgedev absent; "
                  "bench/genconfig.py installs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
