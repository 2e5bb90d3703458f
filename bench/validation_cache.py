"""Offline validation, first sight vs seen before: what the route and twin-schema caches save, next to the peer.

Usage: .venv/bin/python bench/validation_cache.py [--runs 15] [--modules 50]

bench/validation.py validates the same manifest again and again, so since the caches landed its edgegen rows are
cache hits (routes parsed and compiled once per text; a twin's schema findings kept by its exact content). This
script times, alternating, on the same 50-module / 50-route manifest:
  - edgegen validate_manifest, cold: the routing LRUs and the twin schema cache cleared before every run
    (a manifest never seen before, e.g. ``edgegen validate FILE``);
  - edgegen validate_manifest, warm (a fleet's manifests that share twins and routes);
  - edgegen schema check only, cold;
  - the peer: the official schemas applied the azure-iot-cli-extension way (schema only, validators built once).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from fleet import clear_library_caches  # noqa: E402
from validation import SCHEMAS, build, official, timed  # noqa: E402

from edgegen.generator.validation import schema as our_schema  # noqa: E402
from edgegen.generator.validation import validate_manifest  # noqa: E402
from edgegen.generator.validation.model import ManifestView  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--modules", type=int, default=50)
    args = ap.parse_args()
    if not SCHEMAS.is_dir():
        sys.exit(f"official schemas not found at {SCHEMAS}")
    m = build(args.modules)
    assert not [f for f in validate_manifest(m) if f.is_error] and official(m)

    def cold(fn: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            clear_library_caches()
            return timed(fn)
        return run

    def warm(fn: Callable[[], object]) -> Callable[[], float]:
        return lambda: timed(fn)

    cases = {
        "edgegen validate_manifest, cold caches": cold(lambda: validate_manifest(m)),
        "edgegen validate_manifest, warm caches": warm(lambda: validate_manifest(m)),
        "edgegen schema check only, cold caches": cold(lambda: our_schema.check(ManifestView(m))),
        "official schemas, azext way (schema only)": warm(lambda: official(m)),
    }
    for run in cases.values():  # warm-up: imports, schema loading
        run()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, run in cases.items():
            times[name].append(run())
    print(f"manifest: {args.modules} modules, {args.modules} routes; {args.runs} alternating runs")
    print(f"{'case':48} {'median':>10} {'min':>10}")
    for name, ts in times.items():
        print(f"{name:48} {statistics.median(ts) * 1000:8.1f} ms {min(ts) * 1000:8.1f} ms")
    med = {k: statistics.median(v) for k, v in times.items()}
    peer = med["official schemas, azext way (schema only)"]
    print(f"cold all checks / official schema only: {med['edgegen validate_manifest, cold caches'] / peer:.2f}; "
          f"cold schema only / official: {med['edgegen schema check only, cold caches'] / peer:.2f}")


if __name__ == "__main__":
    main()
