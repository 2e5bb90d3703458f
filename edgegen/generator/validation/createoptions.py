"""createOptions chunk checks (the rules iotedgedev applies, with the same wording, plus gaps and stray keys).

A rendered manifest carries createOptions as a JSON string cut into ≤ 512-character chunks ``createOptions``,
``createOptions01``, ``createOptions02``… edgeAgent (and iotedgedev) join them in order and stop at the first
missing index, so a gap silently drops everything after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgegen.generator.validation.findings import ERROR, INFO, WARNING, Finding
from edgegen.generator.validation.model import Ptr

__all__ = ["CHUNK_SIZE", "MAX_CHUNKS", "check_module"]

CHUNK_SIZE = 512
MAX_CHUNKS = 100  # edgeAgent reads createOptions … createOptions99
_CHUNK_KEY = re.compile(r"^createOptions(\d*)$", re.IGNORECASE)


def chunk_key(index: int) -> str:
    return "createOptions" if index == 0 else f"createOptions{index:02d}"


def check_module(name: str, module_ptr: Ptr, module: Mapping[str, Any]) -> Iterator[Finding]:
    settings = module.get("settings")
    if not isinstance(settings, Mapping) or "createOptions" not in settings:
        yield from _stray_keys(name, (*module_ptr, "settings"), settings if isinstance(settings, Mapping) else {})
        return
    sptr: Ptr = (*module_ptr, "settings")
    if isinstance(settings["createOptions"], (Mapping, list)):
        return  # not rendered yet: the schema check reports the type, genconfig serializes it
    # contiguous chunks, as edgeAgent reads them
    chunks: list[tuple[str, Any]] = []
    for i in range(MAX_CHUNKS):
        key = chunk_key(i)
        if key not in settings:
            break
        chunks.append((key, settings[key]))
    for key, value in chunks:
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) > CHUNK_SIZE:
            yield Finding.at(
                ERROR, (*sptr, key),
                f"Length of {key} in module {name} exceeds {CHUNK_SIZE} ({len(text)} characters)",
                "IoT Hub rejects twin string values longer than 512 characters; let `edgegen genconfig` split "
                "createOptions into createOptions, createOptions01, …",
                rule="create-options",
            )
        if not isinstance(value, str):
            yield Finding.at(ERROR, (*sptr, key), f"{key} of module {name} must be a string chunk, not JSON "
                             f"{type(value).__name__}", "each chunk is a piece of one JSON string",
                             rule="create-options")
    yield from _gaps(name, sptr, settings, len(chunks))
    yield from _stray_keys(name, sptr, settings)
    merged = "".join(v if isinstance(v, str) else json.dumps(v) for _, v in chunks).strip()
    ptr = (*sptr, "createOptions")
    if merged == "":
        # edgeAgent and the official schema accept it (read as {}); iotedgedev warns "should be an object"
        yield Finding.at(INFO, ptr, f"createOptions of module {name} is empty: edgeAgent reads it as {{}}",
                         "nothing to do; iotedgedev warns about it, edgeAgent does not mind", rule="create-options")
        return
    if not merged.startswith("{"):
        yield Finding.at(
            ERROR, ptr, f"createOptions of module {name} should be an object (it starts with {merged[:20]!r})",
            "createOptions is a Docker create-options JSON object, e.g. {\"HostConfig\": {…}}",
            rule="create-options",
        )
        return
    try:
        json.loads(merged)
    except ValueError as exc:
        yield Finding.at(
            ERROR, ptr,
            f"createOptions of module {name} is not a valid JSON string: {exc.msg} at character {exc.pos} "
            f"of the joined chunks ({len(chunks)} chunk(s))",
            "the chunks createOptions, createOptions01, … are joined in order and must form one JSON object",
            rule="create-options",
        )


def _gaps(name: str, sptr: Ptr, settings: Mapping[str, Any], contiguous: int) -> Iterator[Finding]:
    later = sorted(
        int(m.group(1)) for k in settings
        if (m := re.match(r"^createOptions(\d\d)$", k)) and int(m.group(1)) > contiguous
    )
    for idx in later:
        key = chunk_key(idx)
        yield Finding.at(
            ERROR, (*sptr, key),
            f"{key} of module {name} is never read: {chunk_key(contiguous)} is missing, and chunks are joined "
            f"only up to the first gap",
            "number the chunks contiguously: createOptions, createOptions01, createOptions02, …",
            rule="create-options",
        )


def _stray_keys(name: str, sptr: Ptr, settings: Mapping[str, Any]) -> Iterator[Finding]:
    for key in settings:
        m = _CHUNK_KEY.match(key)
        if not m or re.match(r"^createOptions(0[1-9]|[1-9]\d)?$", key):
            continue
        yield Finding.at(
            WARNING, (*sptr, key),
            f"{key} in module {name} is not a createOptions chunk edgeAgent reads",
            "chunk names are createOptions, then createOptions01 … createOptions99 (two digits, capital O)",
            rule="create-options",
        )
