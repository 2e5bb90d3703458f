"""createOptions: serialize, chunk and merge round trips; resource limit parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.generator.createoptions import (
    ResourceLimits,
    apply_create_options,
    chunk,
    chunk_key,
    merge_chunks,
    merge_resource_limits,
    parse_deployment_config,
    serialize,
)
from edgegen.generator.errors import RenderError
from tests.support.profiles import EXPENSIVE

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=60,
)


@EXPENSIVE
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_chunks_merge_back_to_the_same_object(obj: dict[str, Any]) -> None:
    settings_: dict[str, Any] = {"createOptions": obj}
    text = serialize(obj)
    if len(chunk(text)) > 8:
        with pytest.raises(RenderError):
            apply_create_options("m", settings_)
        return
    apply_create_options("m", settings_)
    keys = [k for k in settings_ if k.startswith("createOptions")]
    assert keys == [chunk_key(i) for i in range(len(keys))]
    assert all(len(settings_[k]) <= 512 for k in keys)
    assert json.loads(merge_chunks(settings_)) == obj


def test_iotedgedev_regex_chunking_equivalence() -> None:
    import re

    text = ("ab\r\n" * 400) + "é" * 700
    regex = [m.group() for m in re.finditer("(.|[\r\n]){1,512}", text)]
    assert chunk(text) == regex
    assert chunk("") == [] and chunk_key(1) == "createOptions01" and chunk_key(12) == "createOptions12"


def test_empty_string_stays_empty_and_objects_are_compact() -> None:
    s: dict[str, Any] = {"createOptions": ""}
    apply_create_options("edgeAgent", s)
    assert s == {"createOptions": ""}
    s = {"createOptions": {"a": [1, {"b": None}]}}
    apply_create_options("m", s)
    assert s == {"createOptions": '{"a":[1,{"b":null}]}'}


def test_merge_stops_at_the_first_gap() -> None:
    assert merge_chunks({"createOptions": "a", "createOptions01": "b", "createOptions03": "d"}) == "ab"


def test_deploymentconfig_parsing() -> None:
    lim = parse_deployment_config(json.dumps({"containerResourceRequirements": {"cpu": 0.25, "memoryInGB": 0.5,
                                                                                 "cpuLimit": 1}}), "d.json")
    assert lim == ResourceLimits(nano_cpus=1_000_000_000, memory=512 * 1024**2, source="d.json")
    assert parse_deployment_config("{}", "d.json").host_config() == {}
    with pytest.raises(RenderError) as exc:
        parse_deployment_config('{"containerResourceRequirements": {"memoryInGB": "1"}}', "d.json")
    assert exc.value.location is not None and exc.value.location.json_path == "containerResourceRequirements.memoryInGB"
    with pytest.raises(RenderError) as exc:
        parse_deployment_config("{\n  nope\n}", "d.json")
    assert exc.value.location is not None and exc.value.location.line == 2


def test_merge_resource_limits() -> None:
    lim = ResourceLimits(nano_cpus=5, memory=7, source="d.json")
    assert merge_resource_limits("m", {}, lim) == {"HostConfig": {"NanoCpus": 5, "Memory": 7}}
    assert merge_resource_limits("m", {"HostConfig": {"NanoCpus": 1}}, lim) == {"HostConfig": {"NanoCpus": 1,
                                                                                                "Memory": 7}}
    merged = merge_resource_limits("m", '{"Env":["A=1"]}', lim)
    assert merged == '{"Env":["A=1"],"HostConfig":{"NanoCpus":5,"Memory":7}}'
    assert merge_resource_limits("m", "", lim) == '{"HostConfig":{"NanoCpus":5,"Memory":7}}'
    with pytest.raises(RenderError, match="not JSON"):
        merge_resource_limits("m", "{nope", lim)
    with pytest.raises(RenderError, match="must be an object"):
        merge_resource_limits("m", [1], lim)
    assert merge_resource_limits("m", "anything", ResourceLimits()) == "anything"
