"""genconfig's render, many times over one solution: what does not depend on the variables is read once.

A fleet renders the same template with thousands of variable sets. ``genconfig`` per set re-reads the
template, every module.json and deploymentconfig.json, and serializes an output text the fleet does not use.
``FleetRenderer`` runs the same steps (``load_env`` → template → ``DiskModules`` → ``render``) with:

- the template text read once per path (the first render of each path goes through ``genconfig`` itself, so
  a missing or undecodable template fails with its errors);
- module.json files read once; a ``ModuleSpec`` reused when the module.json expands to the same text with no
  unresolved variable (the spec is a function of that text), else loaded as ``DiskModules`` does;
- ``deploymentconfig.json`` resource limits read once per module folder;
- no image facts: genconfig's default adds no registryCredentials (its --registry-credentials is not a fleet option);
- ``.env`` parsed once. A variable that is not ``DOTENV_FILE`` or a defaulted setting, and whose name occurs
  in the ``.env`` text only as the key of its own lines (so no value can interpolate it; python-dotenv expands
  ``${NAME}`` only as written), changes that parse in one way only: its own line no longer applies (the
  environment wins). Variable sets made of such names get ``load_env``'s result from the one parse; any other
  set goes through ``load_env`` itself.

The manifests are the ones ``genconfig(..., write=False, validate=False)`` returns (tests/hub/test_fleet.py
compares them). One renderer serves one ``render_fleet`` call: files changed meanwhile are not seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, read_text
from edgegen.generator.createoptions import ResourceLimits
from edgegen.generator.expand import expand
from edgegen.generator.modulejson import ModuleSpec
from edgegen.generator.render import RenderOptions, render
from edgegen.generator.solution import DEFAULTS, DiskModules, SolutionEnv, find_template, load_env, parse_dotenv
from edgegen.models.registry import SolutionModels
from edgegen.pipeline import genconfig

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
                raw = read_text(folder / "module.json", what="module.json")
            except InputError:
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


@dataclass(frozen=True)
class _Dotenv:
    text: str | None
    values: dict[str, str]  # what the .env adds to the fleet's own environment
    warnings: tuple[str, ...]
    path: Path | None
    keys: dict[str, int]  # binding key -> how many lines set it

    def only_as_key(self, name: str) -> bool:
        """Whether ``name`` may differ from the fleet's environment without changing the parse but for its own
        lines: not a defaulted setting or DOTENV_FILE, and every occurrence in the text is one of its keys."""
        if not name or name == "DOTENV_FILE" or name in DEFAULTS or self.text is None:
            return False
        return self.text.count(name) == self.keys.get(name, 0)


class FleetRenderer:
    """``render(variables) -> manifest``: genconfig's manifest for ``{**environ, **variables}``, not written."""

    def __init__(self, base: Path, template: str | None, platform: str | None, environ: Mapping[str, str]) -> None:
        self.base = base
        self.template = template
        self.platform = platform
        self.environ = dict(environ)
        self.models = SolutionModels(base, self.environ)  # ${MODELS.x}: pinned once for every render
        self._files = _Files()
        self._dotenv: _Dotenv | None = None

    def solution_env(self, variables: Mapping[str, str]) -> SolutionEnv:
        """``load_env(base, {**environ, **variables})``, from one parse of ``.env`` when that cannot differ."""
        environ = {**self.environ, **variables}
        if self._dotenv is None:
            self._dotenv = self._read_dotenv()
        dotenv = self._dotenv
        if dotenv.text is None or not all(dotenv.only_as_key(k) for k in variables):
            return load_env(self.base, environ)
        env = dict(environ)
        env.update({k: v for k, v in dotenv.values.items() if k not in variables})
        explicit = frozenset(k for k in DEFAULTS if env.get(k, "").strip())
        for key, default in DEFAULTS.items():
            if not env.get(key, "").strip():
                env[key] = default
        return SolutionEnv(values=env, dotenv_path=dotenv.path, warnings=dotenv.warnings, explicit=explicit)

    def _read_dotenv(self) -> _Dotenv:
        """What ``load_env`` reads for the fleet's own environment (text "" when there is no file; None when it
        cannot be read: then every render goes through ``load_env``, which reports that)."""
        name = self.environ.get("DOTENV_FILE", "").strip('"').strip("'") or ".env"
        path = self.base / name
        if not path.is_file():
            return _Dotenv("", {}, (), None, {})
        try:
            text = read_text(path, what=name)
        except InputError:
            return _Dotenv(None, {}, (), None, {})
        import io

        from dotenv.parser import parse_stream

        keys: dict[str, int] = {}
        for binding in parse_stream(io.StringIO(text)):
            if binding.key is not None and not binding.error:
                keys[binding.key] = keys.get(binding.key, 0) + 1
        values, warnings = parse_dotenv(text, self.environ, file=name)
        return _Dotenv(text, values, tuple(warnings), path, keys)

    def render(self, variables: Mapping[str, str]) -> dict[str, Any]:
        environ = {**self.environ, **variables}
        env = self.solution_env(variables)
        template = self.template or find_template(env, self.base)
        path = self.base / template
        text = self._files.templates.get(path)
        if text is None:
            result = genconfig(self.template, platform=self.platform, cwd=self.base, environ=environ, write=False,
                               validate=False, models=self.models)
            # the text genconfig rendered: same decoding and newline handling
            raw = path.read_bytes().decode("utf-8-sig")
            self._files.templates[path] = raw.replace("\r\n", "\n").replace("\r", "\n")
            return result.manifest
        source = _SharedModules(self._files, Path(os.path.dirname(path)), env.modules_path, env.values)
        options = RenderOptions(platform=self.platform or env.platform, container_tag=env.container_tag)
        result = render(text, file=template, env=env.values, source=source, options=options, models=self.models)
        return result.manifest
