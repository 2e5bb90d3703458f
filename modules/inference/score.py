"""Entry script: flags anomalous sensor readings (Azure ML's init()/run() contract).

The model (``model.json`` under ``AZUREML_MODEL_DIR``, written by ``train.py``) is a multivariate Gaussian fitted
on the sensor's normal readings: mean and inverse covariance of (machine temperature, machine pressure, ambient
temperature, ambient humidity). A reading whose squared Mahalanobis distance exceeds the trained threshold is an
anomaly: for example a hot machine whose pressure did not rise with it. Pure Python, no numpy needed.

The model folder may also hold the learned whitening as ``model.onnx`` (served with onnxruntime) or ``model.pkl``
(scikit-learn); the distance is then the squared norm of its output, the threshold still from ``model.json``.
The folder is ``AZUREML_MODEL_DIR`` itself or its one subfolder (a registered folder, as Azure ML lays it out).
``modelVersion`` is the registry's ``name:version`` when the deployment pins one (``EDGEGEN_MODELS``).

``run(raw_data)`` takes a JSON string: one sensor reading, a list of readings, or ``{"data": [...]}`` with readings
or 4-number rows. It returns one result object per reading (a single object for a single reading).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

model: dict[str, Any] | None = None
MODEL_VERSION: str | None = None
BACKEND = "python"
_whiten: Callable[[list[list[float]]], list[float]] | None = None  # rows -> squared distances (onnx / pickle)
log = logging.getLogger("score")


def _folder(model_dir: Path) -> Path:
    if (model_dir / "model.json").is_file():
        return model_dir
    subfolders = sorted(p for p in model_dir.iterdir() if p.is_dir()) if model_dir.is_dir() else []
    for folder in subfolders:
        if (folder / "model.json").is_file():
            return folder
    raise FileNotFoundError(f"no model.json in {model_dir} or its subfolders (run modules/inference/train.py)")


def _onnx(path: Path) -> Callable[[list[list[float]]], list[float]]:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one row at a time: threads cost more than they give
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def distances(rows: list[list[float]]) -> list[float]:
        out = session.run(None, {name: np.asarray(rows, dtype=np.float32)})[0]
        return [float(v) for v in np.square(out.astype(np.float64)).sum(axis=1)]

    return distances


def _pickle(path: Path) -> Callable[[list[list[float]]], list[float]]:
    import pickle

    import numpy as np

    with open(path, "rb") as fh:
        estimator = pickle.load(fh)  # the registered model's own bytes, verified by digest before init()

    def distances(rows: list[list[float]]) -> list[float]:
        return [float(v) for v in np.square(estimator.transform(np.asarray(rows, dtype=np.float64))).sum(axis=1)]

    return distances


def init() -> None:
    global model, MODEL_VERSION, BACKEND, _whiten
    folder = _folder(Path(os.environ["AZUREML_MODEL_DIR"]))
    path = folder / "model.json"
    loaded = json.loads(path.read_text())
    size = len(loaded["features"])
    if len(loaded["mean"]) != size or len(loaded["inv_cov"]) != size or any(len(r) != size for r in loaded["inv_cov"]):
        raise ValueError(f"{path}: mean and inv_cov do not match the {size} features")
    BACKEND, _whiten = "python", None
    if (folder / "model.onnx").is_file():
        BACKEND, _whiten = "onnx", _onnx(folder / "model.onnx")
    elif (folder / "model.pkl").is_file():
        BACKEND, _whiten = "scikit-learn", _pickle(folder / "model.pkl")
    model = loaded
    pinned = os.environ.get("EDGEGEN_MODELS", "").split(",")[0].split("@")[0].strip()
    MODEL_VERSION = pinned or f"{loaded['name']}:{loaded['version']}"
    log.info("loaded %s from %s (%s)", MODEL_VERSION, folder, BACKEND)


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
    rows = [_features(item, i) for i, item in enumerate(items)]
    scores = _whiten(rows) if _whiten is not None and rows else [_distance(r) for r in rows]
    results = []
    for item, score in zip(items, scores, strict=True):
        result: dict[str, Any] = {"anomaly": score > model["threshold"], "score": round(score, 3),
                                  "threshold": model["threshold"], "modelVersion": MODEL_VERSION}
        if isinstance(item, dict) and "timeCreated" in item:
            result["timeCreated"] = item["timeCreated"]
        results.append(result)
    return results[0] if single else results
