"""Module twins: desired from the deployment, patches with increasing $version, reported merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.local.errors import DeviceError
from edgegen.local.twins import TwinFile, Twins, desired_from_modules_content, diff_patch, merge_patch


def test_diff_then_merge_round_trips() -> None:
    old = {"a": 1, "b": {"x": 1, "y": 2}, "c": "gone"}
    new = {"a": 2, "b": {"x": 1, "z": 3}, "d": [1, 2]}
    patch = diff_patch(old, new)
    assert patch == {"a": 2, "b": {"y": None, "z": 3}, "c": None, "d": [1, 2]}
    assert merge_patch({"a": 1, "b": {"x": 1, "y": 2}, "c": "gone"}, patch) == new


def test_redeploy_pushes_patch_with_next_version() -> None:
    twins = Twins()
    first = twins.apply_desired({"sensor": {"SendInterval": 1, "SendData": True}})
    v1 = first["sensor"]["$version"]
    assert twins.get("sensor").document()["desired"] == {"SendInterval": 1, "SendData": True, "$version": v1}
    assert twins.apply_desired({"sensor": {"SendInterval": 1, "SendData": True}}) == {}
    second = twins.apply_desired({"sensor": {"SendInterval": 5, "SendData": True}})
    assert second == {"sensor": {"SendInterval": 5, "$version": v1 + 1}}


def test_reported_merge_and_version() -> None:
    twins = Twins()
    v = twins.report("inference", {"counters": {"scored": 3}, "model": "v1"})
    v2 = twins.report("inference", {"counters": {"scored": 4}, "model": None})
    assert v2 == v + 1
    assert twins.get("inference").document()["reported"] == {"counters": {"scored": 4}, "$version": v2}


def test_layered_paths_and_bad_content() -> None:
    got = desired_from_modules_content({
        "m": {"properties.desired": {"a": 1}, "properties.desired.settings.level": "debug"},
    })
    assert got == {"m": {"a": 1, "settings": {"level": "debug"}}}
    with pytest.raises(DeviceError) as err:
        desired_from_modules_content({"m": {"desired": {}}}, "x.json")
    assert "modulesContent.m.desired" in err.value.render()


def test_twin_file_round_trip(tmp_path: Path) -> None:
    twins = Twins()
    twins.apply_desired({"m": {"a": 1}})
    twins.report("m", {"r": True})
    f = TwinFile(tmp_path / "twins.json")
    f.save(twins)
    again = f.load()
    assert again.get("m").document() == twins.get("m").document()
