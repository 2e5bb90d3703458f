"""Render a deployment template into a manifest: the pure core of ``genconfig``.

Steps (iotedgedev 3.3.9 order, with edgegen's additions marked +):
 1. + Jinja2, when the template is a Jinja2 template (see ``jinja.py``).
 2. ``$VAR``/``${VAR}`` expansion on the raw text (``expand.py``); + unresolved variables are errors.
 3. Parse: JSON, or + YAML for ``*.yaml``/``*.yml``.
 4. Image placeholders of user modules (``placeholders.py``); + leftovers are errors.
 5. + Model placeholders ``${MODELS.x}`` pinned to ``name:version@sha256:…`` and each module's ``EDGEGEN_MODELS``
    checked against the model registry (``modelrefs.py``; skipped with ``allow_unresolved`` and no registry).
 6. + Resource limits from each module's ``deploymentconfig.json`` into its createOptions.
 7. createOptions serialized and split into 512-character chunks (+ ``chunk=False`` keeps one string).
 8. ``$schema-template`` removed (its value decides the output name, see ``naming.py``).

``render`` reads nothing itself except through the ``ModuleSource`` it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, loads_yaml
from edgegen.generator import model
from edgegen.generator.createoptions import apply_create_options, merge_resource_limits
from edgegen.generator.errors import Location, RenderError, UnresolvedError
from edgegen.generator.expand import Expansion, expand, line_col
from edgegen.generator.modelrefs import ModelSource, resolve_models
from edgegen.generator.placeholders import MODULEDIR_PATTERN, ModuleSource, find_placeholders, resolve_images

__all__ = ["RenderOptions", "RenderResult", "render"]


@dataclass(frozen=True)
class RenderOptions:
    platform: str = "amd64"
    container_tag: str = ""
    chunk: bool = True
    allow_unresolved: bool = False
    resource_limits: bool = False  # deploymentconfig.json limits: opt-in, they change iotedgedev's output
    jinja_timeout: float = 10.0  # seconds a Jinja2 render may take (jinjalimits.JinjaLimits.timeout)


@dataclass
class RenderResult:
    manifest: dict[str, Any]
    schema_template: str  # "" when the template has none
    images: dict[str, str] = field(default_factory=dict)  # user module -> image it got
    notes: list[str] = field(default_factory=list)  # what was done beyond iotedgedev (resource limits...)
    unresolved: list[UnresolvedError] = field(default_factory=list)  # left in place (allow_unresolved only)


def _is_yaml(file: str) -> bool:
    name = file[:-3] if file.endswith(".j2") else file
    return name.endswith((".yaml", ".yml"))


def _source_line(text: str, line: int) -> str | None:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else None


def _parse(exp: Expansion, file: str, label: str) -> Any:
    """The expanded text as JSON or YAML (``edgegen.common.safeload``: nesting, aliases and surrogates bounded);
    errors point into the template as written, before variable expansion."""
    yaml_template = _is_yaml(file)
    try:
        if yaml_template:
            return loads_yaml(exp.text, file=label, what="the template")
        return loads_json(exp.text, file=label, what="the template")
    except InputError as exc:
        location = Location(file=label)
        if exc.offset is not None:
            line, col = line_col(exp.source, exp.source_offset(exc.offset))
            location = Location(file=label, line=line, column=col, source_line=_source_line(exp.source, line))
        message, hint = exc.message, exc.hint
        if exc.kind == "syntax":
            message = f"template is not valid {'YAML' if yaml_template else 'JSON'} (after variable expansion): " \
                + message.split(": ", 1)[-1]
            if exp.unresolved and not yaml_template:
                first = exp.unresolved[0]
                hint = f"{first.raw} (line {first.line}) is not set, so it was left in the text"
        raise RenderError(message, location=location, hint=hint) from None


def _variable_errors(exp: Expansion, label: str) -> list[UnresolvedError]:
    errors = []
    for ref in exp.unresolved:
        errors.append(UnresolvedError(
            f"variable {ref.raw} is not set",
            name=ref.name,
            location=Location(file=label, line=ref.line, column=ref.column,
                              source_line=_source_line(exp.source, ref.line)),
            hint=f"set {ref.name} in .env or the environment (an empty value counts as set), "
            "or pass --allow-unresolved to leave it in place as iotedgedev does",
        ))
    return errors


def _placeholder_error(path: str, value: str, placeholder: str, exp: Expansion, label: str,
                       source: ModuleSource, options: RenderOptions) -> UnresolvedError:
    inner = placeholder[2:-1]
    searched: list[str] = []
    reasons: list[str] = []
    whole_image = value == placeholder and path.endswith(".settings.image") and ".modules." in path
    if inner.startswith("MODULES."):
        rest = inner[len("MODULES."):]
        parts = rest.split(".")
        folders = source.folders()
        for n in range(1, len(parts) + 1):
            folder = ".".join(parts[:n])
            searched.append(source.folder_path(folder))
            if folder in folders:
                suffix = ".".join(parts[n:])
                want = {"": options.platform, "debug": options.platform + ".debug"}.get(suffix, suffix)
                spec = source.load_folder(folder)
                reasons.append(f"{source.folder_path(folder)} has no platform {want!r} "
                               f"(it lists {', '.join(sorted(spec.platforms)) or 'none'})")
        if not reasons:
            reasons.append("no module.json found" + (f"; module folders: {', '.join(sorted(folders))}"
                                                     if folders else ""))
    else:
        m = MODULEDIR_PATTERN.search(placeholder)
        if m is not None:
            searched.append(source.dir_path(m.group(1)))
    if not whole_image:
        reasons.append("placeholders are replaced only when they are the whole settings.image of a module")
    needle = json.dumps(placeholder)[1:-1]
    offset = exp.source.find(needle)
    if offset < 0:
        offset = exp.source.find(placeholder)
    loc = Location(file=label, json_path=path)
    if offset >= 0:
        line, col = line_col(exp.source, offset)
        loc = Location(file=label, line=line, column=col, json_path=path,
                       source_line=_source_line(exp.source, line))
    module = path.split(".modules.", 1)[1].split(".", 1)[0] if ".modules." in path else None
    what = f"placeholder {placeholder}" + (f" of module {module!r}" if module else "")
    return UnresolvedError(
        f"{what} was not resolved: {'; '.join(reasons)}",
        name=inner,
        location=loc,
        searched=tuple(searched),
        hint="searched " + (", ".join(searched) if searched else "nothing")
        + "; or pass --allow-unresolved to leave it in place as iotedgedev does",
    )


def render(text: str, *, file: str, env: Mapping[str, str], source: ModuleSource,
           options: RenderOptions | None = None, models: ModelSource | None = None) -> RenderResult:
    """Render template ``text`` (read from ``file``) into a manifest dict."""
    opts = options or RenderOptions()
    label = file
    notes: list[str] = []
    if file.endswith(".j2") or text.lstrip().startswith(("{#", "{%")):
        from edgegen.generator.jinja import module_context, render_jinja, search_path
        from edgegen.generator.jinjalimits import JinjaLimits

        context = {
            "env": dict(env),
            "platform": opts.platform,
            "container_tag": opts.container_tag,
            "modules": module_context(source.load_all(), opts.platform, opts.container_tag),
        }
        text = render_jinja(text, file=file, paths=search_path(Path(file).parent), context=context,
                            limits=JinjaLimits(timeout=opts.jinja_timeout))
        label = f"{file} (rendered by Jinja2)"
        notes.append(f"rendered {file} with Jinja2")

    exp = expand(text, env)
    unresolved = _variable_errors(exp, label)
    if unresolved and not opts.allow_unresolved:
        err = unresolved[0]
        others: dict[str, list[int]] = {}  # each other name once, with the lines it is used on
        for e in unresolved[1:]:
            if e.name != err.name:
                others.setdefault(e.name, [])
                if e.location and e.location.line is not None and e.location.line not in others[e.name]:
                    others[e.name].append(e.location.line)
        if others:
            shown = list(others.items())[:6]
            more = ", ".join(f"{name} (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:5]))})"
                             if lines else name for name, lines in shown)
            err.hint = f"{err.hint}. Also unset: {more}" + (" ..." if len(others) > 6 else "")
        raise err

    manifest = _parse(exp, file, label)
    if not isinstance(manifest, dict):
        raise RenderError(f"a deployment template is a JSON object, not {type(manifest).__name__}",
                          location=Location(file=label, line=1, column=1))

    users = model.user_modules(manifest, label)
    try:
        res = resolve_images(users, source, opts.platform, opts.container_tag)
    except UnresolvedError as err:
        if err.location is None:  # point at the placeholder in the template
            offset = exp.source.find("${" + json.dumps(err.name)[1:-1])
            if offset >= 0:
                line, col = line_col(exp.source, offset)
                err.at(Location(file=label, line=line, column=col, source_line=_source_line(exp.source, line)))
        raise

    for path, value, placeholder in find_placeholders(manifest):
        err = _placeholder_error(path, value, placeholder, exp, label, source, opts)
        if not opts.allow_unresolved:
            raise err
        unresolved.append(err)

    if models is not None or not opts.allow_unresolved:
        notes.extend(resolve_models(manifest, users, res.specs, models, label))

    if opts.resource_limits:
        for name, spec in res.specs.items():
            limits = source.limits(spec)
            if limits is None or not limits.host_config():
                continue
            settings = users[name]["settings"]
            settings["createOptions"] = merge_resource_limits(
                name, settings.get("createOptions", {}), limits,
                json_path=f"modulesContent.$edgeAgent['properties.desired'].modules.{name}.settings.createOptions")
            notes.append(f"module {name}: resource limits from {limits.source}: "
                         + ", ".join(f"HostConfig.{k}={v}" for k, v in limits.host_config().items()))

    for name, info in model.all_modules(manifest, label).items():
        if isinstance(info, dict) and isinstance(info.get("settings"), dict):
            apply_create_options(name, info["settings"], chunked=opts.chunk,
                                 json_path=f"$edgeAgent modules.{name}.settings.createOptions")

    schema_template = manifest.pop("$schema-template", "")
    return RenderResult(manifest, "" if schema_template is None else str(schema_template),
                        res.images, notes, unresolved)
