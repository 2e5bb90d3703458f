"""Offline validation speed: edgegen's full check vs the official schemas applied the azure-iot-cli-extension way.

Usage: .venv/bin/python bench/validation.py [--runs 15] [--modules 50]

Builds a valid manifest with N user modules and N routes (agent 1.1, hub 1.2), then times, alternating:
  - edgegen validate_manifest (our schemas + createOptions, images, registries, names, limits, routes + lint)
  - edgegen schema check only (our schemas)
  - the peer: the official azure-iot-edge{agent,hub}-deployment-<v>.json from tests/conformance/schemas,
    validated with python-jsonschema exactly as azext does (schema only, no semantic checks)
  - edgegen validate_text (parse + all checks + file:line:col for every finding)
and the wall time of `edgegen validate FILE` as a process. Prints medians and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jsonschema import Draft4Validator, Draft7Validator  # noqa: E402

from edgegen.generator.validation import schema as our_schema  # noqa: E402
from edgegen.generator.validation import validate_manifest, validate_text  # noqa: E402
from edgegen.generator.validation.model import ManifestView  # noqa: E402

SCHEMAS = REPO / "tests" / "conformance" / "schemas"
BASE = REPO / "tests/generator/validation/data/valid/valid-agent1.1-hub1.2.json"


def build(n: int) -> dict[str, Any]:
    m: dict[str, Any] = json.loads(BASE.read_text())
    desired = m["modulesContent"]["$edgeAgent"]["properties.desired"]
    routes = m["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]
    template = desired["modules"].pop("sensor")
    desired["modules"].pop("monitor")
    routes.clear()
    for i in range(n):
        mod = copy.deepcopy(template)
        mod["settings"]["image"] = f"myacr.azurecr.io/mod{i}:0.1.0-amd64"
        mod["settings"]["createOptions"] = json.dumps({"HostConfig": {"Binds": [f"/data/{i}:/data"]}})
        desired["modules"][f"mod{i}"] = mod
        nxt = f"mod{i + 1}" if i + 1 < n else None
        routes[f"r{i}"] = (f"FROM /messages/modules/mod{i}/outputs/out WHERE temperature > '{i}' INTO "
                           + (f'BrokeredEndpoint("/modules/{nxt}/inputs/in")' if nxt else "$upstream"))
    return m


@functools.cache
def official_validator(prefix: str, version: str) -> Draft4Validator | Draft7Validator:
    """Loaded once, like our own validators (azext re-reads the file on every call; we do not count that)."""
    schema = json.loads((SCHEMAS / f"azure-iot-{prefix}-deployment-{version}.json").read_text())
    cls = Draft7Validator if "draft-07" in schema.get("$schema", "") else Draft4Validator
    return cls(schema)


def official(manifest: dict[str, Any]) -> bool:
    ok = True
    mc = manifest["modulesContent"]
    for twin, prefix in (("$edgeAgent", "edgeagent"), ("$edgeHub", "edgehub")):
        version = mc[twin]["properties.desired"]["schemaVersion"]
        ok &= not list(official_validator(prefix, version).iter_errors({twin: mc[twin]}))
    return ok


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--modules", type=int, default=50)
    args = ap.parse_args()
    if not SCHEMAS.is_dir():
        sys.exit(f"official schemas not found at {SCHEMAS}")
    m = build(args.modules)
    text = json.dumps(m, indent=2)
    errors = [f for f in validate_manifest(m) if f.is_error]
    assert not errors, errors
    assert official(m)
    cases: dict[str, Callable[[], object]] = {
        "edgegen validate_manifest (all checks)": lambda: validate_manifest(m),
        "edgegen schema check only": lambda: our_schema.check(ManifestView(m)),
        "official schemas, azext way (schema only)": lambda: official(m),
        "edgegen validate_text (+ positions)": lambda: validate_text(text, file="m.json"),
    }
    for fn in cases.values():  # warm-up: schema loading, imports
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        fh.write(text)
    cli = []
    for _ in range(max(3, args.runs // 3)):
        cli.append(timed(lambda: subprocess.run([str(REPO / ".venv/bin/edgegen"), "validate", fh.name],
                                                capture_output=True, check=False)))
    Path(fh.name).unlink()
    print(f"manifest: {args.modules} modules, {args.modules} routes, {len(text)} bytes; {args.runs} alternating runs")
    print(f"{'case':48} {'median':>10} {'min':>10}")
    for name, ts in times.items():
        print(f"{name:48} {statistics.median(ts) * 1000:8.1f} ms {min(ts) * 1000:8.1f} ms")
    label = "edgegen validate FILE (process wall time)"
    print(f"{label:48} {statistics.median(cli) * 1000:8.1f} ms {min(cli) * 1000:8.1f} ms")
    ours = statistics.median(times["edgegen schema check only"])
    peer = statistics.median(times["official schemas, azext way (schema only)"])
    full = statistics.median(times["edgegen validate_manifest (all checks)"])
    print(f"schema only, ours / official: {ours / peer:.2f}; all checks / official schema only: {full / peer:.2f}")


if __name__ == "__main__":
    main()
