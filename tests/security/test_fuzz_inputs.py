"""Property-based fuzzing (in-process) of what users feed edgegen's file commands: ``validate`` (a manifest
file), ``genconfig`` (a deployment template rendered, then validated) and ``route test`` (a message file and a
route). Inputs are a valid document mutated at the byte level (bytes replaced, deleted, inserted: brackets, deep
nesting, lone surrogate escapes, invalid UTF-8, BOMs, placeholders, YAML aliases) or at the JSON level (any value
in the document replaced by any JSON value, or removed).

Whatever the input, the only exceptions allowed are edgegen's own (``EdgegenError``: a message with a place), the
output must be printable as UTF-8, and no example may run past ``HANG_BOUND`` (a SIGALRM hang guard, not a speed
claim). Counts: the ``FUZZ`` setting (10,000 each in CI; tests/support/profiles.py).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.common.safeload import loads_json
from edgegen.errors import EdgegenError
from edgegen.generator.render import RenderOptions, render
from edgegen.generator.scaffold import new_solution
from edgegen.generator.solution import DiskModules, load_env
from edgegen.generator.validation import validate_file, validate_manifest
from edgegen.generator.validation.report import to_json, to_text
from edgegen.routing.explain import route_test_message, test_message
from tests.support.profiles import FUZZ

HANG_BOUND = 10  # seconds one example may take before it counts as a hang
DATA = Path(__file__).resolve().parents[1] / "generator" / "validation" / "data"
MANIFEST = (DATA / "valid" / "valid-agent1.1-hub1.2.json").read_bytes()
MESSAGE = json.dumps({"properties": {"alert": "true", "n": 3}, "systemProperties": {
    "contentType": "application/json", "contentEncoding": "utf-8", "connectionModuleId": "sensor",
    "outputName": "out1"}, "body": {"temperature": 21.5, "tags": ["a", "b"], "nested": {"x": [1, {"y": None}]}}},
    indent=2).encode()
ROUTES = ["FROM /messages/modules/sensor/outputs/* WHERE $body.temperature > 20 INTO $upstream",
          "FROM /messages/* WHERE alert = 'true' AND $body.nested.x[0] = 1 "
          "INTO BrokeredEndpoint(\"/modules/f/inputs/i\")",
          "temperature > 20 OR NOT is_defined($body.tags)", "SELECT * FROM /messages INTO $upstream"]

SNIPPETS = [b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b'"', b"{", b"[", b"}", b"]", b",", b":", b"\xff",
            b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"[" * 150, b'{"a":' * 120, b"[" * 5000, b"${X}",
            b"${MODULES.sensor}",
            b"$EDGE_RUNTIME_VERSION", b"null", b"1e999", b"-0", b'"\\u0000"', b"&a [*a, *a]", b"*a", b"\t\n", b"\\",
            b"{% for i in range(3) %}", b"{{ x }}", b"{#", "é𝄞".encode()]


@contextmanager
def hang_guard() -> Iterator[None]:
    """Fail an example that runs longer than HANG_BOUND (SIGALRM interrupts pure-Python loops)."""
    def timeout(signum: int, frame: Any) -> None:
        raise AssertionError(f"an example ran longer than {HANG_BOUND} s: a hang")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, HANG_BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _apply(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for at, delete, insert in edits:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + delete:]
    return data


def byte_mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    edit = st.tuples(st.integers(0, len(valid)), st.integers(0, 8),
                     st.one_of(st.sampled_from(SNIPPETS), st.binary(max_size=6)))
    return st.lists(edit, min_size=1, max_size=4).map(lambda edits: _apply(valid, edits))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
    | st.sampled_from(["\ud800", "${X}", "${MODULES.sensor}", "$upstream", "x" * 600, "{}"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in children:
        yield from _paths(value, (*prefix, key))


def _replaced(doc: Any, path: tuple[Any, ...], value: Any, remove: bool) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


def json_mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    doc = json.loads(valid)
    paths = list(_paths(doc))
    mutated = st.tuples(st.sampled_from(paths), json_values, st.booleans()).map(
        lambda t: _replaced(doc, t[0], t[1], t[2] and bool(t[0])))
    return mutated.map(lambda d: json.dumps(d, indent=2).encode())


def mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(byte_mutations(valid), json_mutations(valid))


def _printable(*texts: str) -> None:
    for text in texts:
        text.encode("utf-8")  # what the CLI prints must be writable


# ---------------------------------------------------------------------------------------------------- validate
@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutations(MANIFEST))
def test_validate_takes_any_mutated_manifest(scratch: Path, data: bytes) -> None:
    path = scratch / "deployment.amd64.json"
    path.write_bytes(data)
    with hang_guard():
        try:
            findings = validate_file(path)
        except EdgegenError as exc:
            _printable(exc.render())
            return
        _printable(to_text(str(path), findings), json.dumps(to_json(str(path), findings)))


# --------------------------------------------------------------------------------------------------- genconfig
@pytest.fixture(scope="module")
def solution(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, str], DiskModules]:
    folder = tmp_path_factory.mktemp("solution") / "sol"
    new_solution(folder, module="sensor")
    env = load_env(folder, environ={})
    return (folder / "deployment.template.json").read_bytes(), env.values, DiskModules(folder, env.modules_path,
                                                                                         env.values)


TEMPLATE = json.dumps(json.loads(MANIFEST), indent=2).encode()  # a valid base for the JSON-level mutations


@FUZZ
@given(data=st.one_of(byte_mutations(b"\x00"), mutations(TEMPLATE)),
       kind=st.sampled_from(["deployment.template.json", "deployment.template.json",
                             "deployment.template.yaml", "deployment.template.json.j2"]),
       base=st.booleans())
def test_genconfig_renders_or_refuses_any_mutated_template(solution: tuple[bytes, dict[str, str], DiskModules],
                                                           data: bytes, kind: str, base: bool) -> None:
    template, env, source = solution
    if base:  # mutate the solution's own template (placeholders, ${VARS}) instead
        data = _apply(template, [(len(data) * 7919 % (len(template) + 1), len(data) % 9, data[:8])])
    with hang_guard():
        try:
            text = data.decode("utf-8-sig")
            result = render(text, file=kind, env=env, source=source, options=RenderOptions())
            findings = validate_manifest(result.manifest, file=kind)
            _printable(json.dumps(result.manifest), to_text(kind, findings))
        except UnicodeDecodeError:
            return  # genconfig reads templates through safeload.decode (its errors: test_safeload.py)
        except EdgegenError as exc:
            _printable(exc.render())


# -------------------------------------------------------------------------------------------------- route test
@FUZZ
@given(data=mutations(MESSAGE), route=st.sampled_from(ROUTES))
def test_route_test_takes_any_mutated_message_file(data: bytes, route: str) -> None:
    with hang_guard():
        try:
            doc = loads_json(data.decode("utf-8", "surrogatepass"), file="message.json", what="the message file")
            message = route_test_message(doc, file="message.json")
            report = test_message(route, message)
            _printable(json.dumps(report.to_dict()))
        except UnicodeDecodeError:
            return  # route test reads files through safeload.read_text (its errors: test_safeload.py)
        except EdgegenError as exc:
            _printable(exc.render())
