"""Which images to build: the user modules whose image genconfig resolves from a module.json
(``${MODULES.x[.platform|.debug]}``, ``${MODULEDIR<path>[...]}``), minus ``BYPASS_MODULES``.

The template is rendered by genconfig's own code (same .env rules, Jinja2/YAML, placeholder resolution), so the
tags built and pushed are exactly the ones ``edgegen genconfig`` writes into the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, read_text
from edgegen.errors import Location
from edgegen.generator.modulejson import ModuleSpec
from edgegen.generator.render import RenderOptions, render
from edgegen.generator.solution import DiskModules, find_template, load_env
from edgegen.images.errors import ImageError

__all__ = ["Plan", "Target", "plan_targets"]


@dataclass(frozen=True)
class Target:
    """One image to build: the manifest modules that use it, its module.json, platform and tag."""

    modules: tuple[str, ...]
    spec: ModuleSpec
    platform: str
    tag: str
    models: str = ""  # the modules' EDGEGEN_MODELS (name:version@sha256:…, pinned by the render): baked into the image


@dataclass(frozen=True)
class Plan:
    template: Path
    env: Mapping[str, str]  # process environment + .env + genconfig's defaults
    platform: str
    container_tag: str
    targets: tuple[Target, ...]

    @property
    def solution_dir(self) -> Path:
        return self.template.parent


class _Recorder(DiskModules):
    """genconfig's module.json loader that remembers what it loaded."""

    def __init__(self, template_dir: Path, modules_path: str, env: Mapping[str, str]) -> None:
        super().__init__(template_dir, modules_path, env, allow_unresolved=True)
        self.loaded: dict[Path, ModuleSpec] = {}

    def load_folder(self, name: str) -> ModuleSpec:
        spec = super().load_folder(name)
        self.loaded[spec.folder] = spec
        return spec

    def load_dir(self, relpath: str) -> ModuleSpec:
        spec = super().load_dir(relpath)
        self.loaded[spec.folder] = spec
        return spec


def plan_targets(
    template: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    only: Sequence[str] = (),
) -> Plan:
    """The images ``template`` needs (``.env`` read from ``cwd``, as genconfig and iotedgedev do).

    ``only`` limits to these module names (manifest module names or module folder names).
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    env = load_env(base, environ)
    name = str(template) if template is not None else find_template(env, base)
    path = (base / name).resolve()
    if not path.is_file():
        raise ImageError(
            f"deployment template {name} not found",
            location=Location(file=str(name)),
            hint="pass -f TEMPLATE or set DEPLOYMENT_CONFIG_TEMPLATE_FILE",
        )
    try:
        text = read_text(path, what="the deployment template").replace("\r\n", "\n")
    except InputError as exc:
        raise exc.as_error(ImageError) from None
    plat = platform or env.platform
    source = _Recorder(path.parent, env.modules_path, env.values)
    options = RenderOptions(
        platform=plat, container_tag=env.container_tag, allow_unresolved=True, resource_limits=False
    )
    from edgegen.models.registry import SolutionModels

    result = render(text, file=name, env=env.values, source=source, options=options,
                    models=SolutionModels(base, environ))
    for err in [*result.unresolved, *source.unresolved]:
        if err.name.startswith(("MODULES.", "MODULEDIR<", "${MODULE")):
            raise err  # an image placeholder that names no module.json: genconfig's own message
    index = {spec.image(p, env.container_tag): (spec, p) for spec in source.loaded.values() for p in spec.platforms}
    bypass = {b.strip() for b in env.values.get("BYPASS_MODULES", "").split(",") if b.strip()}
    targets: dict[str, Target] = {}
    known: set[str] = set()
    for module, tag in result.images.items():
        if tag not in index:
            continue
        spec, image_platform = index[tag]
        known.update({module, spec.folder.name})
        if "*" in bypass or module in bypass:
            continue
        if only and module not in only and spec.folder.name not in only:
            continue
        prev = targets.get(tag)
        models = _models_of(result.manifest, module)
        if prev is not None and prev.models != models:
            raise ImageError(
                f"modules {', '.join(prev.modules)} and {module} share image {tag} but pin different models",
                location=Location(file=str(name), json_path=f"modulesContent.$edgeAgent.properties.desired.modules."
                                                            f"{module}.env.EDGEGEN_MODELS"),
                hint="models are baked into the image: give each model set its own module.json (image)")
        targets[tag] = Target((*(prev.modules if prev else ()), module), spec, image_platform, tag, models)
    unknown = [o for o in only if o not in known]
    if unknown:
        raise ImageError(
            f"no module named {', '.join(unknown)} in the template",
            location=Location(file=str(name), json_path="modulesContent.$edgeAgent.properties.desired.modules"),
            hint=f"modules built from a module.json: {', '.join(sorted(known)) or 'none'}",
        )
    return Plan(path, env.values, plat, env.container_tag, tuple(targets.values()))


def _models_of(manifest: Mapping[str, Any], module: str) -> str:
    try:
        env = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"][module].get("env") or {}
        value = env.get("EDGEGEN_MODELS", {}).get("value", "")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) and "${" not in value else ""
