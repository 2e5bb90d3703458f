"""Whatever JSON arrives, validation returns findings and never raises."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edgegen.generator.validation import validate_manifest, validate_text
from edgegen.generator.validation.findings import SEVERITIES
from tests.support.profiles import PROPERTY

BASE = json.loads((Path(__file__).parent / "data/valid/valid-agent1.1-hub1.2.json").read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["1.0", "1.1", "1.2", "1.3", "${X}", "FROM /messages/* INTO $upstream", "createOptions"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(
        ["properties.desired", "modules", "routes", "settings", "createOptions", "createOptions01", "env", "image",
         "schemaVersion", "properties.desired.modules.x", "properties.desired.routes.r"]), children, max_size=4),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    return out


PATHS = _paths(BASE)


@PROPERTY
@given(st.sampled_from(PATHS), json_values, st.booleans())
def test_any_value_anywhere_gives_findings_not_exceptions(path: tuple[Any, ...], value: Any, layered: bool) -> None:
    manifest = copy.deepcopy(BASE)
    if path:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    else:
        manifest = value
    doc = {"content": manifest} if layered else manifest
    findings = validate_manifest(doc)
    assert all(f.severity in SEVERITIES and f.message for f in findings)
    text = json.dumps(doc, indent=1)
    located = validate_text(text, file="m.json")
    assert len(located) >= len(findings)


@PROPERTY
@given(st.text(max_size=60))
def test_any_text_gives_findings_not_exceptions(text: str) -> None:
    findings = validate_text(text)
    assert findings and all(f.severity in SEVERITIES for f in findings)
