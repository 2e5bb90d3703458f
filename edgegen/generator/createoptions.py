"""createOptions: serialize, split into 512-character chunks, merge back; resource limits.

* An object (anything not a string) is serialized compactly, ``json.dumps(v, separators=(",", ":"))``;
  a string is kept verbatim (iotedgedev ``convert_create_options``).
* The string is cut into 512-character pieces: ``createOptions``, ``createOptions01``, ``createOptions02``...
  More than 8 pieces (4096 characters) is an error naming the module and the size. ``chunk=False`` keeps one
  unsplit string (IoT Central rejects chunked createOptions).
* Resource limits from an Azure ML ``deploymentconfig.json`` (``containerResourceRequirements``):
  ``cpu`` (cores) becomes ``HostConfig.NanoCpus`` (cores x 1e9) and ``memoryInGB`` becomes ``HostConfig.Memory``
  (GiB x 1024**3 bytes); ``cpuLimit``/``memoryInGBLimit`` are preferred when present. The merge only fills
  keys the template does not set: an explicit ``HostConfig.NanoCpus``/``Memory`` in createOptions wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from edgegen.common.safeload import InputError, loads_json
from edgegen.generator.errors import Location, RenderError

__all__ = [
    "MAX_CHUNKS",
    "MAX_CHUNK_SIZE",
    "ResourceLimits",
    "apply_create_options",
    "chunk",
    "chunk_key",
    "merge_chunks",
    "merge_resource_limits",
    "parse_deployment_config",
    "serialize",
]

MAX_CHUNK_SIZE = 512
MAX_CHUNKS = 8


def serialize(value: Any) -> str:
    """A createOptions value as the manifest carries it: strings verbatim, anything else compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def chunk_key(index: int) -> str:
    """``createOptions`` for 0, then ``createOptions01``, ``createOptions02``..."""
    return "createOptions" if index == 0 else f"createOptions{index:02d}"


def chunk(text: str, size: int = MAX_CHUNK_SIZE) -> list[str]:
    """Consecutive ``size``-character pieces of ``text`` (``[]`` for an empty string, like iotedgedev's regex)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def merge_chunks(settings: Mapping[str, Any]) -> str:
    """Join ``createOptions`` + ``createOptions01``...; stops at the first missing index (iotedgedev)."""
    parts = [str(settings.get("createOptions", ""))]
    for i in range(1, 100):
        key = chunk_key(i)
        if key not in settings:
            break
        parts.append(str(settings[key]))
    return "".join(parts)


def apply_create_options(module_name: str, settings: MutableMapping[str, Any], *, chunked: bool = True,
                         json_path: str | None = None) -> None:
    """Serialize (and split) ``settings["createOptions"]`` in place, as iotedgedev's genconfig does."""
    if "createOptions" not in settings:
        return
    text = serialize(settings["createOptions"])
    if not chunked:
        settings["createOptions"] = text
        return
    pieces = chunk(text)
    if len(pieces) > MAX_CHUNKS:
        raise RenderError(
            f"createOptions of module {module_name!r} is {len(text)} characters once serialized: that needs "
            f"{len(pieces)} chunks of {MAX_CHUNK_SIZE}, more than the {MAX_CHUNKS} allowed "
            f"({MAX_CHUNKS * MAX_CHUNK_SIZE} characters)",
            location=Location(json_path=json_path),
            hint="shrink createOptions (move settings to env or the module twin), or use --no-chunk to write one "
            "unsplit string (edgeAgent reads it; IoT Central requires it)",
        )
    for i, piece in enumerate(pieces):
        settings[chunk_key(i)] = piece


@dataclass(frozen=True)
class ResourceLimits:
    nano_cpus: int | None = None
    memory: int | None = None  # bytes
    source: str | None = None  # the deploymentconfig.json path

    def host_config(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.nano_cpus is not None:
            out["NanoCpus"] = self.nano_cpus
        if self.memory is not None:
            out["Memory"] = self.memory
        return out


def _positive(data: Mapping[str, Any], key: str, file: str) -> float | None:
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise RenderError(
            f"{key} must be a positive number, not {value!r}",
            location=Location(file=file, json_path=f"containerResourceRequirements.{key}"),
            hint='e.g. "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0}',
        )
    return float(value)


def parse_deployment_config(text: str, file: str) -> ResourceLimits:
    """Resource limits from the text of an Azure ML ``deploymentconfig.json``."""
    try:
        data = loads_json(text, file=file, what="deploymentconfig.json")
    except InputError as exc:
        raise exc.as_error(RenderError) from None
    req = data.get("containerResourceRequirements") if isinstance(data, dict) else None
    if req is None:
        return ResourceLimits(source=file)
    if not isinstance(req, dict):
        raise RenderError("containerResourceRequirements must be an object",
                          location=Location(file=file, json_path="containerResourceRequirements"))
    cpu = _positive(req, "cpuLimit", file) or _positive(req, "cpu", file)
    mem = _positive(req, "memoryInGBLimit", file) or _positive(req, "memoryInGB", file)
    return ResourceLimits(
        nano_cpus=None if cpu is None else round(cpu * 1_000_000_000),
        memory=None if mem is None else round(mem * 1024**3),
        source=file,
    )


def merge_resource_limits(module_name: str, create_options: Any, limits: ResourceLimits,
                          json_path: str | None = None) -> Any:
    """createOptions with ``HostConfig.NanoCpus``/``Memory`` filled from ``limits`` where not set explicitly.

    An object is merged as is; a string is parsed first (and re-serialized compactly). Returns the new value.
    """
    extra = limits.host_config()
    if not extra:
        return create_options
    was_string = isinstance(create_options, str)
    value: Any = create_options
    if was_string:
        try:
            value = json.loads(create_options) if create_options.strip() else {}
        except json.JSONDecodeError as exc:
            raise RenderError(
                f"createOptions of module {module_name!r} is a string that is not JSON ({exc.msg}), so the "
                f"resource limits of {limits.source} cannot be merged into it",
                location=Location(json_path=json_path),
                hint="write createOptions as a JSON object in the template",
            ) from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise RenderError(f"createOptions of module {module_name!r} must be an object to take resource limits",
                          location=Location(json_path=json_path))
    merged = dict(value)
    host = merged.get("HostConfig")
    host = dict(host) if isinstance(host, dict) else {}
    for key, number in extra.items():
        host.setdefault(key, number)
    merged["HostConfig"] = host
    return serialize(merged) if was_string else merged
