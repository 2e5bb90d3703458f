"""Train the anomaly detector that score.py hosts, on the sensor module's own simulation.

    python modules/inference/train.py [--out modules/inference/model] [--seed 7] [--samples 20000]
                                      [--sklearn] [--sample-data DIR]

Fits mean and covariance of the four features on normal readings, inverts the covariance (Gauss-Jordan, pure
Python), picks the threshold as the 99.9th percentile of squared Mahalanobis distances on a held-out normal set,
and measures precision/recall on a labelled set with injected anomalies. Deterministic for a given seed.
Writes ``model.json`` atomically. Development-time only: the module image does not run it.

``--sklearn`` also writes ``model.pkl``: the same detector's learned part as a scikit-learn estimator, a
``PCA(whiten=True)`` fitted on the same normal readings (the squared norm of its output is the Mahalanobis
distance), which ``edgegen model convert --to onnx`` turns into ``model.onnx``; score.py uses whichever the
model folder holds (threshold and feature names stay in model.json). ``--sample-data DIR`` writes
``readings.jsonl`` (sensor readings, for ``edgegen profile`` and /score) and ``features.jsonl`` (4-number rows,
for ``edgegen model convert``) from a labelled simulation with anomalies.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)  # sample files are the same on every run
FEATURES = ["machine.temperature", "machine.pressure", "ambient.temperature", "ambient.humidity"]


def load_simulation() -> Any:
    path = HERE.parent / "sensor" / "simulation.py"
    spec = importlib.util.spec_from_file_location("sensor_simulation", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the sensor simulation from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sensor_simulation"] = module
    spec.loader.exec_module(module)
    return module


def invert(matrix: list[list[float]]) -> list[list[float]]:
    n = len(matrix)
    a = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ValueError("covariance matrix is singular")
        a[col], a[pivot] = a[pivot], a[col]
        p = a[col][col]
        a[col] = [v / p for v in a[col]]
        for r in range(n):
            if r != col:
                f = a[r][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def fit(rows: list[list[float]]) -> tuple[list[float], list[list[float]]]:
    n, k = len(rows), len(rows[0])
    mean = [sum(r[i] for r in rows) / n for i in range(k)]
    cov = [[sum((r[i] - mean[i]) * (r[j] - mean[j]) for r in rows) / (n - 1) for j in range(k)] for i in range(k)]
    return mean, invert(cov)


def distance(x: list[float], mean: list[float], inv: list[list[float]]) -> float:
    d = [xi - mi for xi, mi in zip(x, mean, strict=True)]
    return sum(d[i] * sum(inv[i][j] * d[j] for j in range(len(d))) for i in range(len(d)))


def train(seed: int, samples: int) -> dict[str, Any]:
    sim_mod = load_simulation()
    normal = sim_mod.Simulator(seed=seed, anomaly_rate=0.0)
    rows = [normal.step().features() for _ in range(samples)]
    mean, inv = fit(rows)
    held_out = sim_mod.Simulator(seed=seed + 1, anomaly_rate=0.0)
    scores = sorted(distance(held_out.step().features(), mean, inv) for _ in range(samples // 2))
    threshold = scores[int(0.999 * (len(scores) - 1))] * 1.5  # margin: false alarms cost more than misses here
    labelled = sim_mod.Simulator(seed=seed + 2, anomaly_rate=0.05)
    tp = fp = fn = tn = 0
    for _ in range(samples // 2):
        reading = labelled.step()
        flagged = distance(reading.features(), mean, inv) > threshold
        actual = reading.anomaly is not None
        tp += flagged and actual
        fp += flagged and not actual
        fn += actual and not flagged
        tn += not flagged and not actual
    return {
        "name": "sensor-anomaly", "version": "1", "kind": "gaussian-mahalanobis", "features": FEATURES,
        "mean": [round(v, 6) for v in mean], "inv_cov": [[round(v, 9) for v in row] for row in inv],
        "threshold": round(threshold, 4),
        "training": {"seed": seed, "samples": samples, "simulation": "modules/sensor/simulation.py"},
        "metrics": {"precision": round(tp / max(1, tp + fp), 4), "recall": round(tp / max(1, tp + fn), 4),
                    "evaluated": tp + fp + fn + tn, "anomalies": tp + fn, "falseAlarms": fp},
    }


def write_atomic(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def train_sklearn(seed: int, samples: int) -> bytes:
    """The whitening transform as a pickled scikit-learn PCA (needs numpy and scikit-learn)."""
    import pickle

    import numpy as np
    from sklearn.decomposition import PCA

    normal = load_simulation().Simulator(seed=seed, anomaly_rate=0.0)
    rows = np.asarray([normal.step().features() for _ in range(samples)], dtype=np.float64)
    return pickle.dumps(PCA(whiten=True).fit(rows), protocol=5)


def write_samples(folder: Path, seed: int, count: int = 500) -> None:
    sim = load_simulation().Simulator(seed=seed + 3, anomaly_rate=0.05)
    readings, features = [], []
    for _ in range(count):
        reading = sim.step()
        readings.append(json.dumps(reading.body(FIXED_TIME)))
        features.append(json.dumps(reading.features()))
    write_atomic(folder / "readings.jsonl", "\n".join(readings) + "\n")
    write_atomic(folder / "features.jsonl", "\n".join(features) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "model", help="model folder (default: model/ here)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--sklearn", action="store_true", help="also write model.pkl (scikit-learn)")
    parser.add_argument("--sample-data", type=Path, default=None, metavar="DIR",
                        help="write readings.jsonl and features.jsonl there")
    args = parser.parse_args(argv)
    model = train(args.seed, args.samples)
    write_atomic(args.out / "model.json", json.dumps(model, indent=2) + "\n")
    print(f"wrote {args.out / 'model.json'}: threshold {model['threshold']}, metrics {model['metrics']}")
    if args.sklearn:
        write_atomic(args.out / "model.pkl", train_sklearn(args.seed, args.samples))
        print(f"wrote {args.out / 'model.pkl'} (scikit-learn PCA whitening)")
    if args.sample_data is not None:
        write_samples(args.sample_data, args.seed)
        print(f"wrote {args.sample_data / 'readings.jsonl'} and {args.sample_data / 'features.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
