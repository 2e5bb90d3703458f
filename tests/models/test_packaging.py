"""`edgegen add NAME --entry-script --model`: a module from what the user has; conda files become pip pins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import amlhost
import pytest

from edgegen.generator.scaffold import new_solution
from edgegen.models.errors import ModelError
from edgegen.models.packaging import add_inference_module, conda_to_requirements
from edgegen.models.registry import Registry, SolutionModels
from edgegen.pipeline import genconfig

CONDA = """
name: project_environment
channels: [conda-forge]
dependencies:
  - python=3.11.7
  - numpy=1.26
  - conda-forge::scikit-learn=1.5.2=py311h_0
  - pandas>=2.1
  - pytorch==2.3.0
  - joblib
  - pip
  - pip:
      - azureml-defaults
      - inference-schema[numpy-support]==1.8
      - requests==2.32.3
"""


def test_conda_file_becomes_pip_requirements() -> None:
    out = conda_to_requirements(CONDA, "env.yml")
    assert out.requirements == ["numpy==1.26.*", "scikit-learn==1.5.2", "pandas>=2.1", "torch==2.3.0", "joblib",
                                "requests==2.32.3"]
    assert any("3.11" in n for n in out.notes) and any("joblib is not pinned" in n for n in out.notes)
    assert any("azureml-defaults" in n for n in out.notes)


def test_unconvertible_conda_packages_are_named() -> None:
    with pytest.raises(ModelError, match="cannot convert 2 conda dependencies") as exc:
        conda_to_requirements("dependencies:\n  - cudatoolkit=11.8\n  - mkl\n  - numpy=1.26\n", "env.yml")
    assert "'cudatoolkit=11.8'" in exc.value.message and "'mkl'" in exc.value.message
    with pytest.raises(ModelError, match="dependencies"):
        conda_to_requirements("name: x\n", "env.yml")
    with pytest.raises(ModelError, match="invalid YAML") as exc:
        conda_to_requirements("dependencies: [\n", "env.yml")


def solution(tmp_path: Path) -> tuple[Path, Registry]:
    sol = new_solution(tmp_path / "sol", module=None)
    reg = Registry(sol / ".models")
    (tmp_path / "m.onnx").write_bytes(b"onnx-bytes")
    reg.register(tmp_path / "m.onnx", "detector", framework="onnx")
    (tmp_path / "w.pkl").write_bytes(b"pickle-bytes")
    reg.register(tmp_path / "w.pkl", "weights", framework="scikit-learn")
    return sol, reg


def test_add_with_entry_script_and_conda(tmp_path: Path) -> None:
    sol, reg = solution(tmp_path)
    script = tmp_path / "score.py"
    script.write_text("from modelpath import Model\n\ndef init():\n    global path\n"
                      "    path = Model.get_model_path('weights')\n\ndef run(raw):\n    return {'path': path}\n")
    conda = tmp_path / "env.yml"
    conda.write_text(CONDA)
    result, notes = add_inference_module(sol, "scorer", registry=reg, models=["weights"], entry_script=script,
                                         conda_file=conda, environ={})
    folder = result.module_dir
    assert {p.name for p in folder.iterdir()} >= {"score.py", "modelpath.py", "main.py", "module.json",
                                                   "requirements.txt", "Dockerfile.amd64"}
    assert json.loads((folder / "module.json").read_text())["models"] == ["weights:1"]
    reqs = (folder / "requirements.txt").read_text()
    assert "azure-iot-device==2.14.0" in reqs and "scikit-learn==1.5.2" in reqs and notes
    assert "AML_APP_ROOT=/app" in (folder / "Dockerfile.amd64").read_text()
    # the host is the inference module's, byte for byte: the amlhost that `edgegen serve` imports, and its main.py
    host = Path(amlhost.__file__).resolve().parent
    assert {p.relative_to(host).as_posix(): p.read_bytes() for p in host.rglob("*") if p.is_file()
            and "__pycache__" not in p.parts} == {p.relative_to(folder / "amlhost").as_posix(): p.read_bytes()
                                                   for p in (folder / "amlhost").rglob("*") if p.is_file()}
    for name in ("main.py", "outputs.py", "modelpath.py"):
        assert (folder / name).read_bytes() == (host.parent / name).read_bytes()
    assert "onnxruntime" not in reqs and "Werkzeug==" in reqs and "inference-schema==" in reqs
    # genconfig pins the module's models from module.json
    manifest = genconfig(cwd=sol, write=False, validate=False, environ={}, models=SolutionModels(sol, {})).manifest
    env = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["scorer"]["env"]
    assert env["EDGEGEN_MODELS"]["value"] == reg.pin("weights", 1)
    with pytest.raises(Exception, match="already exists"):
        add_inference_module(sol, "scorer", registry=reg, models=["weights"], entry_script=script, environ={})


@pytest.mark.process
def test_generic_onnx_script_serves_a_converted_model(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    sol, reg = solution(tmp_path)
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    est = LinearRegression().fit(X, X @ [2.0, -1.0] + 3)
    (tmp_path / "lin.onnx").write_bytes(to_onnx(est, X[:1].astype(np.float32)).SerializeToString())
    reg.register(tmp_path / "lin.onnx", "linear", framework="onnx")
    result, _ = add_inference_module(sol, "onnxscorer", registry=reg, models=["linear"], environ={})
    assert (result.module_dir / "score_onnx.py").is_file()
    assert "onnxruntime" in (result.module_dir / "requirements.txt").read_text()
    # run the scaffolded script in its own interpreter against the layout a device would give it
    from edgegen.models.layout import lay_out

    env = lay_out(reg, [reg.get("linear").pinned()], tmp_path / "app")
    code = ("import json, score_onnx as s; s.init(); "
            "print(json.dumps(s.run(json.dumps({'data': [[1.0, 2.0], [3.0, 4.0]]}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=result.module_dir, env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    values = np.asarray(json.loads(out)["variable"]).ravel()
    assert np.allclose(values, [2 * 1 - 2 + 3, 2 * 3 - 4 + 3], atol=1e-4)


def test_refusals_write_nothing(tmp_path: Path) -> None:
    sol, reg = solution(tmp_path)
    with pytest.raises(ModelError, match="not registered"):
        add_inference_module(sol, "x", registry=reg, models=["nope"], environ={})
    with pytest.raises(ModelError, match="generic ONNX script"):
        add_inference_module(sol, "x", registry=reg, models=["weights"], environ={})
    assert not (sol / "modules" / "x").exists()
