"""A read-only view of a deployment manifest: where modulesContent is, full desired properties and layered fragments.

A manifest is either ``{"modulesContent": {...}}`` (what genconfig writes and ``set-modules`` takes) or a
deployment ``{"content": {"modulesContent": {...}}, ...}`` (at scale / layered). Each module twin's content holds
either ``properties.desired`` (the whole desired document) or layered property paths such as
``properties.desired.modules.x`` / ``properties.desired.routes.r``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from edgegen.generator.validation.findings import Segment

__all__ = ["DESIRED", "Fragment", "ManifestView", "Ptr"]

DESIRED = "properties.desired"
AGENT = "$edgeAgent"
HUB = "$edgeHub"

Ptr = tuple[Segment, ...]


@dataclass(frozen=True)
class Fragment:
    """One layered property path: ``properties.desired.routes.r`` → subpath ``('routes', 'r')``."""

    twin: str
    subpath: tuple[str, ...]
    pointer: Ptr
    value: Any


class ManifestView:
    def __init__(self, manifest: Mapping[str, Any], messaging: Mapping[str, bool] | None = None) -> None:
        self.manifest = manifest
        self.messaging = messaging  # module -> whether its code uses edgeHub messaging (when the caller knows)
        self.root: Ptr | None = None
        self.modules_content: Mapping[str, Any] = {}
        if isinstance(manifest.get("modulesContent"), Mapping):
            self.root = ("modulesContent",)
            self.modules_content = manifest["modulesContent"]
        elif isinstance(manifest.get("content"), Mapping) and isinstance(
            manifest["content"].get("modulesContent"), Mapping
        ):
            self.root = ("content", "modulesContent")
            self.modules_content = manifest["content"]["modulesContent"]
        self.is_deployment = self.root == ("content", "modulesContent")
        # lookups are asked for by several rules: computed once per view (the manifest is not changed meanwhile)
        self._fragments: dict[str, list[Fragment]] = {}
        self._children: dict[tuple[str, tuple[str, ...]], dict[str, tuple[Ptr, Any]]] = {}
        self._layered: bool | None = None

    # -- twins --------------------------------------------------------------------------------------
    def twins(self) -> Iterator[tuple[str, Ptr, Any]]:
        assert self.root is not None
        for name, content in self.modules_content.items():
            yield name, (*self.root, name), content

    def twin_pointer(self, twin: str) -> Ptr:
        assert self.root is not None
        return (*self.root, twin)

    def desired(self, twin: str) -> tuple[Ptr, Mapping[str, Any]] | None:
        """The full ``properties.desired`` object of a twin, if present (and an object)."""
        content = self.modules_content.get(twin)
        if isinstance(content, Mapping) and isinstance(content.get(DESIRED), Mapping):
            return (*self.twin_pointer(twin), DESIRED), content[DESIRED]
        return None

    def fragments(self, twin: str) -> list[Fragment]:
        cached = self._fragments.get(twin)
        if cached is not None:
            return cached
        content = self.modules_content.get(twin)
        if not isinstance(content, Mapping):
            return []
        out = []
        for key, value in content.items():
            if isinstance(key, str) and key.startswith(DESIRED + "."):
                sub = tuple(key[len(DESIRED) + 1:].split("."))
                out.append(Fragment(twin, sub, (*self.twin_pointer(twin), key), value))
        self._fragments[twin] = out
        return out

    @property
    def layered(self) -> bool:
        if self._layered is None:
            self._layered = any(self.fragments(name) for name in self.modules_content)
        return self._layered

    # -- merged lookups over full desired + fragments ------------------------------------------------
    def get(self, twin: str, subpath: tuple[str, ...]) -> tuple[Ptr, Any] | None:
        """A single value at ``subpath`` of a twin's desired properties, from the full document or a fragment."""
        full = self.desired(twin)
        if full is not None:
            ptr, node = full
            found = _walk(node, subpath)
            if found is not _MISSING:
                return (*ptr, *subpath), found
        for frag in self.fragments(twin):
            n = len(frag.subpath)
            if subpath[:n] == frag.subpath:
                found = _walk(frag.value, subpath[n:])
                if found is not _MISSING:
                    return (*frag.pointer, *subpath[n:]), found
        return None

    def children(self, twin: str, subpath: tuple[str, ...]) -> dict[str, tuple[Ptr, Any]]:
        """The members of the object at ``subpath`` (e.g. ``('modules',)``), merged over full desired and fragments.

        The same dict is returned on every call for this view: read it, do not change it."""
        cached = self._children.get((twin, subpath))
        if cached is not None:
            return cached
        out: dict[str, tuple[Ptr, Any]] = {}
        self._children[(twin, subpath)] = out
        full = self.desired(twin)
        if full is not None:
            ptr, node = full
            found = _walk(node, subpath)
            if isinstance(found, Mapping):
                for k, v in found.items():
                    out[k] = ((*ptr, *subpath, k), v)
        for frag in self.fragments(twin):
            if frag.subpath == subpath and isinstance(frag.value, Mapping):
                for k, v in frag.value.items():
                    out[k] = ((*frag.pointer, k), v)
            elif len(frag.subpath) == len(subpath) + 1 and frag.subpath[:-1] == subpath:
                out[frag.subpath[-1]] = (frag.pointer, frag.value)
        return out

    def modules(self) -> dict[str, tuple[Ptr, Any]]:
        return self.children(AGENT, ("modules",))

    def system_modules(self) -> dict[str, tuple[Ptr, Any]]:
        return self.children(AGENT, ("systemModules",))

    def routes(self) -> dict[str, tuple[Ptr, Any]]:
        return self.children(HUB, ("routes",))


class _Missing:
    pass


_MISSING: Any = _Missing()


def _walk(node: Any, subpath: tuple[str, ...]) -> Any:
    for seg in subpath:
        if not isinstance(node, Mapping) or seg not in node:
            return _MISSING
        node = node[seg]
    return node
