"""The inference module's pure parts: entry-script I/O shaping, path resolution, and the training script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.modules.conftest import MODULES, load_file

entry = load_file("inference_entry_under_test", MODULES / "inference" / "entry.py")
train = load_file("inference_train_under_test", MODULES / "inference" / "train.py")


def test_resolve_path_relative_to_module_folder(tmp_path: Path) -> None:
    assert entry.resolve_path(None, "model", tmp_path) == tmp_path / "model"
    assert entry.resolve_path("m/v1", "model", tmp_path) == tmp_path / "m" / "v1"
    assert entry.resolve_path(str(tmp_path / "abs"), "model", Path("/elsewhere")) == tmp_path / "abs"


@pytest.mark.parametrize(("body", "content_type", "sniff", "expected"), [
    (b'{"a": 1}', "application/json", False, '{"a": 1}'),
    (b'{"a": 1}', "application/json; charset=utf-8", False, '{"a": 1}'),
    (b'[1]', "application/vnd.api+json", False, "[1]"),
    (b"\x00\x01", "application/octet-stream", False, b"\x00\x01"),
    (b"plain", "text/plain", True, b"plain"),
    (b"plain", None, True, "plain"),
    (b"\xff", None, True, b"\xff"),
    (b"plain", None, False, b"plain"),
])
def test_prepare_input(body: bytes, content_type: str | None, sniff: bool, expected: object) -> None:
    assert entry.prepare_input(body, content_type, sniff_text=sniff) == expected


def test_prepare_input_rejects_declared_json_that_is_not() -> None:
    with pytest.raises(entry.InvalidInput, match="not valid JSON"):
        entry.prepare_input(b"{nope", "application/json")
    with pytest.raises(entry.InvalidInput, match="not valid JSON"):
        entry.prepare_input(b"\xff\xfe", "application/json")


class Arrayish:
    def tolist(self) -> list[int]:
        return [1, 2]


def test_encode_result() -> None:
    assert entry.encode_result({"a": 1}) == (b'{"a": 1}', "application/json")
    assert entry.encode_result('{"already": "json"}') == (b'{"already": "json"}', "application/json")
    assert entry.encode_result("plain text") == (b'"plain text"', "application/json")
    assert entry.encode_result(b"\x00") == (b"\x00", "application/octet-stream")
    assert entry.encode_result(Arrayish()) == (b"[1, 2]", "application/json")
    with pytest.raises(TypeError, match="not JSON serializable"):
        entry.encode_result(object())
    assert entry.result_as_json_value(b"\x00") == {"base64": "AA=="}


def test_load_entry_script_requires_init_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", "unchanged")  # restored afterwards: the loader exports it
    script = tmp_path / "half.py"
    script.write_text("def run(raw):\n    return raw\n")
    with pytest.raises(AttributeError, match="no init"):
        entry.load_entry_script(script, tmp_path)
    with pytest.raises(FileNotFoundError, match="ENTRY_SCRIPT"):
        entry.load_entry_script(tmp_path / "missing.py", tmp_path)


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
