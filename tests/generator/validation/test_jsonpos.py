"""JSON path → line:column mapping, positioned JSON errors, dotted-path resolution."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.generator.validation import ManifestError, validate_text
from edgegen.generator.validation.jsonpos import SourceMap, parse_json_text, resolve_path
from tests.support.profiles import PROPERTY

TEXT = """{
  "modulesContent": {
    "$edgeAgent": {
      "properties.desired": {
        "modules": {"a": {"settings": {"image": "x"}}, "b": [1, {"k": "v"}]}
      }
    }
  }
}
"""


def test_members_are_located_at_their_key() -> None:
    smap = SourceMap(TEXT)
    assert smap.exact(("modulesContent",)) == (2, 3)
    assert smap.exact(("modulesContent", "$edgeAgent", "properties.desired")) == (4, 7)
    assert smap.exact(("modulesContent", "$edgeAgent", "properties.desired", "modules", "a", "settings", "image")) == (
        5, 40)
    assert smap.exact(("modulesContent", "$edgeAgent", "properties.desired", "modules", "b", 1, "k")) == (5, 66)
    assert smap.exact(()) == (1, 1)


def test_unknown_path_falls_back_to_the_nearest_ancestor() -> None:
    smap = SourceMap(TEXT)
    assert smap.position(("modulesContent", "$edgeAgent", "nope", "deeper")) == (3, 5)
    assert smap.exact(("modulesContent", "nope")) is None


def test_crlf_and_non_ascii_columns_count_characters() -> None:
    text = '{\r\n  "é€": {\r\n    "x": 1}\r\n}'
    smap = SourceMap(text)
    assert smap.exact(("é€", "x")) == (3, 5)
    assert smap.line_text(3) == '    "x": 1}'


def test_duplicate_keys_point_at_the_last_one_like_json_loads() -> None:
    smap = SourceMap('{"a": 1,\n "a": 2}')
    assert smap.exact(("a",)) == (2, 2)


def test_invalid_json_reports_line_column_and_source_line() -> None:
    with pytest.raises(ManifestError) as info:
        parse_json_text('{\n  "a": 1,\n  "b": ,\n}', "m.json")
    loc = info.value.location
    assert loc is not None and (loc.file, loc.line, loc.column) == ("m.json", 3, 8)
    assert loc.source_line == '  "b": ,'
    rendered = info.value.render()
    assert "m.json:3:8" in rendered and '  "b": ,\n           ^' in rendered


def test_unquoted_placeholder_hint_says_render_first() -> None:
    with pytest.raises(ManifestError) as info:
        parse_json_text('{"timeToLiveSecs": ${TTL}}')
    assert "genconfig" in (info.value.hint or "")


def test_validate_text_turns_bad_json_into_one_located_finding() -> None:
    (f,) = validate_text('{"modulesContent": {,}}', file="x.json")
    assert (f.severity, f.rule, f.file, f.line, f.column) == ("error", "json", "x.json", 1, 21)
    assert f.source_line == '{"modulesContent": {,}}'


def test_resolve_path_handles_dotted_keys_and_indices() -> None:
    doc = json.loads(TEXT)
    assert resolve_path(doc, "modulesContent.$edgeAgent.properties.desired.modules.b[1].k") == (
        "modulesContent", "$edgeAgent", "properties.desired", "modules", "b", 1, "k")
    assert resolve_path({"properties.desired.routes.r": 1}, "properties.desired.routes.r") == (
        "properties.desired.routes.r",)
    assert resolve_path(doc, "modulesContent.nothing") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@PROPERTY
@given(json_values, st.sampled_from([None, 2, 4]))
def test_every_path_of_any_document_is_found(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    smap = SourceMap(text)
    for path in _paths(value):
        pos = smap.exact(path)
        assert pos is not None
        line, col = pos
        line_text = text.split("\n")[line - 1]
        if path and isinstance(path[-1], str):
            assert line_text[col - 1 :].startswith(json.dumps(path[-1], ensure_ascii=False))


def test_duplicate_keys_are_a_located_warning() -> None:
    text = '{"modulesContent": {\n  "$edgeHub": {},\n  "$edgeHub": {"properties.desired": {}}\n}}'
    dups = [f for f in validate_text(text, file="d.json") if f.rule == "duplicate-key"]
    assert [(f.severity, f.line, f.column, f.path) for f in dups] == [
        ("warning", 3, 3, "modulesContent.$edgeHub")]
