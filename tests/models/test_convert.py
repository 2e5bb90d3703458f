"""ONNX conversion: several estimator kinds agree with scikit-learn; unsupported ones fail clearly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.support.cli import CliRunner

np = pytest.importorskip("numpy")
pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

from sklearn.covariance import EllipticEnvelope  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402

from edgegen.models.convert import convert_to_onnx, load_rows  # noqa: E402
from edgegen.models.errors import ModelError  # noqa: E402
from edgegen.models.registry import Registry  # noqa: E402

RNG = np.random.RandomState(3)
X = RNG.normal(size=(200, 4)) * [5, 1, 10, 2] + [60, 10, 20, 25]
Y_CLASS = (X[:, 0] + 3 * X[:, 1] > 90).astype(int)
Y_REG = X @ [0.5, -1.0, 0.1, 2.0]


def samples(tmp_path: Path) -> Path:
    path = tmp_path / "samples.jsonl"
    lines = [json.dumps(list(r)) for r in X[:40]]
    lines.append(json.dumps({"data": [list(r) for r in X[40:60]]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def register(tmp_path: Path, estimator: object, name: str, folder: bool = False) -> Registry:
    reg = Registry(tmp_path / "reg")
    if folder:
        target = tmp_path / "bundle"
        target.mkdir()
        (target / "labels.json").write_text('["ok", "hot"]')
        (target / "model.pkl").write_bytes(pickle.dumps(estimator))
    else:
        target = tmp_path / "model.pkl"
        target.write_bytes(pickle.dumps(estimator))
    reg.register(target, name, framework="scikit-learn", tags={"team": "edge"})
    return reg


@pytest.mark.parametrize("kind", ["classifier", "regressor", "transformer"])
def test_estimators_convert_and_agree(tmp_path: Path, kind: str) -> None:
    estimator, y = {
        "classifier": (Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]), Y_CLASS),
        "regressor": (DecisionTreeRegressor(max_depth=4, random_state=0), Y_REG),
        "transformer": (PCA(whiten=True), None),
    }[kind]
    estimator.fit(X, y)
    reg = register(tmp_path, estimator, kind, folder=kind == "classifier")
    result = convert_to_onnx(reg, kind, samples(tmp_path))
    assert result.rows == 60 and result.model.version == 2 and result.model.framework == "onnx"
    assert result.model.derived_from == f"{kind}:1" and result.model.tags == {"team": "edge"}
    assert result.model.properties["convertedFrom"] == f"{kind}:1"
    files = {f.path for f in result.model.files}
    assert files == ({"labels.json", "model.onnx"} if kind == "classifier" else {"model.onnx"})
    if kind == "classifier":
        assert [o["name"] for o in result.outputs] == ["label", "probabilities"]
        assert result.outputs[0]["check"].startswith("labels identical")
    assert all(o["maxAbsError"] <= 1e-5 + 1e-4 * 200 for o in result.outputs)
    # the registered ONNX bytes really are what was checked: score them again
    import onnxruntime as ort

    out = reg.download(f"{kind}:2", tmp_path / "dl")
    onnx_file = out / "model.onnx" if out.is_dir() else out
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X[:5].astype(np.float32)})[0]
    want = estimator.predict(X[:5]) if kind != "transformer" else estimator.transform(X[:5])
    assert np.allclose(np.asarray(got, dtype=float).reshape(np.shape(want)), want, rtol=1e-4, atol=1e-4)


def test_unsupported_estimator_fails_clearly_and_registers_nothing(tmp_path: Path) -> None:
    pipe = Pipeline([("scale", StandardScaler()), ("detector", EllipticEnvelope(random_state=0))]).fit(X)
    reg = register(tmp_path, pipe, "envelope")
    with pytest.raises(ModelError, match=r"cannot convert Pipeline\[detector\] EllipticEnvelope"):
        convert_to_onnx(reg, "envelope", samples(tmp_path))
    assert [m.id for m in reg.list()] == ["envelope:1"]


def test_disagreement_beyond_tolerance_is_refused(tmp_path: Path) -> None:
    reg = register(tmp_path, PCA(whiten=True).fit(X), "pca")
    with pytest.raises(ModelError, match="beyond rtol=0, atol=0"):
        convert_to_onnx(reg, "pca", samples(tmp_path), rtol=0.0, atol=0.0)  # float32 cannot be exact
    assert [m.id for m in reg.list()] == ["pca:1"]


def test_bad_sample_data_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2, 3, 4]\n[1, 2, true, 4]\n")
    with pytest.raises(ModelError, match="row of numbers") as exc:
        load_rows(bad, 4)
    assert exc.value.location is not None and exc.value.location.line == 2
    bad.write_text("[1, 2, 3]\n")
    with pytest.raises(ModelError, match="takes 4"):
        load_rows(bad, 4)
    bad.write_text("{oops\n")
    with pytest.raises(ModelError, match="not JSON"):
        load_rows(bad, 4)


def test_non_sklearn_models_are_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    (tmp_path / "m.onnx").write_bytes(b"x")
    reg.register(tmp_path / "m.onnx", "m", framework="onnx")
    with pytest.raises(ModelError, match="only scikit-learn"):
        convert_to_onnx(reg, "m", samples(tmp_path))


def test_cli_convert_json(tmp_path: Path, cli: CliRunner) -> None:
    register(tmp_path, PCA(whiten=True).fit(X), "pca")
    r = cli(["model", "convert", "pca", "--to", "onnx", "--sample-data", str(samples(tmp_path)),
             "--registry", str(tmp_path / "reg"), "--output", "json"])
    assert r.code == 0
    data = json.loads(r.out)
    assert data["registered"]["id"] == "pca:2" and data["samples"] == 60
