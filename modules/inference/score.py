"""Entry script: flags anomalous sensor readings (Azure ML's init()/run() contract).

The model (``model.json`` under ``AZUREML_MODEL_DIR``, written by ``train.py``) is a multivariate Gaussian fitted
on the sensor's normal readings: mean and inverse covariance of (machine temperature, machine pressure, ambient
temperature, ambient humidity). A reading whose squared Mahalanobis distance exceeds the trained threshold is an
anomaly: for example a hot machine whose pressure did not rise with it. Pure Python, no numpy needed.

``run(raw_data)`` takes a JSON string: one sensor reading, a list of readings, or ``{"data": [...]}`` with readings
or 4-number rows. It returns one result object per reading (a single object for a single reading).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

model: dict[str, Any] | None = None
MODEL_VERSION: str | None = None
log = logging.getLogger("score")


def init() -> None:
    global model, MODEL_VERSION
    model_dir = Path(os.environ["AZUREML_MODEL_DIR"])
    candidates = [model_dir / "model.json", model_dir / "model" / "model.json"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no model.json in {model_dir} (run modules/inference/train.py)")
    loaded = json.loads(path.read_text())
    size = len(loaded["features"])
    if len(loaded["mean"]) != size or len(loaded["inv_cov"]) != size or any(len(r) != size for r in loaded["inv_cov"]):
        raise ValueError(f"{path}: mean and inv_cov do not match the {size} features")
    model = loaded
    MODEL_VERSION = f"{loaded['name']}:{loaded['version']}"
    log.info("loaded %s from %s", MODEL_VERSION, path)


def _features(item: Any, index: int) -> list[float]:
    if isinstance(item, dict):
        try:
            machine, ambient = item["machine"], item["ambient"]
            row = [machine["temperature"], machine["pressure"], ambient["temperature"], ambient["humidity"]]
        except (KeyError, TypeError):
            raise ValueError(f"reading {index}: expected machine.temperature, machine.pressure, "
                             "ambient.temperature and ambient.humidity") from None
    elif isinstance(item, list):
        row = item
    else:
        raise ValueError(f"reading {index}: expected an object or a list of 4 numbers, got {type(item).__name__}")
    if len(row) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
        raise ValueError(f"reading {index}: expected 4 numbers, got {row!r}")
    return [float(v) for v in row]


def _distance(x: list[float]) -> float:
    assert model is not None
    d = [xi - mi for xi, mi in zip(x, model["mean"], strict=True)]
    return sum(d[i] * sum(row[j] * d[j] for j in range(len(d))) for i, row in enumerate(model["inv_cov"]))


def run(raw_data: str | bytes) -> Any:
    if model is None:
        raise RuntimeError("init() has not loaded a model")
    data = json.loads(raw_data)
    single = isinstance(data, dict) and "data" not in data
    items = [data] if single else (data["data"] if isinstance(data, dict) else data)
    if not isinstance(items, list):
        raise ValueError("expected a reading, a list of readings or {\"data\": [...]}")
    results = []
    for i, item in enumerate(items):
        score = _distance(_features(item, i))
        result: dict[str, Any] = {"anomaly": score > model["threshold"], "score": round(score, 3),
                                  "threshold": model["threshold"], "modelVersion": MODEL_VERSION}
        if isinstance(item, dict) and "timeCreated" in item:
            result["timeCreated"] = item["timeCreated"]
        results.append(result)
    return results[0] if single else results
