"""scikit-learn → ONNX (skl2onnx), proven on samples, registered as the model's next version.

``convert_to_onnx(registry, "name[:version]", samples.jsonl)``:
1. takes the registered model's bytes (verified), finds its one ``.pkl``/``.pickle``/``.joblib`` file (a folder
   model keeps its other files unchanged) and loads it with joblib;
2. names every estimator of the (possibly nested) pipeline that skl2onnx has no converter for, and stops there;
3. converts with ``skl2onnx.to_onnx`` (float32 inputs; classifiers give plain arrays, no ZipMap);
4. runs both on the samples — scikit-learn in float64, onnxruntime in float32 — and requires every output to
   agree: labels exactly, numbers within ``|onnx - sklearn| <= atol + rtol * |sklearn|`` (numpy's ``allclose``);
5. registers the result under the same name with framework ``onnx``, ``derivedFrom`` the source and the
   agreement figures as properties.

Loading a pickle runs code from it: convert only models you registered yourself.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.models.errors import Location, ModelError
from edgegen.models.registry import ModelVersion, Registry

__all__ = ["ConvertResult", "convert_to_onnx", "load_rows", "unsupported_estimators"]

ESTIMATOR_SUFFIXES = (".pkl", ".pickle", ".joblib")
MAX_SAMPLE_BYTES = 64 * 1024 * 1024
MAX_ROWS = 100_000


@dataclass
class ConvertResult:
    source: str
    estimator: str
    model: ModelVersion
    rows: int
    rtol: float
    atol: float
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def checks(self) -> list[str]:
        return [f"{o['name']}: {o['check']}" for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "estimator": self.estimator, "registered": self.model.to_dict(),
                "samples": self.rows, "rtol": self.rtol, "atol": self.atol, "outputs": self.outputs}


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(f"ONNX conversion needs {module}, which is not installed",
                         hint="pip install 'edgegen[models]' (scikit-learn, skl2onnx, onnxruntime, numpy)") from None


def load_rows(path: Path, n_features: int | None = None) -> Any:
    """JSON Lines → a float64 matrix. Each line: a row (list of numbers), a list of rows, or {"data": rows}."""
    np = _need("numpy")
    if path.stat().st_size > MAX_SAMPLE_BYTES:
        raise ModelError(f"{path} is larger than {MAX_SAMPLE_BYTES // (1024 * 1024)} MB",
                         location=Location(file=str(path)), hint="a few hundred representative rows are enough")
    rows: list[list[float]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = Location(file=str(path), line=lineno)
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise ModelError(f"not JSON: {exc}", location=where) from None
            if isinstance(value, dict):
                if "data" not in value:
                    raise ModelError('an object line needs "data": rows', location=where)
                value = value["data"]
            batch = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
            for row in batch:
                if (not isinstance(row, list) or not row
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)):
                    raise ModelError(f"expected a row of numbers, got {json.dumps(row)[:80]}", location=where,
                                     hint="each line: [1.0, 2.0, …], [[…], […]] or {\"data\": [[…]]}")
                if n_features is not None and len(row) != n_features:
                    raise ModelError(f"row of {len(row)} numbers; the model takes {n_features}", location=where)
                rows.append([float(v) for v in row])
                if len(rows) > MAX_ROWS:
                    raise ModelError(f"more than {MAX_ROWS} rows", location=where)
    if not rows:
        raise ModelError(f"{path} holds no sample rows", location=Location(file=str(path)))
    if len({len(r) for r in rows}) != 1:
        raise ModelError(f"{path}: rows have different lengths", location=Location(file=str(path)))
    return np.asarray(rows, dtype=np.float64)


def unsupported_estimators(estimator: Any) -> list[str]:
    """Names (with their pipeline path) of the estimators skl2onnx has no converter for."""
    skl2onnx = _need("skl2onnx")

    def known(est: Any) -> bool:
        try:
            skl2onnx.get_model_alias(type(est))
        except RuntimeError:  # "Unable to find alias for model …": no converter registered
            return False
        return True

    def walk(est: Any, path: str) -> list[str]:
        name = type(est).__name__
        here = f"{path}{name}"
        steps = getattr(est, "steps", None)
        if name == "Pipeline" and steps:
            return [u for step_name, step in steps if step not in (None, "passthrough")
                    for u in walk(step, f"{path}Pipeline[{step_name}] ")]
        transformers = getattr(est, "transformer_list", None) or getattr(est, "transformers_", None)
        if name in ("FeatureUnion", "ColumnTransformer") and transformers:
            return [u for item in transformers for u in walk(item[1], f"{path}{name}[{item[0]}] ")
                    if not isinstance(item[1], str)]
        return [] if known(est) else [here]

    return walk(estimator, "")


def _find_estimator(model: ModelVersion) -> str:
    candidates = [f.path for f in model.files if f.path.lower().endswith(ESTIMATOR_SUFFIXES)]
    if len(candidates) != 1:
        raise ModelError(
            f"{model.id}: expected exactly one .pkl/.pickle/.joblib file, found "
            f"{', '.join(candidates) if candidates else 'none'}",
            hint="register the scikit-learn estimator saved with joblib.dump or pickle (framework scikit-learn)")
    return candidates[0]


def _outputs(estimator: Any, X: Any) -> list[tuple[str, Any]]:
    """scikit-learn's own answers, in the order skl2onnx emits its outputs."""
    if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_"):
        return [("label", estimator.predict(X)), ("probabilities", estimator.predict_proba(X))]
    if hasattr(estimator, "predict"):
        return [("variable", estimator.predict(X))]
    if hasattr(estimator, "transform"):
        return [("variable", estimator.transform(X))]
    raise ModelError(f"{type(estimator).__name__} has neither predict nor transform")


def convert_to_onnx(registry: Registry, ref: str, samples: Path, *, rtol: float = 1e-4, atol: float = 1e-4,
                    opset: int | None = None) -> ConvertResult:
    np = _need("numpy")
    joblib = _need("joblib")
    skl2onnx = _need("skl2onnx")
    ort = _need("onnxruntime")
    source = registry.get(ref)
    if source.framework not in ("scikit-learn", "custom"):
        raise ModelError(f"{source.id} is framework {source.framework!r}; only scikit-learn models convert to ONNX",
                         hint="register the estimator with --framework scikit-learn")
    rel = _find_estimator(source)
    with tempfile.TemporaryDirectory(prefix="edgegen-convert-") as tmp:
        work = Path(tmp)
        entry = registry.write_entry(source, work / "src")
        pkl = entry / rel if source.kind == "folder" else entry
        try:
            estimator = joblib.load(pkl)
        except Exception as exc:
            raise ModelError(f"{source.id}: cannot load {rel}: {type(exc).__name__}: {exc}",
                             hint="the model must be a scikit-learn estimator saved with joblib or pickle, loadable "
                                  "with the scikit-learn installed here") from None
        name = type(estimator).__name__
        missing = unsupported_estimators(estimator)
        if missing:
            raise ModelError(f"{source.id}: skl2onnx cannot convert {', '.join(missing)}",
                             hint="skl2onnx has no converter for these estimators (see skl2onnx.supported_converters"
                                  "()); replace them or keep serving the pickle")
        X = load_rows(samples, getattr(estimator, "n_features_in_", None))
        options = {"zipmap": False} if hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_") else None
        try:
            onx = skl2onnx.to_onnx(estimator, X[:1].astype(np.float32), target_opset=opset, options=options)
        except Exception as exc:
            raise ModelError(f"{source.id}: skl2onnx failed on {name}: {type(exc).__name__}: {str(exc)[:400]}",
                             hint="see skl2onnx's documentation for this estimator's options") from None
        session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})
        want = _outputs(estimator, X)
        outputs = _agreement(np, want, got, [o.name for o in session.get_outputs()], rtol, atol, source.id, samples)
        target_dir = work / "out"
        if source.kind == "folder":
            shutil.copytree(entry, target_dir / entry.name)
            (target_dir / entry.name / rel).unlink()
            out_file = target_dir / entry.name / Path(rel).with_suffix(".onnx")
            register_path = target_dir / entry.name
        else:
            out_file = target_dir / Path(rel).with_suffix(".onnx").name
            register_path = out_file
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_bytes(onx.SerializeToString())
        worst = max(o["maxAbsError"] for o in outputs)
        properties = {**source.properties, "convertedFrom": source.id, "converter": f"skl2onnx {skl2onnx.__version__}",
                      "agreement.samples": str(len(X)), "agreement.rtol": repr(rtol), "agreement.atol": repr(atol),
                      "agreement.maxAbsError": f"{worst:.3g}"}
        model, _ = registry.register(register_path, source.name, tags=source.tags, properties=properties,
                                     description=source.description, framework="onnx",
                                     framework_version=f"opset {onx.opset_import[0].version}", derived_from=source.id)
    return ConvertResult(source.id, name, model, len(X), rtol, atol, outputs)


def _agreement(np: Any, want: list[tuple[str, Any]], got: list[Any], names: list[str], rtol: float, atol: float,
               source: str, samples: Path) -> list[dict[str, Any]]:
    if len(got) < len(want):
        raise ModelError(f"{source}: the ONNX model has {len(got)} outputs, scikit-learn {len(want)}")
    out = []
    for (kind, expected), actual, name in zip(want, got, names, strict=False):
        expected = np.asarray(expected)
        actual = np.asarray(actual).reshape(expected.shape) if np.asarray(actual).size == expected.size else actual
        if kind == "label":
            differ = int(np.sum(np.asarray(actual).ravel() != expected.ravel()))
            if differ:
                raise ModelError(f"{source}: ONNX labels differ from scikit-learn's on {differ} of {len(expected)} "
                                 f"samples", location=Location(file=str(samples)),
                                 hint="the conversion is not faithful for these inputs; it was not registered")
            out.append({"name": name, "maxAbsError": 0.0, "check": f"labels identical on {len(expected)} samples"})
            continue
        a = np.asarray(actual, dtype=np.float64)
        if a.shape != expected.shape:
            raise ModelError(f"{source}: output {name} has shape {a.shape}, scikit-learn's {expected.shape}")
        err = np.abs(a - expected)
        bound = atol + rtol * np.abs(expected)
        worst = float(err.max()) if err.size else 0.0
        bad = int(np.sum(err > bound))
        if bad:
            raise ModelError(
                f"{source}: output {name} differs from scikit-learn's beyond rtol={rtol:g}, atol={atol:g} in {bad} "
                f"value(s) (largest difference {worst:.3g})", location=Location(file=str(samples)),
                hint="not registered; inspect the samples, or pass wider --rtol/--atol if float32 precision is "
                     "acceptable for this model")
        out.append({"name": name, "maxAbsError": worst,
                    "check": f"within rtol={rtol:g}, atol={atol:g} on {len(expected)} samples "
                             f"(largest difference {worst:.3g})"})
    return out
