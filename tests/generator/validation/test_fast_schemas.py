"""The compiled schemas (``validation/fast``, a fast path) agree with jsonschema on our own schemas.

The fast path may only say "valid" where jsonschema finds no error; it says "invalid" at least wherever
jsonschema does (else a finding would be lost). Checked on every manifest of the test data, the conformance
payloads and fixtures, and on Hypothesis mutations of valid twins. Also: the generated modules are current.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.generator.validation import fastgen, schema
from edgegen.generator.validation.model import AGENT, HUB
from tests.conftest import CONFORMANCE
from tests.support.profiles import PROPERTY

DATA = Path(__file__).parent / "data"


def test_generated_modules_are_current() -> None:
    assert fastgen.main(["--check"]) == 0, "run python -m edgegen.generator.validation.fastgen"


def _twins(manifest: Any) -> Iterator[tuple[str, str, Any]]:
    if not isinstance(manifest, dict):
        return
    mc = manifest.get("modulesContent") or (manifest.get("content") or {}).get("modulesContent")
    if not isinstance(mc, dict):
        return
    for twin in (AGENT, HUB):
        content = mc.get(twin)
        desired = content.get("properties.desired") if isinstance(content, dict) else None
        version = desired.get("schemaVersion") if isinstance(desired, dict) else None
        if isinstance(version, str) and version in schema.KNOWN_VERSIONS[twin]:
            yield twin, version, content


def _manifests() -> Iterator[tuple[str, Any]]:
    for path in sorted([*DATA.rglob("*.json"), *CONFORMANCE.joinpath("schemas", "payloads").glob("*.json"),
                        *CONFORMANCE.joinpath("iotedgedev", "assets").rglob("deployment*.json")]):
        try:
            yield str(path.relative_to(DATA.parents[3])), json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            continue  # the fixture with a bare ${TTL}: not JSON before expansion


def _reference_errors(twin: str, version: str, content: Any) -> list[str]:
    return [e.message for e in schema.validator(twin, version).iter_errors(content)]


CASES = [(name, twin, version, content) for name, manifest in _manifests() for twin, version, content in
         _twins(manifest)]


@pytest.mark.parametrize(("name", "twin", "version", "content"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_same_verdict_as_jsonschema(name: str, twin: str, version: str, content: Any) -> None:
    assert schema.fast_valid(twin, version, content) == (not _reference_errors(twin, version, content))


def test_both_verdicts_are_exercised() -> None:
    verdicts = {schema.fast_valid(t, v, c) for _, t, v, c in CASES}
    assert verdicts == {True, False} and len(CASES) > 60


_VALID = [(t, v, c) for _, t, v, c in CASES if schema.fast_valid(t, v, c)]
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 2**33) | st.floats(allow_nan=False)
                     | st.text(max_size=12) | st.sampled_from(["always", "running", "docker", "1.1", "", "a\n"]),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@PROPERTY
@given(case=st.integers(0, len(_VALID) - 1), where=st.integers(0, 10**6), value=_JSON,
       how=st.sampled_from(["replace", "add", "delete"]))
def test_mutated_twins_never_pass_the_fast_path_alone(case: int, where: int, value: Any, how: str) -> None:
    twin, version, original = _VALID[case]
    content = copy.deepcopy(original)
    paths = list(_paths(content))[1:]
    path = paths[where % len(paths)]
    parent = content
    for seg in path[:-1]:
        parent = parent[seg]
    if how == "replace" or isinstance(parent, list):
        parent[path[-1]] = value
    elif how == "add" and isinstance(parent, dict):
        parent[f"{path[-1]}{random.Random(where).randint(0, 9)}"] = value
    else:
        del parent[path[-1]]
    if schema.fast_valid(twin, version, content):
        assert _reference_errors(twin, version, content) == [], (path, how, value)
