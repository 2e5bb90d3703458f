"""The solution's settings: ``.env`` + process environment, as iotedgedev 3.3.9 reads them.

* The dotenv file is ``$DOTENV_FILE`` (quotes stripped) or ``.env``, relative to the working directory.
* It is parsed with python-dotenv (same parser as iotedgedev), ``${VAR}`` inside values interpolated, and
  merged *under* the process environment: a variable already in the environment wins (``override=False``).
* iotedgedev then fills empty settings with defaults and puts them back into the environment, so a template
  can use e.g. ``${DEFAULT_PLATFORM}``. edgegen does the same, with one documented difference:
  ``CONFIG_OUTPUT_DIR`` defaults to ``manifests`` (the repo layout) instead of ``config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgegen.common.safeload import InputError, read_text
from edgegen.generator.createoptions import ResourceLimits, parse_deployment_config
from edgegen.generator.errors import GeneratorError, Location, RenderError, UnresolvedError
from edgegen.generator.expand import Reference, expand
from edgegen.generator.modulejson import ModuleSpec, load_module_json

__all__ = ["DEFAULTS", "DiskModules", "SolutionEnv", "find_template", "load_env", "parse_dotenv",
           "unresolved_variable_error"]

DEFAULT_OUTPUT_DIR = "manifests"
DEFAULTS: Mapping[str, str] = {
    "CONFIG_OUTPUT_DIR": DEFAULT_OUTPUT_DIR,
    "DEPLOYMENT_CONFIG_TEMPLATE_FILE": "deployment.template.json",
    "DEPLOYMENT_CONFIG_DEBUG_TEMPLATE_FILE": "deployment.debug.template.json",
    "DEFAULT_PLATFORM": "amd64",
    "MODULES_PATH": "modules",
    "LOGS_PATH": "logs",
    "LOGS_CMD": "start /B start cmd.exe @cmd /k docker logs {0} -f",
}

_FALLBACK_TEMPLATES = ("deployment.template.json", "deployment.template.yaml", "deployment.template.yml",
                       "deployment.template.json.j2", "deployment.template.yaml.j2")


@dataclass(frozen=True)
class SolutionEnv:
    """The effective environment of one run (process env + .env + iotedgedev defaults)."""

    values: Mapping[str, str]
    dotenv_path: Path | None = None  # the dotenv file that was read, if any
    warnings: tuple[str, ...] = ()
    explicit: frozenset[str] = field(default_factory=frozenset)  # settings set (non-empty) by env or .env

    def setting(self, key: str) -> str:
        """A setting as iotedgedev's ``get_envvar`` sees it: stripped, default when empty."""
        val = self.values.get(key, "").strip()
        return val or DEFAULTS.get(key, "")

    @property
    def platform(self) -> str:
        return self.setting("DEFAULT_PLATFORM")

    @property
    def container_tag(self) -> str:
        return self.setting("CONTAINER_TAG")

    @property
    def modules_path(self) -> str:
        return self.setting("MODULES_PATH")

    @property
    def output_dir(self) -> str:
        return self.setting("CONFIG_OUTPUT_DIR")

    @property
    def template_file(self) -> str:
        return self.setting("DEPLOYMENT_CONFIG_TEMPLATE_FILE")

    @property
    def debug_template_file(self) -> str:
        return self.setting("DEPLOYMENT_CONFIG_DEBUG_TEMPLATE_FILE")

    @property
    def deployment_config_file(self) -> str | None:
        """``DEPLOYMENT_CONFIG_FILE`` when set (iotedgedev checks ``in os.environ``; an empty value, which would
        make it write to the folder itself, counts as unset here)."""
        return self.values.get("DEPLOYMENT_CONFIG_FILE") or None


def parse_dotenv(text: str, environ: Mapping[str, str], *, file: str = ".env") -> tuple[dict[str, str], list[str]]:
    """Parse dotenv text like python-dotenv's ``load_dotenv(override=False)`` would, without touching os.environ.

    Returns the values it would set (keys already in ``environ`` are skipped) and warnings for unparsable lines.
    """
    import io

    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    warnings: list[str] = []
    resolved: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            warnings.append(f"{file}:{binding.original.line}: could not parse {binding.original.string.strip()!r}")
            continue
        if binding.key is None:
            continue
        value = binding.value
        if value is not None:
            scope: dict[str, str | None] = dict(resolved)
            scope.update(environ)  # override=False: the process environment wins in interpolation
            value = "".join(atom.resolve(scope) for atom in parse_variables(value))
        resolved[binding.key] = value
    out = {k: v for k, v in resolved.items() if v is not None and k not in environ}
    return out, warnings


def load_env(cwd: Path, environ: Mapping[str, str] | None = None, *, dotenv_file: str | None = None) -> SolutionEnv:
    """Read the solution's dotenv file from ``cwd`` and merge it with ``environ`` (default: ``os.environ``)."""
    env = dict(os.environ if environ is None else environ)
    name = dotenv_file
    if name is None:
        name = env.get("DOTENV_FILE", "").strip('"').strip("'") or ".env"
    path = Path(cwd) / name
    warnings: list[str] = []
    read_path: Path | None = None
    if path.is_file():
        try:
            text = read_text(path, what=name)
        except InputError as exc:
            raise exc.as_error(GeneratorError) from None
        values, warnings = parse_dotenv(text, env, file=name)
        env.update(values)
        read_path = path
    explicit = frozenset(k for k in DEFAULTS if env.get(k, "").strip())
    for key, default in DEFAULTS.items():
        if not env.get(key, "").strip():
            env[key] = default
    return SolutionEnv(values=env, dotenv_path=read_path, warnings=tuple(warnings), explicit=explicit)


class DiskModules:
    """module.json files of a solution on disk (``placeholders.ModuleSource``).

    ``${MODULES.<folder>}`` looks in ``<template dir>/<MODULES_PATH>/<folder>/module.json``;
    ``${MODULEDIR<path>}`` in ``<template dir>/<path>/module.json`` (``\\`` accepted as a separator).
    Variables in module.json are expanded like the template's; unresolved ones are errors unless allowed.
    """

    def __init__(self, template_dir: Path, modules_path: str, env: Mapping[str, str], *,
                 allow_unresolved: bool = False) -> None:
        self.template_dir = Path(template_dir)
        self.modules_dir = self.template_dir / modules_path
        self.env = env
        self.allow_unresolved = allow_unresolved
        self.unresolved: list[UnresolvedError] = []  # unresolved variables in module.json files, when allowed
        self._folders: list[str] | None = None

    def folders(self) -> list[str]:
        if self._folders is None:
            try:
                names = os.listdir(self.modules_dir)
            except (FileNotFoundError, NotADirectoryError):
                names = []
            self._folders = [n for n in names if os.path.isfile(os.path.join(self.modules_dir, n, "module.json"))]
        return self._folders

    def folder_path(self, name: str) -> str:
        return str(self.modules_dir / name / "module.json")

    def dir_path(self, relpath: str) -> str:
        return str(self.template_dir / relpath.replace("\\", "/") / "module.json")

    def load_folder(self, name: str) -> ModuleSpec:
        return self._load(self.modules_dir / name)

    def load_dir(self, relpath: str) -> ModuleSpec:
        folder = self.template_dir / relpath.replace("\\", "/")
        if not (folder / "module.json").is_file():
            raise UnresolvedError(
                f"placeholder ${{MODULEDIR<{relpath}>}}: no module.json at {self.dir_path(relpath)}",
                name=f"MODULEDIR<{relpath}>",
                searched=(self.dir_path(relpath),),
                hint="a module.json file is required in the root of the module folder; "
                "MODULEDIR paths are relative to the template's folder",
            )
        return self._load(folder)

    def load_all(self) -> dict[str, ModuleSpec]:
        return {name: self.load_folder(name) for name in sorted(self.folders())}

    def limits(self, spec: ModuleSpec) -> ResourceLimits | None:
        """Resource limits from ``deploymentconfig.json`` next to the module.json, if there is one."""
        path = spec.folder / "deploymentconfig.json"
        if not path.is_file():
            return None
        try:
            text = read_text(path, what="deploymentconfig.json")
        except InputError as exc:
            raise exc.as_error(RenderError) from None
        return parse_deployment_config(text, str(path))

    def _load(self, folder: Path) -> ModuleSpec:
        path = str(folder / "module.json")

        def _expand(text: str) -> str:
            result = expand(text, self.env)
            for ref in result.unresolved:
                err = unresolved_variable_error(ref, path, text)
                if not self.allow_unresolved:
                    raise err
                self.unresolved.append(err)
            return result.text

        return load_module_json(folder, expand=_expand)


def unresolved_variable_error(ref: Reference, file: str, source: str) -> UnresolvedError:
    lines = source.splitlines()
    src = lines[ref.line - 1] if 0 < ref.line <= len(lines) else None
    return UnresolvedError(
        f"variable {ref.raw} is not set",
        name=ref.name,
        location=Location(file=file, line=ref.line, column=ref.column, source_line=src),
        hint=f"set {ref.name} in .env or the environment (an empty value counts as set), "
        "or pass --allow-unresolved to leave it in place as iotedgedev does",
    )


def find_template(env: SolutionEnv, cwd: Path) -> str:
    """The template to render when ``-f`` is not given."""
    configured = env.template_file
    if "DEPLOYMENT_CONFIG_TEMPLATE_FILE" in env.explicit or (cwd / configured).is_file():
        return configured
    for name in _FALLBACK_TEMPLATES:
        if (cwd / name).is_file():
            return name
    return configured
