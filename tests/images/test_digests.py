from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.images.digests import default_digest_file, load_digests, pin_manifest, record_digests
from edgegen.images.errors import ImageError
from edgegen.images.push import PushResult, split_reference
from tests.images.conftest import agent_template

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("localhost:5000/sensor:0.1.0-amd64", ("localhost:5000/sensor", "0.1.0-amd64")),
        ("localhost:5000/sensor", ("localhost:5000/sensor", "latest")),
        ("python:3.11", ("python", "3.11")),
    ],
)
def test_split_reference(ref: str, parts: tuple[str, str]) -> None:
    assert split_reference(ref) == parts


def test_record_merges_and_writes_atomically(tmp_path: Path) -> None:
    path = default_digest_file(tmp_path)
    assert load_digests(path) == {}
    record_digests(path, [PushResult("r.io/a:1-amd64", "r.io", D1, 0.1, True)], now=100.0)
    record_digests(
        path, [PushResult("r.io/b:1-amd64", "r.io", D2, 0.1, True), PushResult("r.io/c:1", "r.io", None, 0, False)]
    )
    loaded = load_digests(path)
    assert set(loaded) == {"r.io/a:1-amd64", "r.io/b:1-amd64"}
    assert loaded["r.io/a:1-amd64"].pinned == f"r.io/a@{D1}"
    assert loaded["r.io/a:1-amd64"].pushed_at == 100.0
    doc = json.loads(path.read_text())
    assert doc["images"]["r.io/b:1-amd64"]["pinned"] == f"r.io/b@{D2}"
    assert [p.name for p in path.parent.iterdir()] == ["digests.json"]  # no temp file left


def test_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = default_digest_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ImageError) as info:
        load_digests(path)
    assert info.value.location is not None and info.value.location.file == str(path)


def test_pin_manifest_pins_known_images_and_keeps_the_input(tmp_path: Path) -> None:
    path = default_digest_file(tmp_path)
    record_digests(path, [PushResult("r.io/a:1-amd64", "r.io", D1, 0.1, True)])
    manifest = agent_template({"a": "r.io/a:1-amd64", "pub": "mcr.microsoft.com/x:1", "fixed": f"r.io/z@{D2}"})
    manifest["modulesContent"]["$edgeAgent"]["properties.desired.modules.layered"] = {
        "settings": {"image": "r.io/a:1-amd64"}
    }
    pinned = pin_manifest(manifest, load_digests(path), required=["r.io/a:1-amd64"])
    agent = pinned["modulesContent"]["$edgeAgent"]
    mods = agent["properties.desired"]["modules"]
    assert mods["a"]["settings"]["image"] == f"r.io/a@{D1}"
    assert mods["pub"]["settings"]["image"] == "mcr.microsoft.com/x:1"
    assert mods["fixed"]["settings"]["image"] == f"r.io/z@{D2}"
    assert agent["properties.desired.modules.layered"]["settings"]["image"] == f"r.io/a@{D1}"
    assert agent["properties.desired"]["systemModules"]["edgeHub"]["settings"]["image"].endswith("hub:1.4")
    original = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["a"]["settings"]["image"]
    assert original == "r.io/a:1-amd64"


def test_pin_manifest_requires_a_digest_for_built_images() -> None:
    manifest = agent_template({"a": "r.io/a:1-amd64", "b": "r.io/b:1-amd64"})
    with pytest.raises(ImageError) as info:
        pin_manifest(manifest, {}, required=["r.io/a:1-amd64", "r.io/b:1-amd64"], source="manifests/x.json")
    assert "r.io/a:1-amd64, r.io/b:1-amd64" in info.value.message
    assert info.value.location is not None
    assert info.value.location.json_path == "modulesContent.$edgeAgent.properties.desired.modules.a.settings.image"
    assert "edgegen push" in (info.value.hint or "")
