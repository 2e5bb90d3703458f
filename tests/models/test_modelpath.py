"""The standalone helper: Azure ML's layout, get_model_path, EDGEGEN_MODELS parsing and verification."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.models import modelpath
from edgegen.models.layout import lay_out
from edgegen.models.modelpath import ModelMismatch, PinnedModel, parse_models, prepare
from edgegen.models.registry import Registry

REPO = Path(__file__).resolve().parents[2]


def test_module_copy_is_identical() -> None:
    """modules/inference ships the same helper the scaffold writes."""
    assert (REPO / "modules" / "inference" / "modelpath.py").read_text() == Path(modelpath.__file__).read_text()


def two_models(tmp_path: Path) -> tuple[Registry, list[PinnedModel]]:
    reg = Registry(tmp_path / "reg")
    (tmp_path / "a.pkl").write_bytes(b"A")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "x.txt").write_text("x")
    reg.register(tmp_path / "a.pkl", "alpha")
    reg.register(tmp_path / "a.pkl", "alpha")
    reg.register(tmp_path / "bundle", "beta")
    return reg, [reg.get("alpha:2").pinned(), reg.get("beta").pinned()]


def test_layout_and_get_model_path_like_azure_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, pins = two_models(tmp_path)
    app = tmp_path / "app"
    env = lay_out(reg, pins, app)
    root = app / "azureml-models"
    assert env["AZUREML_MODEL_DIR"] == str(root)  # several models: the root
    assert (root / "alpha" / "2" / "a.pkl").read_bytes() == b"A"
    assert (root / "beta" / "1" / "bundle" / "x.txt").read_text() == "x"
    single = lay_out(reg, pins[:1], tmp_path / "one")
    assert single["AZUREML_MODEL_DIR"] == str(tmp_path / "one" / "azureml-models" / "alpha" / "2")
    assert not (tmp_path / "one" / "azureml-models" / "beta").exists()
    monkeypatch.setenv("AML_APP_ROOT", str(app))
    assert modelpath.Model.get_model_path("alpha") == str(root / "alpha" / "2" / "a.pkl")
    assert modelpath.get_model_path("beta", 1) == str(root / "beta" / "1" / "bundle")
    with pytest.raises(FileNotFoundError, match="not found in cache"):
        modelpath.get_model_path("gamma")
    with pytest.raises(ValueError, match="int"):
        modelpath.get_model_path("alpha", "2")  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gamma").write_text("local")
    assert modelpath.get_model_path("gamma") == "gamma"  # Azure ML's fallback: ./<name>


def test_prepare_verifies_and_sets_the_model_dir(tmp_path: Path) -> None:
    reg, pins = two_models(tmp_path)
    env = lay_out(reg, pins[:1], tmp_path / "app")
    environ = {"AML_APP_ROOT": env["AML_APP_ROOT"], "EDGEGEN_MODELS": env["EDGEGEN_MODELS"]}
    report = prepare(environ)
    assert environ["AZUREML_MODEL_DIR"] == env["AZUREML_MODEL_DIR"]
    assert report == [{"name": "alpha", "version": 2, "sha256": pins[0].sha256, "verified": True, "path": "a.pkl"}]
    laid = tmp_path / "app" / "azureml-models" / "alpha" / "2" / "a.pkl"
    laid.write_bytes(b"tampered")
    with pytest.raises(ModelMismatch, match="differs from the pinned"):
        prepare({"AML_APP_ROOT": env["AML_APP_ROOT"], "EDGEGEN_MODELS": env["EDGEGEN_MODELS"]})
    # laying out again repairs it from the registry
    lay_out(reg, pins[:1], tmp_path / "app")
    assert laid.read_bytes() == b"A"
    with pytest.raises(ModelMismatch, match="does not exist"):
        prepare({"AML_APP_ROOT": str(tmp_path / "nowhere"), "EDGEGEN_MODELS": env["EDGEGEN_MODELS"]})
    assert prepare({}) == []


def test_parse_models_errors() -> None:
    digest = "a" * 64
    assert parse_models(f" m:1@sha256:{digest} , n:2@sha256:{digest}") == [
        PinnedModel("m", 1, digest), PinnedModel("n", 2, digest)]
    for bad in ["m", "m:1", f"m:x@sha256:{digest}", f"m:1@sha256:{digest[:-1]}", f".m:1@sha256:{digest}"]:
        with pytest.raises(ValueError, match="entry 1"):
            parse_models(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_models(f"m:1@sha256:{digest},m:2@sha256:{digest}")


@given(st.text(max_size=200))
def test_parse_models_never_crashes(text: str) -> None:
    try:
        out = parse_models(text)
    except ValueError:
        return
    assert modelpath.format_models(out) == ",".join(i.strip() for i in text.split(",") if i.strip())


def test_folder_digest_ignores_where_it_lies(tmp_path: Path) -> None:
    for where in ("one", "two"):
        (tmp_path / where / "d").mkdir(parents=True)
        (tmp_path / where / "d" / "f").write_text("same")
    assert modelpath.entry_digest(tmp_path / "one") == modelpath.entry_digest(tmp_path / "two")
    os.rename(tmp_path / "two" / "d" / "f", tmp_path / "two" / "d" / "g")
    assert modelpath.entry_digest(tmp_path / "one") != modelpath.entry_digest(tmp_path / "two")
