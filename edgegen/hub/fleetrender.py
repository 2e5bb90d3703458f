"""genconfig's render, many times over one solution: what does not depend on the variables is read once.

A fleet renders the same template with thousands of variable sets. ``genconfig`` per set re-reads the
template, every module.json and deploymentconfig.json, and serializes an output text the fleet does not use.
``FleetRenderer`` runs the same steps (``load_env`` → template → ``DiskModules`` → ``render``) with:

- the template text read once per path (the first render of each path goes through ``genconfig`` itself, so
  a missing or undecodable template fails with its errors);
- module.json files read once; a ``ModuleSpec`` reused when the module.json expands to the same text with no
  unresolved variable (the spec is a function of that text), else loaded as ``DiskModules`` does;
- ``deploymentconfig.json`` resource limits read once per module folder.

The manifests are the ones ``genconfig(..., write=False, validate=False)`` returns (tests/hub/test_fleet.py
compares them). One renderer serves one ``render_fleet`` call: files changed meanwhile are not seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgegen.generator.createoptions import ResourceLimits
from edgegen.generator.expand import expand
from edgegen.generator.genconfig import find_template, genconfig
from edgegen.generator.modulejson import ModuleSpec
from edgegen.generator.render import RenderOptions, render
from edgegen.generator.solution import DiskModules, load_env

__all__ = ["FleetRenderer"]

_UNREAD: Any = object()


class _Files:
    """What one fleet render reads from disk, kept for the next variable set."""

    def __init__(self) -> None:
        self.templates: dict[Path, str] = {}
        self.folders: dict[Path, list[str]] = {}
        self.raw: dict[Path, str | None] = {}  # module.json text (None: unreadable → DiskModules' own error)
        self.specs: dict[tuple[Path, str], ModuleSpec] = {}  # (folder, expanded module.json) -> spec
        self.limits: dict[Path, ResourceLimits | None] = {}


class _SharedModules(DiskModules):
    def __init__(self, files: _Files, template_dir: Path, modules_path: str, env: Mapping[str, str]) -> None:
        super().__init__(template_dir, modules_path, env)
        self._files = files

    def folders(self) -> list[str]:
        cached = self._files.folders.get(self.modules_dir)
        if cached is None:
            cached = self._files.folders[self.modules_dir] = super().folders()
        return list(cached)

    def _load(self, folder: Path) -> ModuleSpec:
        raw = self._files.raw.get(folder, _UNREAD)
        if raw is _UNREAD:
            try:
                raw = (folder / "module.json").read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                raw = None
            self._files.raw[folder] = raw
        if raw is None:
            return super()._load(folder)  # raises the error genconfig would
        exp = expand(raw, self.env)
        if exp.unresolved:
            return super()._load(folder)  # the unresolved-variable error, as genconfig reports it
        key = (folder, exp.text)
        spec = self._files.specs.get(key)
        if spec is None:
            spec = self._files.specs[key] = super()._load(folder)
        return spec

    def limits(self, spec: ModuleSpec) -> ResourceLimits | None:
        if spec.folder not in self._files.limits:
            self._files.limits[spec.folder] = super().limits(spec)  # a bad file raises (and is not kept)
        return self._files.limits[spec.folder]


class FleetRenderer:
    """``render(environ) -> manifest``: genconfig's manifest for one environment, without writing it."""

    def __init__(self, base: Path, template: str | None, platform: str | None) -> None:
        self.base = base
        self.template = template
        self.platform = platform
        self._files = _Files()

    def render(self, environ: Mapping[str, str]) -> dict[str, Any]:
        env = load_env(self.base, environ)
        template = self.template or find_template(env, self.base)
        path = self.base / template
        text = self._files.templates.get(path)
        if text is None:
            result = genconfig(self.template, platform=self.platform, cwd=self.base, environ=environ, write=False,
                               validate=False)
            # the text genconfig rendered: same decoding and newline handling
            raw = path.read_bytes().decode("utf-8-sig")
            self._files.templates[path] = raw.replace("\r\n", "\n").replace("\r", "\n")
            return result.manifest
        source = _SharedModules(self._files, Path(os.path.dirname(path)), env.modules_path, env.values)
        options = RenderOptions(platform=self.platform or env.platform, container_tag=env.container_tag)
        return render(text, file=template, env=env.values, source=source, options=options).manifest
