"""The inference module's training script and the sample model it produced; the module's path resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.modules.conftest import MODULES, load_file

train = load_file("inference_train_under_test", MODULES / "inference" / "train.py")
main = load_file("inference_main_under_test", MODULES / "inference" / "main.py")


def test_resolve_path_relative_to_module_folder(tmp_path: Path) -> None:
    assert main.resolve_path(None, "model", tmp_path) == tmp_path / "model"
    assert main.resolve_path("m/v1", "model", tmp_path) == tmp_path / "m" / "v1"
    assert main.resolve_path(str(tmp_path / "abs"), "model", Path("/elsewhere")) == tmp_path / "abs"


def test_invert_and_training_are_deterministic_and_separate_anomalies() -> None:
    inv = train.invert([[4.0, 2.0], [2.0, 3.0]])
    assert [v for row in inv for v in row] == pytest.approx([0.375, -0.25, -0.25, 0.5])
    with pytest.raises(ValueError, match="singular"):
        train.invert([[1.0, 2.0], [2.0, 4.0]])
    model = train.train(seed=11, samples=4000)
    assert model == train.train(seed=11, samples=4000)
    assert model["metrics"]["recall"] > 0.9 and model["metrics"]["precision"] > 0.9


def test_committed_model_matches_training_script() -> None:
    committed = json.loads((MODULES / "inference" / "model" / "model.json").read_text())
    assert committed == json.loads(json.dumps(train.train(seed=committed["training"]["seed"],
                                                          samples=committed["training"]["samples"])))
