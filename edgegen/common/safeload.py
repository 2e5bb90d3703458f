"""Reading the files users give us without crashing or hanging on hostile ones (pure, except ``read_file``).

Every user file edgegen parses (manifests, deployment templates in JSON or YAML, module.json, .env, fleet.yaml,
route test messages, model files) goes through here, so each bad input gets one clear error with its position:

- ``read_file``: at most ``MAX_FILE_BYTES``; an unreadable file is an error, not an OSError.
- ``decode``: UTF-8 (a UTF-8 byte-order mark is skipped); UTF-16/UTF-32 text and bytes that are not UTF-8 are
  reported at their line:column with what to do.
- ``check_text``: text that cannot be written back as UTF-8 (a lone surrogate, e.g. from the environment).
- ``loads_json``: ``json.loads`` plus a nesting limit (``MAX_DEPTH``; a 50,000-deep array is an error, not a
  RecursionError) and lone surrogate escapes (``"\\ud800"``) reported where they are.
- ``loads_yaml``: PyYAML's safe loader with its document composed here, iteratively: nesting limited, recursive
  aliases refused, and the expanded size bounded (``MAX_YAML_NODES``), so a few hundred bytes of nested aliases
  (the "billion laughs") are an error instead of a hang when the result is later walked or serialized.

Errors are ``InputError`` (an ``EdgegenError`` with ``Location``) carrying ``kind`` and the character ``offset``
in the text, so callers that parse expanded text can point back into the source (``as_error``).
"""

from __future__ import annotations

import json
import re
from os import PathLike
from pathlib import Path
from typing import Any

from edgegen.errors import EdgegenError, Location

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_YAML_NODES", "InputError", "check_text", "decode", "line_col",
           "loads_json", "loads_yaml", "read_file", "read_text"]

MAX_FILE_BYTES = 16 * 1024 * 1024  # a deployment manifest is at most 512 KB at IoT Hub; templates and .env far less
MAX_DEPTH = 100  # IoT Hub's documents nest far less (twins: 10 levels)
MAX_YAML_NODES = 1_000_000  # nodes after alias expansion: a real template has a few thousand

_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16"))
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPES = re.compile(r"\\\\|\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"  # \\, a high half (+ low)
                      r"|\\u[dD][c-fC-F][0-9a-fA-F]{2}")  # a low half alone
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class InputError(EdgegenError):
    """A user file that cannot be read safely: ``kind`` is size, read, encoding, syntax, depth or aliases."""

    def __init__(self, message: str, *, kind: str, location: Location | None = None, hint: str | None = None,
                 offset: int | None = None) -> None:
        super().__init__(message, location=location, hint=hint)
        self.kind = kind
        self.offset = offset

    def as_error(self, cls: type[EdgegenError], location: Location | None = None) -> EdgegenError:
        """The same problem as the caller's area error, optionally pointing elsewhere (e.g. before expansion)."""
        return cls(self.message, location=location or self.location, hint=self.hint)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _location(text: str, offset: int, file: str | None) -> Location:
    line, col = line_col(text, offset)
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    source: str | None = text[start:end if end >= 0 else len(text)]
    if source is not None and len(source) > 200:  # a minified file: no line to show
        source = None
    elif source is not None:
        source = source.encode("utf-8", "replace").decode()
    return Location(file=file, line=line, column=col, source_line=source)


def read_file(path: str | PathLike[str], *, what: str = "the file", max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refusing a file larger than ``max_bytes`` before reading it."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", kind="read", location=Location(file=str(p)),
                         hint="check the path and its permissions") from None
    if len(raw) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes // (1024 * 1024)} MiB", kind="size",
                         location=Location(file=str(p)), hint="is this the right file?")
    return raw


def decode(raw: bytes, *, file: str | None = None, what: str = "the file") -> str:
    """``raw`` as UTF-8 text (BOM skipped); other encodings and bad bytes are errors with their position."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise InputError(f"{what} is {name} text (it starts with a {name} byte-order mark)", kind="encoding",
                             location=Location(file=file, line=1, column=1),
                             hint="save it as UTF-8 (without a byte-order mark)")
    if len(raw) >= 2 and (raw[0] == 0) != (raw[1] == 0):
        raise InputError(f"{what} looks like UTF-16 text (every other byte is 0)", kind="encoding",
                         location=Location(file=file, line=1, column=1), hint="save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = raw[:exc.start].decode("utf-8-sig")
        location = _location(good + raw[exc.start:].decode("utf-8-sig", "replace"), len(good), file)
        raise InputError(f"{what} is not UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {exc.start} ({exc.reason})",
                         kind="encoding", location=location, offset=len(good),
                         hint="save the file as UTF-8") from None


def read_text(path: str | PathLike[str], *, what: str = "the file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """``read_file`` then ``decode``: the text of a user file, or an ``InputError`` saying where it went wrong."""
    return decode(read_file(path, what=what, max_bytes=max_bytes), file=str(path), what=what)


def check_text(text: str, *, file: str | None = None, what: str = "the text") -> str:
    """``text`` when it can be written as UTF-8; a lone surrogate (e.g. from ``os.environ``) is an error."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{what} holds a lone surrogate U+{ord(text[exc.start]):04X}, which is not Unicode text",
                             kind="encoding", location=_location(text, exc.start, file), offset=exc.start,
                             hint="remove it; it cannot be written as UTF-8") from None
    return text


# ------------------------------------------------------------------------------------------------------- JSON
def _deep_at(text: str, limit: int) -> int:
    """Offset of the first bracket that opens level ``limit + 1`` (strings skipped), or -1."""
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c in "]}":
            depth -= 1
    return -1


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _lone_surrogate_escape(text: str) -> int:
    """Offset of a ``\\uD800``-``\\uDFFF`` escape that is not half of a pair, or -1."""
    for m in _ESCAPES.finditer(text):
        token = m.group()
        if token == "\\\\":
            continue
        if m.group(1) is None or m.group(2) is None:  # a low half alone, or a high half without its low half
            return m.start()
    return -1


def loads_json(text: str, *, file: str | None = None, what: str = "the document", max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``text``: syntax errors, nesting deeper than ``max_depth`` and lone surrogates are InputErrors."""
    try:
        value = json.loads(text)
    except RecursionError:
        value, deep = None, True
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", kind="syntax", location=_location(text, exc.pos, file),
                         offset=exc.pos, hint="fix the JSON syntax at that position") from None
    else:
        deep = isinstance(value, dict | list) and _too_deep(value, max_depth)
    if deep:
        at = _deep_at(text, max_depth)
        raise InputError(f"{what} is nested deeper than {max_depth} levels", kind="depth",
                         location=_location(text, max(at, 0), file), offset=max(at, 0),
                         hint="nothing edgegen reads nests that deep; is this the right file?")
    if _SURROGATE_ESCAPE.search(text):
        at = _lone_surrogate_escape(text)
        if at >= 0:
            raise InputError(f"{what} holds a lone surrogate {text[at:at + 6]}, which is not Unicode text",
                             kind="encoding", location=_location(text, at, file), offset=at,
                             hint="remove the escape, or write the character as a surrogate pair or as UTF-8")
    elif not text.isascii():
        check_text(text, file=file, what=what)
    return value


# ------------------------------------------------------------------------------------------------------- YAML
def _yaml_error(message: str, mark: Any, text: str, file: str | None, kind: str, hint: str | None) -> InputError:
    offset = getattr(mark, "index", None) if mark is not None else None
    location = _location(text, offset, file) if offset is not None else Location(file=file)
    return InputError(message, kind=kind, location=location, offset=offset, hint=hint)


def _compose(loader: Any, text: str, file: str | None, what: str, max_depth: int) -> Any:
    """The single document's node graph, built from parser events without recursion (PyYAML's composer
    recurses per nesting level); aliases refer to the anchored node, and one that refers to its own parent is
    refused. Returns None for an empty stream."""
    import yaml
    from yaml import events, nodes

    loader.get_event()  # StreamStartEvent
    if loader.check_event(events.StreamEndEvent):
        return None
    loader.get_event()  # DocumentStartEvent
    anchors: dict[str, Any] = {}
    stack: list[Any] = []  # open collections
    pending_key: list[Any] = []  # per open mapping: its key waiting for a value, or None
    root = None
    while True:
        ev = loader.get_event()
        if isinstance(ev, events.DocumentEndEvent):
            break
        if isinstance(ev, events.SequenceEndEvent | events.MappingEndEvent):
            node = stack.pop()
            pending_key.pop()
            node.end_mark = ev.end_mark
        elif isinstance(ev, events.AliasEvent):
            if ev.anchor not in anchors:
                raise _yaml_error(f"{what}: alias *{ev.anchor} names no anchor", ev.start_mark, text, file, "syntax",
                                  "define &" + ev.anchor + " before using it")
            node = anchors[ev.anchor]
            if any(node is open_node for open_node in stack):
                raise _yaml_error(f"{what}: alias *{ev.anchor} refers to a collection that contains it", ev.start_mark,
                                  text, file, "aliases", "a recursive structure cannot be a deployment document")
        else:
            tag = ev.tag
            if isinstance(ev, events.ScalarEvent):
                if tag is None or tag == "!":
                    tag = loader.resolve(nodes.ScalarNode, ev.value, ev.implicit)
                node = nodes.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
            elif isinstance(ev, events.SequenceStartEvent | events.MappingStartEvent):
                kind = nodes.SequenceNode if isinstance(ev, events.SequenceStartEvent) else nodes.MappingNode
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, ev.implicit)
                node = kind(tag, [], ev.start_mark, None, flow_style=ev.flow_style)
            else:  # pragma: no cover - the parser yields no other events inside a document
                raise _yaml_error(f"{what}: unexpected {type(ev).__name__}", ev.start_mark, text, file, "syntax", None)
            if ev.anchor is not None:
                anchors[ev.anchor] = node
        if not isinstance(ev, events.SequenceEndEvent | events.MappingEndEvent):  # a new node: attach it
            if not stack:
                root = node
            elif isinstance(stack[-1], nodes.SequenceNode):
                stack[-1].value.append(node)
            elif pending_key[-1] is None:
                pending_key[-1] = node
            else:
                stack[-1].value.append((pending_key[-1], node))
                pending_key[-1] = None
        if isinstance(ev, events.SequenceStartEvent | events.MappingStartEvent):
            stack.append(node)
            pending_key.append(None)
            if len(stack) > max_depth:
                raise _yaml_error(f"{what} is nested deeper than {max_depth} levels", ev.start_mark, text, file,
                                  "depth", "nothing edgegen reads nests that deep; is this the right file?")
    if not loader.check_event(events.StreamEndEvent):
        ev = loader.get_event()
        raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                          "but found another document", ev.start_mark)
    loader.get_event()
    return root


def _check_expansion(root: Any, text: str, file: str | None, what: str, max_depth: int, max_nodes: int) -> None:
    """Size and depth of the document once every alias is expanded, computed once per node (the graph is a DAG)."""
    from yaml import nodes

    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size and not done:
            continue
        if isinstance(node, nodes.ScalarNode):
            size[key], depth[key] = 1, 0
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, nodes.MappingNode) else node.value
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[key] = 1 + sum(size[id(c)] for c in children)
        depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[key] > max_nodes:
            raise _yaml_error(f"{what} expands to more than {max_nodes:,} values through its aliases", node.start_mark,
                              text, file, "aliases", "nested aliases multiply; write the repeated parts out, or use "
                              "fewer levels of aliases")
        if depth[key] > max_depth:
            raise _yaml_error(f"{what} is nested deeper than {max_depth} levels (through its aliases)", node.start_mark,
                              text, file, "depth", "nothing edgegen reads nests that deep")


def loads_yaml(text: str, *, file: str | None = None, what: str = "the document", max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load(text)`` with nesting, recursive aliases and alias expansion bounded."""
    import yaml

    check_text(text, file=file, what=what)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = _compose(loader, text, file, what, max_depth)
        if root is None:
            return None
        _check_expansion(root, text, file, what, max_depth, max_nodes)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _yaml_error(f"invalid YAML: {exc.problem or exc.context}", mark, text, file, "syntax",
                          "fix the YAML syntax at that position") from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", kind="syntax", location=Location(file=file)) from None
    finally:
        loader.dispose()
