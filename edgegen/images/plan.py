"""Which images to build: the template's modules whose image is ``${MODULES.x[.platform|.debug]}`` or
``${MODULEDIR<path>[...]}``, minus ``BYPASS_MODULES``, each with its module.json, platform and tag.

This reads the template only to find those placeholders (iotedgedev does the same before building); rendering
the manifest is genconfig's job.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.errors import Location
from edgegen.generator.modulejson import ModuleSpec, load_module_json
from edgegen.images.errors import ImageError

__all__ = ["Target", "load_env", "plan_targets"]

_PLACEHOLDER = re.compile(r"^\$\{(?:MODULES\.(?P<name>[^.}<]+)|MODULEDIR<(?P<dir>[^>]+)>)(?:\.(?P<suffix>[^}]+))?\}$")
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Target:
    """One image to build: the manifest modules that use it, its module.json, platform and tag."""

    modules: tuple[str, ...]
    spec: ModuleSpec
    platform: str
    tag: str


def load_env(template: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``.env`` next to the template (or ``DOTENV_FILE``) overlaid by the process environment, as iotedgedev."""
    from dotenv import dotenv_values

    environ = dict(os.environ if environ is None else environ)
    name = environ.get("DOTENV_FILE", ".env").strip("\"'") or ".env"
    path = Path(template).resolve().parent / name
    values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    return {**values, **environ}


def _expand(text: str, env: Mapping[str, str]) -> str:
    """os.path.expandvars semantics over ``env``: unknown names stay as written."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, text)


def _load_template(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImageError(
            f"deployment template {path} not found", location=Location(file=str(path)), hint="pass -f TEMPLATE"
        ) from None
    text = _expand(text, env)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ImageError(f"template is not valid YAML: {exc}", location=Location(file=str(path))) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            lines = text.splitlines()
            src = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
            raise ImageError(
                f"template is not valid JSON after variable expansion: {exc.msg}",
                location=Location(file=str(path), line=exc.lineno, column=exc.colno, source_line=src),
                hint="is a variable used here missing from .env? `edgegen genconfig` names it",
            ) from None
    if not isinstance(data, dict):
        raise ImageError("template is not a JSON object", location=Location(file=str(path)))
    return data


def _user_modules(data: Mapping[str, Any]) -> dict[str, Any]:
    agent = (data.get("modulesContent") or {}).get("$edgeAgent") or {}
    mods: dict[str, Any] = {}
    desired = agent.get("properties.desired") or {}
    if isinstance(desired.get("modules"), dict):
        mods.update(desired["modules"])
    for key, value in agent.items():
        if key.startswith("properties.desired.modules."):
            mods[key[len("properties.desired.modules.") :]] = value
    return mods


def plan_targets(
    template: Path,
    env: Mapping[str, str],
    platform: str | None = None,
    only: Sequence[str] = (),
) -> list[Target]:
    """The images to build for ``template``; ``only`` limits to these module names (manifest or folder names)."""
    template = Path(template).resolve()
    data = _load_template(template, env)
    default_platform = platform or env.get("DEFAULT_PLATFORM") or "amd64"
    container_tag = env.get("CONTAINER_TAG", "")
    bypass = {b.strip() for b in env.get("BYPASS_MODULES", "").split(",") if b.strip()}
    modules_dir = template.parent / (env.get("MODULES_PATH") or "modules")
    specs: dict[Path, ModuleSpec] = {}
    targets: dict[str, Target] = {}
    known: set[str] = set()
    for name, module in _user_modules(data).items():
        image = ((module or {}).get("settings") or {}).get("image") if isinstance(module, dict) else None
        m = _PLACEHOLDER.match(image) if isinstance(image, str) else None
        if not m:
            continue
        folder = modules_dir / m.group("name") if m.group("name") else template.parent / m.group("dir")
        known.update({name, folder.name})
        if "*" in bypass or name in bypass:
            continue
        if only and name not in only and folder.name not in only:
            continue
        if folder not in specs:
            specs[folder] = load_module_json(folder, expand=lambda t: _expand(t, env))
        spec = specs[folder]
        suffix = m.group("suffix")
        plat = default_platform if not suffix else (f"{default_platform}.debug" if suffix == "debug" else suffix)
        tag = spec.image(plat, container_tag)
        prev = targets.get(tag)
        targets[tag] = Target((*(prev.modules if prev else ()), name), spec, plat, tag)
    unknown = [o for o in only if o not in known]
    if unknown:
        raise ImageError(
            f"no module named {', '.join(unknown)} in the template",
            location=Location(file=str(template), json_path="modulesContent.$edgeAgent.properties.desired.modules"),
            hint=f"modules built from module.json: {', '.join(sorted(known)) or 'none'}",
        )
    return list(targets.values())
