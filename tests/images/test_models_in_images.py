"""`edgegen build` puts the pinned model bytes into the image and checks them there; other bytes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.images import Engine
from edgegen.models.registry import Registry
from tests.images.conftest import write_module, write_solution
from tests.support.cli import CliRunner

pytestmark = [pytest.mark.integration]


@pytest.fixture
def engine(docker_host: str) -> Engine:
    with Engine.connect({"DOCKER_HOST": docker_host}) as e:
        yield e


def solution(tmp_path: Path, dockerfile: str) -> tuple[Path, Registry]:
    sol = tmp_path / "sol"
    write_solution(sol, {"scorer": "${MODULES.scorer}"}, {})
    folder = write_module(sol, "scorer", repository="localhost:5000/NAME", dockerfile=dockerfile,
                          files={"evil.bin": "not the model\n"})
    spec = json.loads((folder / "module.json").read_text())
    spec["models"] = ["weights"]
    (folder / "module.json").write_text(json.dumps(spec))
    reg = Registry(sol / ".models")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "w.bin").write_bytes(b"\x00weights\xff")
    (tmp_path / "bundle" / "labels.txt").write_text("ok\nhot\n")
    reg.register(tmp_path / "bundle", "weights")
    return sol, reg


def build(sol: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch, cli: CliRunner) -> tuple[int, str]:
    monkeypatch.chdir(sol)
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    code, out, err = cli(["build", "--output", "json"])
    return code, out + err


def test_models_are_baked_in_and_verified(tmp_path: Path, docker_host: str, engine: Engine,
                                          monkeypatch: pytest.MonkeyPatch, cli: CliRunner) -> None:
    sol, _ = solution(tmp_path, "FROM scratch\nENV AML_APP_ROOT=/srv\nCOPY azureml-models/ /srv/azureml-models/\n")
    code, out = build(sol, docker_host, monkeypatch, cli)
    assert code == 0, out
    assert "weights:1 (bundle) sha256" in out and "verified in the image" in out
    files = dict(engine.read_tree("localhost:5000/scorer:0.1.0-amd64", "/srv/azureml-models"))
    assert files["weights/1/bundle/w.bin"] == b"\x00weights\xff"
    assert not (sol / "modules" / "scorer" / "azureml-models").exists()  # staging removed


def test_an_image_with_other_model_bytes_is_refused(tmp_path: Path, docker_host: str, engine: Engine,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    cli: CliRunner) -> None:
    sol, _ = solution(tmp_path, "FROM scratch\nENV AML_APP_ROOT=/srv\nCOPY azureml-models/ /srv/azureml-models/\n"
                                "COPY evil.bin /srv/azureml-models/weights/1/bundle/w.bin\n")
    code, out = build(sol, docker_host, monkeypatch, cli)
    assert code == 1 and "was refused" in out and "differs from the registry" in out, out
    assert engine.image("localhost:5000/scorer:0.1.0-amd64") is None  # the tag is gone


def test_a_dockerfile_that_does_not_copy_the_models_is_refused_before_building(
        tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch,
        cli: CliRunner) -> None:
    sol, _ = solution(tmp_path, "FROM scratch\nCOPY evil.bin /evil.bin\n")
    code, out = build(sol, docker_host, monkeypatch, cli)
    assert code == 1 and "does not copy azureml-models/" in out, out


def test_a_corrupted_registry_blob_is_refused(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch,
                                              cli: CliRunner) -> None:
    sol, reg = solution(tmp_path, "FROM scratch\nENV AML_APP_ROOT=/srv\nCOPY azureml-models/ /srv/azureml-models/\n")
    blob = reg.blob_path(next(f.sha256 for f in reg.get("weights").files if f.path == "w.bin"))
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    code, out = build(sol, docker_host, monkeypatch, cli)
    assert code == 1 and "corrupted" in out, out
