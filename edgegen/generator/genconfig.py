"""``genconfig``: the solution on disk in, a manifest file out (the I/O rim around ``render``).

Paths follow iotedgedev 3.3.9: the dotenv file and ``CONFIG_OUTPUT_DIR`` are relative to the working
directory, ``MODULES_PATH`` and ``${MODULEDIR<...>}`` to the template's folder. Output directory: ``-o``,
else ``CONFIG_OUTPUT_DIR`` from the environment or ``.env``, else ``manifests/`` (iotedgedev: ``config/``).
The output is rendered and validated in memory and written atomically at the end, so a run that fails --
bad template, unresolved variable, ``--fail-on-validation-error`` with errors -- leaves the previous manifest
untouched. The text is ``json.dumps(manifest, indent=2)``, byte-for-byte what iotedgedev writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.generator import validation
from edgegen.generator.atomic import write_text_atomic
from edgegen.generator.errors import GeneratorError, Location
from edgegen.generator.naming import manifest_name
from edgegen.generator.render import RenderOptions, RenderResult, render
from edgegen.generator.solution import DiskModules, SolutionEnv, load_env

__all__ = ["GenconfigResult", "find_template", "genconfig", "run_validation"]

_FALLBACK_TEMPLATES = ("deployment.template.json", "deployment.template.yaml", "deployment.template.yml",
                       "deployment.template.json.j2", "deployment.template.yaml.j2")


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


def find_template(env: SolutionEnv, cwd: Path) -> str:
    """The template to render when ``-f`` is not given."""
    configured = env.template_file
    if "DEPLOYMENT_CONFIG_TEMPLATE_FILE" in env.explicit or (cwd / configured).is_file():
        return configured
    for name in _FALLBACK_TEMPLATES:
        if (cwd / name).is_file():
            return name
    return configured


def run_validation(manifest: dict[str, Any], text: str, file: str) -> list[validation.Finding]:
    """Findings from ``edgegen.generator.validation``, located in ``text`` (the manifest as written)."""
    return validation.locate(validation.validate_manifest(manifest, file=file), text, file, manifest)


def genconfig(template_file: str | None = None, *, platform: str | None = None, output_dir: str | None = None,
              cwd: Path | str | None = None, environ: Mapping[str, str] | None = None, chunk: bool = True,
              allow_unresolved: bool = False, validate: bool = True, fail_on_validation_error: bool = False,
              resource_limits: bool = True, write: bool = True, registry_credentials: bool = True,
              pin_digests: bool = False) -> GenconfigResult:
    """Render ``template_file`` and write ``<output dir>/<name>``; see the module doc for the rules.

    Raises ``GeneratorError`` subclasses for render failures and the validation package's ``ValidationError``
    when ``fail_on_validation_error`` and an error-severity finding exist (nothing is written then).
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    env = load_env(base, environ)
    template = template_file or find_template(env, base)
    template_path = base / template
    try:
        raw = template_path.read_bytes()
    except FileNotFoundError:
        raise GeneratorError(
            f'Deployment manifest template file "{template}" not found',
            location=Location(file=str(template)),
            hint="pass -f TEMPLATE, set DEPLOYMENT_CONFIG_TEMPLATE_FILE, or create one with `edgegen new`",
        ) from None
    except IsADirectoryError:
        raise GeneratorError(f"{template} is a folder, not a template", location=Location(file=template)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GeneratorError(f"template is not UTF-8: {exc.reason} at byte {exc.start}",
                             location=Location(file=template), hint="save the template as UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, like Python's open()

    plat = platform or env.platform
    template_dir = Path(os.path.dirname(template_path))
    source = DiskModules(template_dir, env.modules_path, env.values, allow_unresolved=allow_unresolved)
    options = RenderOptions(platform=plat, container_tag=env.container_tag, chunk=chunk,
                            allow_unresolved=allow_unresolved, resource_limits=resource_limits)
    result = render(text, file=template, env=env.values, source=source, options=options)
    result.unresolved.extend(source.unresolved)
    _apply_images(result, env, template, template_dir, registry_credentials=registry_credentials,
                  pin_digests=pin_digests)

    out_dir = output_dir or env.output_dir
    name = manifest_name(template, result.schema_template, plat, env.deployment_config_file)
    out_path = Path(out_dir) / name
    full_out = out_path if out_path.is_absolute() else base / out_path
    out_text = json.dumps(result.manifest, indent=2)
    gen = GenconfigResult(template, out_path, out_text, result, env, notes=list(result.notes))

    if validate:
        gen.findings = run_validation(result.manifest, out_text, str(out_path))
        if fail_on_validation_error and any(f.severity == "error" for f in gen.findings):
            raise validation.ValidationError(gen.findings, file=str(out_path))
    if write:
        write_text_atomic(full_out, out_text)
        gen.written = True
    return gen


# --- images area (edgegen.images, issue 7): registryCredentials from .env, --pin-digests --------------------
def _apply_images(result: RenderResult, env: SolutionEnv, template: str, template_dir: Path, *,
                  registry_credentials: bool, pin_digests: bool) -> None:
    """Add ``registryCredentials`` for the registries (with credentials in .env) that module images use, keeping
    the template's own entries; with ``pin_digests`` replace built images by ``repository@sha256:…`` of the last
    ``edgegen push`` (``<template dir>/.state/images/digests.json``). Imported lazily: no Docker SDK here."""
    if registry_credentials:
        from edgegen.images.registries import apply_registry_credentials, registries_from_env

        before = _credential_names(result.manifest)
        registries = registries_from_env(env.values, source=str(env.dotenv_path or ".env"))
        result.manifest = apply_registry_credentials(result.manifest, registries)
        added = sorted(_credential_names(result.manifest) - before)
        if added:
            result.notes.append(f"registryCredentials from .env (CONTAINER_REGISTRY_*): {', '.join(added)}")
    if pin_digests:
        from edgegen.images.digests import default_digest_file, load_digests, pin_manifest

        state = default_digest_file(template_dir)
        digests = load_digests(state)
        bypass = {b.strip() for b in env.values.get("BYPASS_MODULES", "").split(",") if b.strip()}
        built = [t for m, t in result.images.items() if "*" not in bypass and m not in bypass]  # what push pushes
        result.manifest = pin_manifest(result.manifest, digests, required=built, source=template)
        result.images = {m: digests[t].pinned if t in digests else t for m, t in result.images.items()}
        result.notes.append(f"--pin-digests: module images pinned to the digests of the last push ({state})")


def _credential_names(manifest: dict[str, Any]) -> set[str]:
    try:
        creds = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"][
            "registryCredentials"]
    except (KeyError, TypeError):
        return set()
    return set(creds) if isinstance(creds, dict) else set()
