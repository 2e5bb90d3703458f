"""Model placeholders: ``${MODELS.<name>}`` and ``${MODELS.<name>:<version>}`` in a deployment template.

Each becomes ``<name>:<version>@sha256:<hex>``: the latest (or named) registered version, pinned with the
digest of its bytes, so a manifest says exactly which model bytes a module serves. They may stand anywhere in a
string (usually a module's ``EDGEGEN_MODELS`` env value, several separated by commas).

A module's ``EDGEGEN_MODELS`` is then normalised entry by entry: ``name`` and ``name:version`` are pinned the
same way, and an entry that already carries a digest must match the registry's (otherwise the deployment is
refused). A module.json may declare ``"models": ["name[:version]", …]``; a module built from it gets
``EDGEGEN_MODELS`` when the template does not set it. The registry is reached through ``ModelSource`` (the
models area implements it): the generator itself reads no registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol

from edgegen.errors import EdgegenError
from edgegen.generator.errors import Location, UnresolvedError
from edgegen.generator.modulejson import ModuleSpec

__all__ = ["MODELS_ENV", "MODEL_PLACEHOLDER", "ModelSource", "resolve_models"]

MODEL_PLACEHOLDER = re.compile(r"\$\{MODELS\.([^}:]*)(?::([^}]*))?\}")
MODELS_ENV = "EDGEGEN_MODELS"


class ModelSource(Protocol):
    def pin(self, name: str, version: int | None = None) -> str:
        """``name:version@sha256:<hex>`` of a registered model (latest when version is None); raises an
        ``EdgegenError`` saying why when there is none."""
        ...


def _version(raw: str | None, where: Location, text: str) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise UnresolvedError(f"placeholder {text}: version {raw!r} is not a positive integer", name=text,
                              location=where, hint="write ${MODELS.<name>} (latest) or ${MODELS.<name>:<version>}")
    return int(raw)


def _pin(models: ModelSource | None, name: str, version: int | None, what: str, where: Location) -> str:
    if models is None:
        raise UnresolvedError(f"{what} names a model, but no model registry was given to the renderer",
                              name=what, location=where, hint="render with edgegen genconfig from the solution folder")
    try:
        return models.pin(name, version)
    except EdgegenError as exc:
        raise UnresolvedError(f"{what}: {exc.message}", name=what, location=where, hint=exc.hint) from None


def _replace(value: str, models: ModelSource | None, where: Location) -> str:
    def sub(m: re.Match[str]) -> str:
        return _pin(models, m.group(1), _version(m.group(2), where, m.group(0)), f"placeholder {m.group(0)}", where)

    return MODEL_PLACEHOLDER.sub(sub, value)


def _walk(obj: Any, models: ModelSource | None, path: str, label: str) -> Any:
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _walk(v, models, f"{path}.{k}", label)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = _walk(v, models, f"{path}[{i}]", label)
    elif isinstance(obj, str) and "${MODELS." in obj:
        return _replace(obj, models, Location(file=label, json_path=path))
    return obj


def _normalise(value: str, models: ModelSource | None, where: Location) -> str:
    out = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        ref, _, digest = item.partition("@")
        name, _, raw_version = ref.partition(":")
        version = _version(raw_version or None, where, item)
        pinned = _pin(models, name, version, f"{MODELS_ENV} entry {item!r}", where)
        if digest and pinned.partition("@")[2] != digest:
            raise UnresolvedError(
                f"{MODELS_ENV} entry {item!r}: the registry's {pinned.partition('@')[0]} has "
                f"{pinned.partition('@')[2]}; the deployment is refused",
                name=item, location=where,
                hint="the model's bytes are not the ones this deployment pins: use ${MODELS.<name>} or the "
                     "registered digest")
        out.append(pinned)
    return ",".join(out)


def resolve_models(manifest: MutableMapping[str, Any], users: Mapping[str, Any], specs: Mapping[str, ModuleSpec],
                   models: ModelSource | None, label: str) -> list[str]:
    """Resolve model placeholders in ``manifest`` (in place) and pin every module's ``EDGEGEN_MODELS``.

    ``users`` are the user modules of ``manifest``; ``specs`` the module.json each image came from.
    Returns notes for the genconfig report.
    """
    _walk(manifest, models, "$", label)
    notes = []
    for name, info in users.items():
        if not isinstance(info, dict):
            continue
        path = f"modulesContent.$edgeAgent['properties.desired'].modules.{name}.env.{MODELS_ENV}.value"
        env = info.get("env")
        entry = env.get(MODELS_ENV) if isinstance(env, dict) else None
        value = entry.get("value") if isinstance(entry, dict) else None
        spec = specs.get(name)
        declared = spec.raw.get("models") if spec is not None else None
        if value is None and declared:
            mj = Location(file=str(spec.folder / "module.json"), json_path="models") if spec else None
            if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
                raise UnresolvedError("module.json 'models' must be a list of \"name[:version]\" strings",
                                      name="models", location=mj)
            value = ",".join(declared)
            info["env"] = env = env if isinstance(env, dict) else {}
            env[MODELS_ENV] = {"value": ""}
            notes.append(f"module {name}: {MODELS_ENV} from {spec.folder / 'module.json'} (models)")  # type: ignore[union-attr]
        if not isinstance(value, str) or not value.strip():
            continue
        pinned = _normalise(value, models, Location(file=label, json_path=path))
        env[MODELS_ENV]["value"] = pinned  # type: ignore[index]
        notes.append(f"module {name}: models {pinned}")
    return notes
