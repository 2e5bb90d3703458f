"""Image placeholders: ``${MODULES.<folder>[.<platform>|.debug]}`` and ``${MODULEDIR<path>[.<platform>|.debug]}``.

As in iotedgedev 3.3.9 (``Modules._update_module_maps``): for every platform ``p`` of a module.json the key
``${<base>.p}`` maps to ``lower(repository):version[-CONTAINER_TAG]-p``; ``${<base>}`` maps to the selected
platform and ``${<base>.debug}`` to ``<platform>.debug`` when the module.json lists them. A user module's
``settings.image`` is replaced only when the *whole* string is such a key. ``<base>`` is ``MODULES.<folder>``
for each folder of ``<template dir>/<MODULES_PATH>`` that holds a module.json, or ``MODULEDIR<path>`` with
``path`` relative to the template's folder (edgegen also accepts Windows ``\\`` separators there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from edgegen.generator.createoptions import ResourceLimits
from edgegen.generator.modulejson import ModuleSpec

__all__ = ["MODULEDIR_PATTERN", "ImageResolution", "ModuleSource", "find_placeholders", "placeholder_map",
           "resolve_images"]

MODULEDIR_PATTERN = re.compile(r"\$\{MODULEDIR<(.+)>(\..+)?\}")  # iotedgedev's moduledir_placeholder_pattern
_LEFTOVER = re.compile(r"\$\{(MODULES\.[^}]*|MODULEDIR<[^}]*)\}")


class ModuleSource(Protocol):
    """Where module.json files come from (the disk, in ``solution.DiskModules``)."""

    def folders(self) -> list[str]:
        """Names of the folders under the modules path that hold a module.json."""
        ...

    def load_folder(self, name: str) -> ModuleSpec: ...

    def load_dir(self, relpath: str) -> ModuleSpec: ...

    def folder_path(self, name: str) -> str:
        """The module.json path searched for ``${MODULES.<name>}``."""
        ...

    def dir_path(self, relpath: str) -> str:
        """The module.json path searched for ``${MODULEDIR<relpath>}``."""
        ...

    def load_all(self) -> dict[str, ModuleSpec]:
        """Every module folder's module.json (for the Jinja2 context)."""
        ...

    def limits(self, spec: ModuleSpec) -> ResourceLimits | None:
        """Resource limits from the module's deploymentconfig.json, if any."""
        ...


def placeholder_map(base: str, spec: ModuleSpec, platform: str, container_tag: str = "") -> dict[str, str]:
    """Every placeholder key of one module.json and the image tag it stands for."""
    out: dict[str, str] = {}
    for plat in spec.platforms:
        tag = spec.image(plat, container_tag)
        out["${" + base + "." + plat + "}"] = tag
        if plat == platform:
            out["${" + base + "}"] = tag
        elif plat == platform + ".debug":
            out["${" + base + ".debug}"] = tag
    return out


@dataclass
class ImageResolution:
    images: dict[str, str]  # user module name -> image tag (only the replaced ones)
    specs: dict[str, ModuleSpec]  # user module name -> the module.json its image came from
    bases: dict[str, str]  # placeholder base ("MODULES.x" / "MODULEDIR<p>") -> module.json path


def _folder_candidates(inner: str, folders: list[str]) -> list[str]:
    return [f for f in folders if inner == f or inner.startswith(f + ".")]


def resolve_images(modules: MutableMapping[str, Any], source: ModuleSource, platform: str,
                   container_tag: str = "") -> ImageResolution:
    """Replace whole-string image placeholders of ``modules`` (user modules) in place."""
    table: dict[str, str] = {}
    owner: dict[str, ModuleSpec] = {}
    bases: dict[str, str] = {}
    folders: list[str] | None = None
    loaded: set[str] = set()

    def add(base: str, spec: ModuleSpec, path: str) -> None:
        bases[base] = path
        for key, tag in placeholder_map(base, spec, platform, container_tag).items():
            table[key] = tag
            owner[key] = spec

    for info in modules.values():
        image = _image_of(info)
        if image is None:
            continue
        if image.startswith("${MODULES.") and image.endswith("}"):
            if folders is None:
                folders = source.folders()
            for folder in _folder_candidates(image[len("${MODULES."):-1], folders):
                if folder not in loaded:
                    loaded.add(folder)
                    add(f"MODULES.{folder}", source.load_folder(folder), source.folder_path(folder))
        m = MODULEDIR_PATTERN.search(image)
        if m is not None and f"MODULEDIR<{m.group(1)}>" not in bases:
            rel = m.group(1)
            add(f"MODULEDIR<{rel}>", source.load_dir(rel), source.dir_path(rel))

    images: dict[str, str] = {}
    specs: dict[str, ModuleSpec] = {}
    for name, info in modules.items():
        image = _image_of(info)
        if image is not None and image in table:
            info["settings"]["image"] = table[image]
            images[name] = table[image]
            specs[name] = owner[image]
    return ImageResolution(images, specs, bases)


def _image_of(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    settings = info.get("settings")
    if not isinstance(settings, dict):
        return None
    image = settings.get("image")
    return image if isinstance(image, str) else None


def find_placeholders(obj: Any, path: str = "$") -> Iterator[tuple[str, str, str]]:
    """Every ``${MODULES...}``/``${MODULEDIR<...>}`` left in ``obj``: (json path, the string, the placeholder)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from find_placeholders(v, f"{path}.{k}" if _plain(k) else f"{path}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from find_placeholders(v, f"{path}[{i}]")
    elif isinstance(obj, str) and "${MODULE" in obj:
        for m in _LEFTOVER.finditer(obj):
            yield path, obj, m.group(0)


def _plain(key: str) -> bool:
    return key.replace("_", "a").replace("$", "a").replace("-", "a").isalnum()
