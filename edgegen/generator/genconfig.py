"""``genconfig``: the solution on disk in, a manifest file out (the I/O rim around ``render``).

Paths follow iotedgedev 3.3.9: the dotenv file and ``CONFIG_OUTPUT_DIR`` are relative to the working
directory, ``MODULES_PATH`` and ``${MODULEDIR<...>}`` to the template's folder. Output directory: ``-o``,
else ``CONFIG_OUTPUT_DIR`` from the environment or ``.env``, else ``manifests/`` (iotedgedev: ``config/``).
The output is rendered and validated in memory and written atomically at the end, so a run that fails --
bad template, unresolved variable, ``--fail-on-validation-error`` with errors -- leaves the previous manifest
untouched. The text is ``json.dumps(manifest, indent=2)``, byte-for-byte what iotedgedev writes.

Two steps, so that what other areas know can be applied to the rendered manifest in between without this
package importing them: ``render_solution`` (settings + template -> manifest in memory) and ``write_manifest``
(serialize, validate, write). ``edgegen.pipeline.genconfig`` runs both with the images area's facts
(registryCredentials from ``.env``, ``--pin-digests``) in between: that is ``edgegen genconfig``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.private import write_private
from edgegen.common.safeload import InputError, decode, read_file
from edgegen.generator import validation
from edgegen.generator.atomic import write_text_atomic
from edgegen.generator.errors import GeneratorError, Location
from edgegen.generator.modelrefs import ModelSource
from edgegen.generator.naming import manifest_name
from edgegen.generator.render import RenderOptions, RenderResult, render
from edgegen.generator.solution import DiskModules, SolutionEnv, find_template, load_env

__all__ = ["GenconfigResult", "RenderedSolution", "carries_registry_password", "find_template", "render_solution",
           "run_validation", "write_manifest"]

@dataclass
class RenderedSolution:
    """A template rendered in memory with the solution's settings; nothing validated or written yet."""

    base: Path  # the working directory: .env and CONFIG_OUTPUT_DIR are relative to it
    template_file: str  # as given or found, relative to ``base``
    template_dir: Path  # MODULES_PATH and ${MODULEDIR<...>} are relative to it
    platform: str
    env: SolutionEnv
    render: RenderResult
    source: DiskModules | None = None  # the module.json files it rendered from
    rendered_images: dict[str, str] = field(default_factory=dict)  # module -> image as rendered (before pinning)


@dataclass
class GenconfigResult:
    template_file: str
    output_path: Path
    text: str
    render: RenderResult
    env: SolutionEnv
    findings: list[Any] | None = None  # validation findings; None when validation was not run
    written: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.render.manifest


def run_validation(manifest: dict[str, Any], text: str, file: str,
                   messaging: Mapping[str, bool] | None = None) -> list[validation.Finding]:
    """Findings from ``edgegen.generator.validation``, located in ``text`` (the manifest as written).
    ``messaging``: which modules' code uses edgeHub messaging (see ``edgegen.generator.messaging``)."""
    return validation.locate(validation.validate_manifest(manifest, file=file, messaging=messaging), text, file,
                             manifest)


def _jinja_timeout(values: Mapping[str, str]) -> float:
    """``EDGEGEN_JINJA_TIMEOUT`` (seconds, from .env or the environment); 10 s by default."""
    raw = values.get("EDGEGEN_JINJA_TIMEOUT", "").strip()
    try:
        seconds = float(raw) if raw else 10.0
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise GeneratorError(f"EDGEGEN_JINJA_TIMEOUT={raw!r} is not a number of seconds",
                             hint="e.g. EDGEGEN_JINJA_TIMEOUT=30 (the default is 10)")
    return seconds


def render_solution(template_file: str | None = None, *, platform: str | None = None, cwd: Path | str | None = None,
                    environ: Mapping[str, str] | None = None, chunk: bool = True, allow_unresolved: bool = False,
                    resource_limits: bool = False, models: ModelSource | None = None) -> RenderedSolution:
    """Read ``.env`` and the template (``-f``, else the configured or a fallback name) and render it in memory.

    ``${MODELS.x}`` placeholders are pinned through ``models`` (the caller's registry; this package reads none).
    ``resource_limits`` (opt-in: it changes iotedgedev's output) turns each module folder's Azure ML
    ``deploymentconfig.json`` into ``HostConfig.NanoCpus/Memory``.
    Raises ``GeneratorError`` subclasses for a missing or unreadable template and for render failures.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    env = load_env(base, environ)
    template = template_file or find_template(env, base)
    template_path = base / template
    if not template_path.exists():
        raise GeneratorError(
            f'Deployment manifest template file "{template}" not found',
            location=Location(file=str(template)),
            hint="pass -f TEMPLATE, set DEPLOYMENT_CONFIG_TEMPLATE_FILE, or create one with `edgegen new`",
        )
    if template_path.is_dir():
        raise GeneratorError(f"{template} is a folder, not a template", location=Location(file=template))
    try:
        text = decode(read_file(template_path, what="the template"), file=template, what="the template")
    except InputError as exc:
        raise exc.as_error(GeneratorError) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, like Python's open()

    plat = platform or env.platform
    template_dir = Path(os.path.dirname(template_path))
    source = DiskModules(template_dir, env.modules_path, env.values, allow_unresolved=allow_unresolved)
    options = RenderOptions(platform=plat, container_tag=env.container_tag, chunk=chunk,
                            allow_unresolved=allow_unresolved, resource_limits=resource_limits,
                            jinja_timeout=_jinja_timeout(env.values))
    result = render(text, file=template, env=env.values, source=source, options=options, models=models)
    result.unresolved.extend(source.unresolved)
    return RenderedSolution(base, template, template_dir, plat, env, result, source, dict(result.images))


def write_manifest(rendered: RenderedSolution, *, output_dir: str | None = None, validate: bool = True,
                   fail_on_validation_error: bool = False, write: bool = True) -> GenconfigResult:
    """Serialize, validate and (atomically) write ``<output dir>/<name>``; see the module doc for the rules.

    Raises the validation package's ``ValidationError`` when ``fail_on_validation_error`` and an error-severity
    finding exist (nothing is written then).
    """
    result, env, template = rendered.render, rendered.env, rendered.template_file
    out_dir = output_dir or env.output_dir
    name = manifest_name(template, result.schema_template, rendered.platform, env.deployment_config_file)
    out_path = Path(out_dir) / name
    full_out = out_path if out_path.is_absolute() else rendered.base / out_path
    out_text = json.dumps(result.manifest, indent=2)
    gen = GenconfigResult(template, out_path, out_text, result, env, notes=list(result.notes))

    if validate:
        gen.findings = run_validation(result.manifest, out_text, str(out_path), _messaging(rendered))
        if fail_on_validation_error and any(f.severity == "error" for f in gen.findings):
            raise validation.ValidationError(gen.findings, file=str(out_path))
    if write:
        if carries_registry_password(result.manifest):  # same bytes; only this user may read them
            write_private(full_out, out_text, private_parent=False)
        else:
            write_text_atomic(full_out, out_text)
        gen.written = True
    return gen


def _messaging(rendered: RenderedSolution) -> dict[str, bool]:
    """Which user modules built from this solution's folders use edgeHub messaging in their code."""
    from edgegen.generator.messaging import messaging_of

    source = rendered.source
    if source is None:
        return {}
    folders = []
    for name in source.folders():
        try:
            spec = source.load_folder(name)
        except GeneratorError:
            continue  # a broken module.json that no image used: rendering did not need it either
        folders.append((spec.folder, [spec.image(p, rendered.env.container_tag) for p in spec.platforms]))
    return messaging_of(rendered.rendered_images, folders)


def carries_registry_password(manifest: Any) -> bool:
    """Whether a manifest holds a non-empty registry password (``$edgeAgent`` runtime.settings.registryCredentials):
    such a manifest is written 0600 (iotedgedev writes it with the umask's mode, usually 0644)."""
    try:
        agent = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
        creds = agent["runtime"]["settings"]["registryCredentials"]
    except (KeyError, TypeError):
        return False
    return isinstance(creds, dict) and any(isinstance(c, dict) and c.get("password") for c in creds.values())

