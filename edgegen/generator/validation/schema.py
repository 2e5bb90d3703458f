"""Schema checks: our own JSON schemas (package data under ``schemas/``) for $edgeAgent and $edgeHub.

The schema file is picked by the twin's ``properties.desired.schemaVersion`` (agent 1.0/1.1, hub 1.0–1.3).
An unknown version gives a warning and skips the schema check. Layered fragments
(``properties.desired.modules.x``, ``properties.desired.routes.r``, …) are checked against the schema's
named definitions. Every jsonschema error becomes a Finding with rule ``schema``; the hints come from the
``x-hint`` keywords in our schema files.

A whole twin is first checked by the same schema compiled to plain Python (``fast/``, see ``fastgen.py``): when it
is valid, which is the usual case, there is nothing to report and jsonschema is not even imported (it costs more
than the rest of ``genconfig``). Only a twin that fails there goes through jsonschema, the reference, which gives
the findings.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from edgegen.generator.validation.findings import ERROR, INFO, WARNING, Finding
from edgegen.generator.validation.model import AGENT, DESIRED, HUB, Fragment, ManifestView, Ptr

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as JsonSchemaError

__all__ = ["KNOWN_VERSIONS", "check", "clear_caches", "fast_valid", "load_schema", "validator"]

KNOWN_VERSIONS: dict[str, tuple[str, ...]] = {
    AGENT: ("1.0", "1.1"),
    HUB: ("1.0", "1.1", "1.2", "1.3"),
}
_FILE_PREFIX = {AGENT: "edgeagent", HUB: "edgehub"}
# what a layered fragment's subpath is checked against (None: any member name → that definition)
_FRAGMENT_DEFS: dict[str, dict[tuple[str | None, ...], str]] = {
    AGENT: {
        ("modules",): "modules",
        ("modules", None): "module",
        ("modules", None, "settings"): "settings",
        ("modules", None, "env"): "env",
        ("modules", None, "status"): "status",
        ("modules", None, "restartPolicy"): "restartPolicy",
        ("runtime",): "runtime",
        ("runtime", "settings"): "runtimeSettings",
        ("runtime", "settings", "registryCredentials"): "registryCredentials",
        ("runtime", "settings", "registryCredentials", None): "registryCredential",
        ("systemModules",): "systemModules",
        ("systemModules", "edgeAgent"): "edgeAgentModule",
        ("systemModules", "edgeHub"): "edgeHubModule",
        ("schemaVersion",): "schemaVersion",
    },
    HUB: {
        ("routes",): "routes",
        ("routes", None): "route",
        ("storeAndForwardConfiguration",): "storeAndForwardConfiguration",
        ("mqttBroker",): "mqttBroker",
        ("schemaVersion",): "schemaVersion",
    },
}


@cache
def load_schema(twin: str, version: str) -> dict[str, Any]:
    """Our schema for ``$edgeAgent``/``$edgeHub`` twin content at a desired ``schemaVersion``."""
    from importlib import resources

    name = f"{_FILE_PREFIX[twin]}-{version}.json"
    text = resources.files("edgegen.generator.validation").joinpath("schemas", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def validator(twin: str, version: str, definition: str | None = None) -> Any:
    """A validator for the whole twin content, or for one named definition (a layered fragment).

    Local ``$ref``s are inlined first: our schemas are not recursive, and jsonschema's reference lookups
    would otherwise be most of the validation time.
    """
    schema = load_schema(twin, version)
    definitions = schema["definitions"]
    root = definitions[definition] if definition is not None else schema
    return _validator_class()(_inline(root, definitions))


@cache
def _fast(twin: str, version: str) -> Any:
    name = f"{_FILE_PREFIX[twin]}_{version.replace('.', '_')}"
    return import_module(f"edgegen.generator.validation.fast.{name}").validate


def fast_valid(twin: str, version: str, content: Any) -> bool:
    """Whether the compiled schema accepts ``content`` (a whole twin's content). False means: ask jsonschema."""
    try:
        _fast(twin, version)(content)
    except Exception:  # its JsonSchemaValueException, or a value it did not foresee: let the reference decide
        return False
    return True


# Object members found clean before (modules, system modules, env variables, runtime, routes, …) are not
# validated again. Sound: a (subschema, instance) pair's errors are a function of the two; the subschema is the
# very dict object of a cached validator (kept alive, so its id is never reused) and the instance is keyed by
# repr() only when it is plain JSON (injective). Only "no errors" is remembered; errors are always produced
# afresh by jsonschema, in its order. A manifest that differs from an earlier one in one module's env variable
# re-checks that variable and the objects around it, not its siblings. Scalars are not worth a key.
_CLEAN: OrderedDict[tuple[int, str], None] = OrderedDict()
_CLEAN_SIZE = 8192
_CACHE_CHARS = 8_000_000  # per cache: the keys hold whole reprs, so memory is bounded by their total length
_chars = {"clean": 0, "twin": 0}


_PLAIN_ROOT = threading.local()  # .active: the instance being validated is known to be plain JSON throughout


def clear_caches() -> None:
    """Forget the twin findings and the members found clean (benchmarks and tests of the first-sight cost)."""
    with _TWIN_LOCK:
        _TWIN_CACHE.clear()
        _CLEAN.clear()
        _chars.update(clean=0, twin=0)


def _descend_remembering(validator: Any, value: Any, subschema: Any, path: Any, schema_path: Any) -> Iterator[Any]:
    key = None
    if type(value) is dict and (getattr(_PLAIN_ROOT, "active", False) or _is_plain(value)):
        key = (id(subschema), repr(value))
    if key is not None:
        with _TWIN_LOCK:
            if key in _CLEAN:
                _CLEAN.move_to_end(key)
                return
    errors = list(validator.descend(value, subschema, path=path, schema_path=schema_path))
    if not errors and key is not None:
        with _TWIN_LOCK:
            _CLEAN[key] = None
            _chars["clean"] += len(key[1])
            while _CLEAN and (len(_CLEAN) > _CLEAN_SIZE or _chars["clean"] > _CACHE_CHARS):
                _chars["clean"] -= len(_CLEAN.popitem(last=False)[0][1])
    yield from errors


def _properties(validator: Any, properties: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's own ``properties`` keyword (4.x), remembering the members found clean."""
    if not validator.is_type(instance, "object"):
        return
    for prop, subschema in properties.items():
        if prop in instance:
            yield from _descend_remembering(validator, instance[prop], subschema, prop, prop)


def _pattern_properties(validator: Any, pattern_properties: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's own ``patternProperties`` keyword (4.x), remembering the members found clean."""
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for k, v in instance.items():
            if re.search(pattern, k):
                yield from _descend_remembering(validator, v, subschema, k, pattern)


@cache
def _validator_class() -> Any:
    """jsonschema's Draft 7 validator with the remembering keywords above (imported on first use)."""
    from jsonschema import Draft7Validator
    from jsonschema.validators import extend

    return extend(Draft7Validator, {"properties": _properties, "patternProperties": _pattern_properties})


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return _inline(definitions[ref.removeprefix("#/definitions/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "definitions"}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


def check(view: ManifestView) -> list[Finding]:
    findings: list[Finding] = []
    for twin in (AGENT, HUB):
        findings.extend(_check_twin(view, twin))
    return findings


def _check_twin(view: ManifestView, twin: str) -> Iterator[Finding]:
    twin_ptr = view.twin_pointer(twin)
    if twin not in view.modules_content:
        if view.is_deployment and view.layered:
            return  # a layered deployment need not touch every system twin
        yield Finding.at(ERROR, twin_ptr, f"{twin} is missing from modulesContent",
                         f"every deployment manifest needs {twin} with its properties.desired", rule="schema")
        return
    content = view.modules_content[twin]
    if not isinstance(content, dict):
        yield Finding.at(ERROR, twin_ptr, f"{twin} must be an object, not {_kind(content)}", rule="schema")
        return
    fragments = view.fragments(twin)
    version, version_ptr = _version(view, twin)
    if DESIRED not in content and not fragments:
        yield Finding.at(ERROR, twin_ptr, f"{twin} has no properties.desired",
                         f'write {{"{DESIRED}": {{"schemaVersion": …}}}}', rule="schema")
        return
    if version is None and DESIRED in content:
        # the schema reports the missing/ill-typed schemaVersion; check against the newest version we know
        version = KNOWN_VERSIONS[twin][-1]
    elif version is None:
        version = KNOWN_VERSIONS[twin][-1]
        yield Finding.at(INFO, twin_ptr,
                         f"layered {twin} fragments have no schemaVersion; checked against schemaVersion {version}",
                         rule="schema-version")
    elif version not in KNOWN_VERSIONS[twin]:
        known = ", ".join(KNOWN_VERSIONS[twin])
        hint = f"known versions: {known}"
        if "$" in version:
            hint = f"the schemaVersion is an unexpanded variable: render the template with `edgegen genconfig` ({hint})"
        yield Finding.at(WARNING, version_ptr,
                         f"unknown {twin} schemaVersion {version!r}; schema checks for {twin} were skipped",
                         hint, rule="schema-version")
        return
    if DESIRED in content:
        yield from _twin_findings(content, twin_ptr, twin, version)
    for frag in fragments:
        yield from _check_fragment(frag, twin, version)


# Schema findings of whole twins, by the twin's exact content: a fleet's manifests mostly share their
# $edgeAgent/$edgeHub twins (they differ in module twins), and a validator's verdict is a function of the
# instance alone. Only plain JSON values (exact dict/list/str/int/float/bool/None) are cached: for those,
# repr() is injective and keeps key order (which fixes the order of the errors), so equal keys mean equal
# instances and equal findings. Anything else is validated every time.
_TWIN_CACHE: OrderedDict[tuple[str, str, Ptr, str], tuple[Finding, ...]] = OrderedDict()
_TWIN_CACHE_SIZE = 256
_TWIN_LOCK = threading.Lock()
_PLAIN_LEAVES = frozenset({str, int, float, bool, type(None)})


def _twin_findings(content: Any, twin_ptr: Ptr, twin: str, version: str) -> Iterator[Finding]:
    key = (twin, version, twin_ptr, repr(content)) if _is_plain(content) else None
    if key is not None:
        with _TWIN_LOCK:
            cached = _TWIN_CACHE.get(key)
            if cached is not None:
                _TWIN_CACHE.move_to_end(key)
        if cached is not None:
            yield from cached
            return
    if fast_valid(twin, version, content):
        found: tuple[Finding, ...] = ()
    else:
        _PLAIN_ROOT.active = key is not None  # every member of a plain twin is plain: no need to check again
        try:
            found = tuple(f for err in validator(twin, version).iter_errors(content)
                          for f in _to_findings(err, twin_ptr, twin, version))
        finally:
            _PLAIN_ROOT.active = False
    if key is not None:
        with _TWIN_LOCK:
            _TWIN_CACHE[key] = found
            _chars["twin"] += len(key[3])
            while _TWIN_CACHE and (len(_TWIN_CACHE) > _TWIN_CACHE_SIZE or _chars["twin"] > _CACHE_CHARS):
                _chars["twin"] -= len(_TWIN_CACHE.popitem(last=False)[0][3])
    yield from found


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is made only of exact JSON types (no subclasses, tuples or other objects)."""
    stack = [value]
    leaves = _PLAIN_LEAVES
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for k in item:
                if type(k) is not str:
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind not in leaves:
            return False
    return True


def _version(view: ManifestView, twin: str) -> tuple[str | None, Ptr]:
    found = view.get(twin, ("schemaVersion",))
    if found is None:
        return None, view.twin_pointer(twin)
    ptr, value = found
    return (value if isinstance(value, str) else None), ptr


def _check_fragment(frag: Fragment, twin: str, version: str) -> Iterator[Finding]:
    definition = None
    for pattern, name in _FRAGMENT_DEFS[twin].items():
        if len(pattern) == len(frag.subpath) and all(
            p is None or p == s for p, s in zip(pattern, frag.subpath, strict=True)
        ):
            definition = name
            break
    if definition is None:
        yield Finding.at(INFO, frag.pointer, f"layered property path {frag.pointer[-1]} is not schema-checked",
                         rule="schema")
        return
    if definition == "module" and not _valid_name(AGENT, version, "modules", frag.subpath[-1]):
        yield Finding.at(ERROR, frag.pointer, f"module name {frag.subpath[-1]!r} is not allowed",
                         "module names use only letters, digits, _ and -", rule="schema")
    if definition == "route" and not _valid_name(HUB, version, "routes", frag.subpath[-1]):
        yield Finding.at(ERROR, frag.pointer, f"route name {frag.subpath[-1]!r} is not allowed",
                         "route names may not contain . $ # or spaces", rule="schema")
    for err in validator(twin, version, definition).iter_errors(frag.value):
        yield from _to_findings(err, frag.pointer, twin, version)


def _valid_name(twin: str, version: str, definition: str, name: str) -> bool:
    """Whether ``name`` may be a member of the object that definition describes (its patternProperties)."""
    schema = load_schema(twin, version)["definitions"][definition]
    if schema.get("additionalProperties", True) is not False:
        return True
    return any(re.search(p, name) for p in schema.get("patternProperties", {}))


# -- jsonschema errors → findings -------------------------------------------------------------------------

def _to_findings(err: JsonSchemaError, base: Ptr, twin: str, version: str) -> Iterator[Finding]:
    import difflib

    ptr: Ptr = (*base, *err.absolute_path)
    hint = _hint(err)
    kind = err.validator
    where = _name(ptr)
    if kind == "required":
        missing = _quoted(err.message)
        yield Finding.at(ERROR, ptr, f"{where} is missing required property {missing}", hint, rule="schema")
    elif kind == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        patterns = list(err.schema.get("patternProperties", {}))
        for extra in _extras(err):
            if patterns and not allowed:
                msg = f"name {extra!r} is not allowed in {where}"
            else:
                msg = f"unknown property {extra!r} in {where}"
            close = difflib.get_close_matches(extra, allowed, n=1)
            h = f"did you mean {close[0]!r}?" if close else hint
            if not close and allowed:
                h = (hint + "; " if hint else "") + "allowed: " + ", ".join(allowed)
            yield Finding.at(ERROR, (*ptr, extra), msg, h, rule="schema")
    elif kind == "enum":
        options = err.validator_value
        close = difflib.get_close_matches(str(err.instance), [str(o) for o in options], n=1)
        h = f"did you mean {close[0]!r}? " if close else ""
        yield Finding.at(ERROR, ptr, f"{where} is {err.instance!r}, not one of {', '.join(map(str, options))}",
                         (h + (hint or "")).strip() or None, rule="schema")
    elif kind == "const" and ptr[-1:] == ("schemaVersion",):
        known = ", ".join(f'"{v}"' for v in KNOWN_VERSIONS[twin])
        if isinstance(err.instance, str):
            msg = f"{where} must be {err.validator_value!r}, got {err.instance!r}"
        else:
            msg = f"{where} must be a string, one of {known}; got {_kind(err.instance)}"
        example = known.split(", ")[-1]
        yield Finding.at(ERROR, ptr, msg, f'write the version in quotes, e.g. "schemaVersion": {example}',
                         rule="schema")
    elif kind == "type":
        expected = err.validator_value
        if isinstance(expected, list):
            expected = " or ".join(expected)
        if ptr and isinstance(ptr[-1], str) and ptr[-1].lower().startswith("createoptions") and isinstance(
            err.instance, dict
        ):
            hint = "this looks like a template: render it with `edgegen genconfig`, which serializes createOptions"
        yield Finding.at(ERROR, ptr, f"{where} must be {_article(expected)}, not {_kind(err.instance)}", hint,
                         rule="schema")
    elif kind in ("anyOf", "oneOf") and err.context:
        # report the branch whose type fits the value (a route object's bad priority, not "must be a string")
        wrong_type = {e.relative_schema_path[0] for e in err.context
                      if e.validator == "type" and len(e.relative_path) == 0}
        fitting = [e for e in err.context if e.relative_schema_path[0] not in wrong_type]
        from jsonschema.exceptions import best_match

        for sub in fitting or [best_match(err.context)]:
            yield from _to_findings(sub, base, twin, version)
    else:
        yield Finding.at(ERROR, ptr, f"{where}: {err.message}", hint, rule="schema")


def _hint(err: JsonSchemaError) -> str | None:
    hint = err.schema.get("x-hint") if isinstance(err.schema, dict) else None
    if hint is None and err.parent is not None:
        return _hint(err.parent)
    return hint


def _extras(err: JsonSchemaError) -> list[str]:
    instance = err.instance if isinstance(err.instance, dict) else {}
    props = err.schema.get("properties", {})
    patterns = err.schema.get("patternProperties", {})
    return [k for k in instance if k not in props and not any(re.search(p, k) for p in patterns)]


def _quoted(message: str) -> str:
    return message.split(" is a required property")[0]


def _name(ptr: Ptr) -> str:
    for seg in reversed(ptr):
        if isinstance(seg, str):
            return seg
    return "the manifest"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _article(expected: str) -> str:
    return ("an " if expected[:1] in "aeiou" else "a ") + expected
