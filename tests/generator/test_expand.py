"""expand() is os.path.expandvars (minus the never-variables) plus positions."""

from __future__ import annotations

import posixpath
import string
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from edgegen.generator.expand import expand, line_col
from tests.support.profiles import PROPERTY

NAMES = ["A", "B1", "TTL", "MODULES.x", "x_y", "edgeAgent", "schema"]
pieces = st.sampled_from(["$A", "${A}", "$B1", "${TTL}", "${MODULES.x}", "$", "{", "}", "$$", "${", "\n", "x",
                          "$edgeAgent", "$schema-template", "${edgeHub}", "é", "$x_y", "${}", '"'])
texts = st.lists(st.one_of(pieces, st.text(alphabet=string.printable, max_size=5)), max_size=25).map("".join)
envs = st.dictionaries(st.sampled_from(NAMES), st.text(alphabet="ab\n$}{", max_size=4), max_size=5)


def expandvars(text: str, env: dict[str, str]) -> str:
    with mock.patch.dict("os.environ", env, clear=True):
        return posixpath.expandvars(text)


@PROPERTY
@given(texts, envs)
def test_same_as_os_path_expandvars(text: str, env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k not in ("edgeAgent", "schema")}  # never-variables differ by design
    assert expand(text, env).text == expandvars(text, env)


@PROPERTY
@given(texts, envs)
def test_offsets_map_back_into_the_source(text: str, env: dict[str, str]) -> None:
    result = expand(text, env)
    for ref in result.references:
        assert text[ref.offset:].startswith(ref.raw)
        assert line_col(text, ref.offset) == (ref.line, ref.column)
    for i in range(len(result.text)):
        j = result.source_offset(i)
        assert 0 <= j <= len(text)


def test_never_variables_are_not_replaced_even_when_set() -> None:
    env = {"edgeAgent": "X", "edgeHub": "X", "upstream": "X", "schema": "X", "body": "B"}
    text = '"$edgeAgent" "$edgeHub" INTO $upstream "$schema-template" $body'
    assert expand(text, env).text == '"$edgeAgent" "$edgeHub" INTO $upstream "$schema-template" B'


def test_unresolved_skips_placeholders_and_route_names() -> None:
    text = "${MODULES.a} ${MODULEDIR<./b>} $body $connectionModuleId $1\n  $MISSING ${ALSO}"
    result = expand(text, {})
    assert [r.name for r in result.unresolved] == ["MISSING", "ALSO"]
    assert [(r.line, r.column) for r in result.unresolved] == [(2, 3), (2, 12)]


def test_source_offset_inside_a_substitution_points_at_the_reference() -> None:
    result = expand("ab\n  $V!", {"V": "12345"})
    assert result.text == "ab\n  12345!"
    assert result.source_offset(result.text.index("3")) == 5  # the '$' of $V
    assert result.source_offset(result.text.index("!")) == 7
