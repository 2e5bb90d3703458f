"""Benchmark: the sample anomaly model as pickle (scikit-learn) vs ONNX (onnxruntime) through the same scoring host,
and the profiler's own overhead.

    .venv/bin/python bench/models.py [--seconds 5] [--rounds 3] [--concurrency 1,4] [--host auto]

Both model versions come from the repo's registry (.models: sensor-anomaly:1 is the scikit-learn folder,
sensor-anomaly:2 its ONNX conversion), laid out as on a device, and are served by modules/inference/score.py in the
host that `edgegen profile` drives (edgegen serve by default; --host builtin for the minimal one-worker host).
Samples are the sensor readings train.py writes. The two are measured alternately, round after round; medians are
printed side by side with the ONNX/pickle ratio. Profile overhead: wall time of a profile run beyond its measuring
windows (host start, model init, stop), and the CPU the load generator itself used per request (it shares the
machine with the host).
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgegen.models.layout import lay_out  # noqa: E402
from edgegen.models.profile import run_profile  # noqa: E402
from edgegen.models.registry import Registry  # noqa: E402

SCRIPT = REPO / "modules" / "inference" / "score.py"
VERSIONS = {"pickle": "sensor-anomaly:1", "onnx": "sensor-anomaly:2"}


def samples(folder: Path) -> list[bytes]:
    spec = importlib.util.spec_from_file_location("train", REPO / "modules" / "inference" / "train.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    train.write_samples(folder, 7)
    return [line.encode() for line in (folder / "readings.jsonl").read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--host", default="auto")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    reg = Registry(REPO / ".models")
    figures: dict[tuple[str, int], dict[str, list[float]]] = {}
    overhead: list[float] = []
    client_cpu: list[float] = []
    host_name = ""
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        data = samples(Path(tmp) / "samples")
        envs = {kind: lay_out(reg, [reg.get(ref).pinned()], Path(tmp) / kind) for kind, ref in VERSIONS.items()}
        for _round in range(args.rounds):
            for kind, env in envs.items():
                before = resource.getrusage(resource.RUSAGE_SELF)
                result = run_profile(SCRIPT, Path(env["AZUREML_MODEL_DIR"]), data, env=env, models=[VERSIONS[kind]],
                                     concurrency=levels, duration=args.seconds, margin=0.25, host=args.host,
                                     workdir=Path(tmp) / f"work-{kind}")
                after = resource.getrusage(resource.RUSAGE_SELF)
                host_name = result.host
                overhead.append(result.overhead_seconds)
                answered = sum(lv.requests for lv in result.levels)
                client_cpu.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
                                  / max(1, answered))
                for lv in result.levels:
                    f = figures.setdefault((kind, lv.concurrency), {"rps": [], "p99": [], "cpu": [], "mem": []})
                    f["rps"].append(lv.throughput)
                    f["p99"].append(lv.p99_ms)
                    f["cpu"].append(lv.cpu_ms_per_request)
                    f["mem"].append(lv.peak_memory_bytes / 2**20)
    med = {k: {m: statistics.median(v) for m, v in f.items()} for k, f in figures.items()}
    print(f"host: {host_name}; {args.rounds} rounds x {args.seconds:g} s per level; medians; "
          f"script {SCRIPT.relative_to(REPO)}")
    print(f"{'concurrency':>11} | {'pickle req/s':>12} {'onnx req/s':>10} {'ratio':>6} | {'pickle p99 ms':>13} "
          f"{'onnx p99 ms':>11} | {'pickle cpu ms/req':>17} {'onnx cpu ms/req':>15} | {'pickle MiB':>10} "
          f"{'onnx MiB':>8}")
    for c in levels:
        p, o = med[("pickle", c)], med[("onnx", c)]
        print(f"{c:>11} | {p['rps']:>12.0f} {o['rps']:>10.0f} {o['rps'] / p['rps']:>6.2f} | {p['p99']:>13.2f} "
              f"{o['p99']:>11.2f} | {p['cpu']:>17.3f} {o['cpu']:>15.3f} | {p['mem']:>10.1f} {o['mem']:>8.1f}")
    print(f"profile overhead: {statistics.median(overhead):.2f} s per run beyond the measuring windows (host start, "
          f"init, stop); load generator CPU {statistics.median(client_cpu):.3f} ms per request")
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"(bench took {time.monotonic() - start:.0f} s)")
    sys.exit(code)
