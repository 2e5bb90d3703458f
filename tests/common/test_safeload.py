"""edgegen.common.safeload: every hostile file is an InputError with a position, in bounded time; ordinary JSON
and YAML load exactly as json.loads and yaml.safe_load load them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edgegen.common.safeload import (
    MAX_DEPTH,
    InputError,
    check_text,
    decode,
    loads_json,
    loads_yaml,
    read_file,
    read_text,
)
from tests.support.attacks import ALIAS_BOMB
from tests.support.profiles import PROPERTY


def error(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    assert "Traceback" not in info.value.render()
    return info.value


# ---------------------------------------------------------------------------------------------------------- JSON
def test_depth_limit_names_the_first_bracket_too_deep() -> None:
    assert loads_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, file="f.json") is not None
    exc = error(loads_json, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), file="f.json")
    assert (exc.kind, exc.location.line, exc.location.column) == ("depth", 1, MAX_DEPTH + 1)
    assert f"nested deeper than {MAX_DEPTH} levels" in exc.message


def test_a_50k_deep_document_is_an_error_not_a_recursion_error() -> None:
    for text in ("[" * 50_000 + "]" * 50_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "[" * 50_000):
        exc = error(loads_json, text, file="deep.json")
        assert exc.kind in ("depth", "syntax")


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 500, "b": ["{" * 500]})
    assert loads_json(text) == json.loads(text)
    deep = '{"x": "]]]\\"[[", "y": ' + "[" * 101 + "]" * 101 + "}"
    assert error(loads_json, deep).location.column == deep.index("[" * 101) + 100  # the object is level 1


@pytest.mark.parametrize(("text", "column"), [
    ('{"a":\n "x\\ud800"}', 4),  # a high half alone
    ('{"a":\n "x\\udc00y"}', 4),  # a low half alone
    ('{"a":\n "x\\uD83D\\u0041"}', 4),  # a high half followed by something else
    ('["ok", "\\ud83d\\ude00", "\\uDBFF"]', 25),
])
def test_lone_surrogate_escapes_are_reported_where_they_are(text: str, column: int) -> None:
    exc = error(loads_json, text, file="s.json")
    assert exc.kind == "encoding" and "lone surrogate" in exc.message
    assert exc.location.column == column


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    text = '{"a": "\\ud83d\\ude00", "b": "\\\\ud800", "c": "\\\\\\ud83d\\ude00"}'
    assert loads_json(text) == json.loads(text)


def test_raw_surrogates_in_text_are_refused() -> None:
    exc = error(check_text, "ab\ncd\udc80", file="env")
    assert (exc.location.line, exc.location.column) == (2, 3) and "U+DC80" in exc.message
    assert error(loads_json, '{"a": "\udc80"}').kind == "encoding"


def test_syntax_errors_carry_line_and_column() -> None:
    exc = error(loads_json, '{\n  "a": 1,\n  "b" 2\n}', file="x.json")
    assert (exc.kind, exc.location.line, exc.location.column) == ("syntax", 3, 7)
    assert exc.message.startswith("invalid JSON: Expecting ':' delimiter")
    assert exc.location.source_line == '  "b" 2'


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(json_documents)
def test_ordinary_json_loads_as_json_loads_does(doc: object) -> None:
    text = json.dumps(doc)
    assert loads_json(text) == json.loads(text)


# ------------------------------------------------------------------------------------------------------ encodings
def test_utf8_bom_is_skipped() -> None:
    assert decode(b'\xef\xbb\xbf{"a": 1}') == '{"a": 1}'


@pytest.mark.parametrize("raw", ['{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le"),
                                 '{"a": 1}'.encode("utf-16-be"), '{"a": 1}'.encode("utf-32")])
def test_utf16_and_utf32_are_named(raw: bytes) -> None:
    exc = error(decode, raw, file="m.json")
    assert exc.kind == "encoding" and "UTF-" in exc.message and "save it as UTF-8" in exc.hint
    assert (exc.location.line, exc.location.column) == (1, 1)


def test_invalid_utf8_is_reported_at_its_line_and_column() -> None:
    exc = error(decode, b'{\n  "a": "caf\xc3\xa9 \xff"\n}', file="m.json", what="manifest")
    assert (exc.location.line, exc.location.column) == (2, 14)
    assert exc.message.startswith("manifest is not UTF-8: byte 0xff at byte offset 16")


def test_size_bound_and_unreadable_files(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    assert error(read_file, big, max_bytes=1024).kind == "size"
    assert len(read_file(big, max_bytes=4096)) == 2048
    missing = error(read_text, tmp_path / "nope.json", what="manifest")
    assert missing.kind == "read" and missing.message.startswith("cannot read manifest")
    assert error(read_text, tmp_path).kind == "read"  # a folder


# ---------------------------------------------------------------------------------------------------------- YAML
def test_the_billion_laughs_is_refused_at_once() -> None:
    exc = error(loads_yaml, ALIAS_BOMB, file="bomb.yaml")
    assert exc.kind == "aliases" and "expands to more than" in exc.message
    assert exc.location.file == "bomb.yaml" and exc.location.line is not None


def test_recursive_aliases_are_refused() -> None:
    exc = error(loads_yaml, "a: &a [1, *a]\n", file="r.yaml")
    assert exc.kind == "aliases" and (exc.location.line, exc.location.column) == (1, 11)
    assert error(loads_yaml, "a: &a {b: *a}\n").kind == "aliases"


def test_deep_yaml_is_refused_directly_and_through_aliases() -> None:
    assert error(loads_yaml, "[" * 50_000).kind in ("depth", "syntax")
    assert error(loads_yaml, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).kind == "depth"
    half = MAX_DEPTH // 2 + 1
    nested = f"a: &a {'[' * half}1{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    assert error(loads_yaml, nested).kind == "depth"


def test_yaml_syntax_errors_and_streams() -> None:
    exc = error(loads_yaml, "a: [1, 2\nb: 3\n", file="t.yaml")
    assert exc.kind == "syntax" and exc.message.startswith("invalid YAML:") and exc.location.line == 2
    assert error(loads_yaml, "a: 1\n---\nb: 2\n").kind == "syntax"
    assert error(loads_yaml, "a: *nowhere\n").kind == "syntax"
    assert loads_yaml("") is None and loads_yaml("# only a comment\n") is None


@pytest.mark.parametrize("text", [
    "base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\n",
    "when: 2024-01-02\nbin: !!binary aGVsbG8=\nset: !!set {a, b}\nf: 1.5e3\nn: ~\no: !!omap [{a: 1}]\n",
    "- &x {a: 1}\n- *x\n- [*x, *x]\n",
    "key with spaces: 'quoted'\nmulti: |\n  line 1\n  line 2\n? complex key\n: value\n",
])
def test_yaml_loads_as_safe_load_does(text: str) -> None:
    assert loads_yaml(text) == yaml.safe_load(text)


@PROPERTY
@given(json_documents)
def test_any_dumped_document_round_trips(doc: object) -> None:
    text = yaml.safe_dump(doc)
    assert loads_yaml(text) == yaml.safe_load(text)
