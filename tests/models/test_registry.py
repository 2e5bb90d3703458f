"""The registry: versions, tags, content addressing, bad names, missing files, corrupted blobs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from edgegen.models.errors import ModelError
from edgegen.models.modelpath import entry_digest
from edgegen.models.refs import parse_ref
from edgegen.models.registry import Registry


def blobs(reg: Registry) -> list[Path]:
    return sorted(p for p in (reg.root / "blobs").rglob("*") if p.is_file())


def test_versions_increment_and_same_bytes_are_kept_once(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"weights-1")
    v1, created = reg.register(model, "anomaly", tags={"area": "line-1"}, properties={"auc": "0.9"},
                               description="first", framework="ScikitLearn")
    assert created and v1.version == 1 and v1.framework == "scikit-learn"
    assert v1.sha256 == hashlib.sha256(b"weights-1").hexdigest()
    v2, _ = reg.register(model, "anomaly")
    assert v2.version == 2 and v2.sha256 == v1.sha256
    assert len(blobs(reg)) == 1  # same bytes, one blob
    model.write_bytes(b"weights-2")
    _v3, _ = reg.register(model, "anomaly", tags={"area": "line-2"})
    assert [m.version for m in reg.versions("anomaly")] == [1, 2, 3]
    assert len(blobs(reg)) == 2
    assert reg.get("anomaly").version == 3 and reg.get("anomaly:1").description == "first"
    assert [m.id for m in reg.list(tags={"area": "line-1"})] == ["anomaly:1"]
    assert [m.id for m in reg.list(tags={"area": None})] == ["anomaly:1", "anomaly:3"]
    assert reg.pin("anomaly", 1) == f"anomaly:1@sha256:{v1.sha256}"
    for blob in blobs(reg):
        assert not os.stat(blob).st_mode & 0o222  # read-only


def test_if_changed_reuses_the_latest_identical_version(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    model = tmp_path / "m.json"
    model.write_text("{}")
    first, created = reg.register(model, "m", if_changed=True)
    again, created_again = reg.register(model, "m", if_changed=True)
    assert created and not created_again and again.version == first.version == 1
    _, created_tagged = reg.register(model, "m", tags={"x": "1"}, if_changed=True)
    assert created_tagged


def test_folder_model_digest_matches_the_deployed_tree(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"a")
    (folder / "sub" / "b.bin").write_bytes(b"b")
    (folder / "sub" / "dup.bin").write_bytes(b"a")
    model, _ = reg.register(folder, "bundle")
    assert model.kind == "folder" and model.entry == "bundle"
    assert sorted(f.path for f in model.files) == ["a.bin", "sub/b.bin", "sub/dup.bin"]
    assert model.sha256 == entry_digest(folder)
    assert len(blobs(reg)) == 2  # a.bin and sub/dup.bin share a blob
    out = reg.download("bundle:1", tmp_path / "out")
    assert out == tmp_path / "out" / "bundle" and entry_digest(out) == model.sha256
    with pytest.raises(ModelError, match="already exists"):
        reg.download("bundle:1", tmp_path / "out")
    assert reg.download("bundle:1", tmp_path / "out", exist_ok=True) == out


@pytest.mark.parametrize("name", ["", "-x", "has space", "a.b", "x" * 256, "ünï", "a/b", "a:b"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    f = tmp_path / "m"
    f.write_text("x")
    with pytest.raises(ModelError, match="not valid"):
        Registry(tmp_path / "reg").register(f, name)


def test_missing_file_symlink_and_empty_folder_are_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    with pytest.raises(ModelError, match="does not exist"):
        reg.register(tmp_path / "nope.pkl", "m")
    target = tmp_path / "real"
    target.write_text("x")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ModelError, match="symbolic link"):
        reg.register(tmp_path / "link", "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no files"):
        reg.register(tmp_path / "empty", "m")
    folder = tmp_path / "withlink"
    folder.mkdir()
    (folder / "l").symlink_to(target)
    with pytest.raises(ModelError, match="symbolic link"):
        reg.register(folder, "m")
    assert reg.names() == []


def test_unknown_model_version_and_digest(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    f = tmp_path / "m"
    f.write_text("x")
    reg.register(f, "m")
    with pytest.raises(ModelError, match="not registered") as exc:
        reg.get("other")
    assert "edgegen model register" in (exc.value.hint or "")
    with pytest.raises(ModelError, match="no version 7"):
        reg.get("m:7")
    with pytest.raises(ModelError, match="pins sha256"):
        reg.get(parse_ref("m:1@sha256:" + "0" * 64))


def test_corrupted_blob_is_detected_not_served(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    f = tmp_path / "m.pkl"
    f.write_bytes(b"good bytes")
    model, _ = reg.register(f, "m")
    blob = reg.blob_path(model.sha256)
    blob.chmod(0o644)
    blob.write_bytes(b"evil bytes")
    with pytest.raises(ModelError, match="corrupted") as exc:
        reg.download("m", tmp_path / "out")
    assert exc.value.location is not None and exc.value.location.file == str(blob)
    assert not (tmp_path / "out" / "m.pkl").exists()
    assert [(m.id, bool(problem)) for m, problem in reg.verify()] == [("m:1", True)]
    blob.unlink()
    with pytest.raises(ModelError, match="missing"):
        reg.download("m", tmp_path / "out")


def test_delete_collects_unused_blobs_and_never_reuses_versions(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    reg.register(a, "m")
    reg.register(b, "m")
    reg.register(a, "other")
    assert [m.id for m in reg.delete("m:2")] == ["m:2"]
    assert len(blobs(reg)) == 1  # B's blob went, A's is still used
    v3, _ = reg.register(b, "m")
    assert v3.version == 3
    assert [m.id for m in reg.delete("m")] == ["m:1", "m:3"]
    assert reg.versions("m") == [] and [m.id for m in reg.list()] == ["other:1"]
    with pytest.raises(ModelError, match="not registered"):
        reg.delete("m")


def test_damaged_entry_names_its_file(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    f = tmp_path / "m"
    f.write_text("x")
    reg.register(f, "m")
    meta = reg.root / "models" / "m" / "1.json"
    data = json.loads(meta.read_text())
    del data["files"]
    meta.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="damaged") as exc:
        reg.get("m")
    assert exc.value.location is not None and exc.value.location.file == str(meta)


def test_registry_path_from_the_solution_env(tmp_path: Path) -> None:
    assert Registry.for_solution(tmp_path, {}).root == tmp_path / ".models"
    assert Registry.for_solution(tmp_path, {"MODEL_REGISTRY_PATH": "reg"}).root == tmp_path / "reg"
    assert Registry.for_solution(tmp_path, {"MODEL_REGISTRY_PATH": "/abs"}).root == Path("/abs")
