"""``edgegen genconfig`` end to end: the generator renders, the images area adds what it knows, the generator
validates and writes.

Rendering (``edgegen.generator``) knows nothing of images; the images area (``edgegen.images``) knows the
registry credentials in ``.env`` and the digests of the last ``edgegen push``. This step, one floor above both,
applies those facts to a rendered manifest before it is validated and written. The CLI, fleet rendering
(``edgegen.hub.fleetrender``) and ``edgegen up`` call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgegen.generator.genconfig import GenconfigResult, render_solution, write_manifest
from edgegen.generator.modelrefs import ModelSource
from edgegen.generator.render import RenderResult
from edgegen.generator.solution import SolutionEnv

__all__ = ["apply_image_facts", "genconfig"]


def genconfig(template_file: str | None = None, *, platform: str | None = None, output_dir: str | None = None,
              cwd: Path | str | None = None, environ: Mapping[str, str] | None = None, chunk: bool = True,
              allow_unresolved: bool = False, validate: bool = True, fail_on_validation_error: bool = False,
              resource_limits: bool = False, write: bool = True, registry_credentials: bool = False,
              pin_digests: bool = False, models: ModelSource | None = None) -> GenconfigResult:
    """Render ``template_file``, apply the image facts, validate and write ``<output dir>/<name>`` (the rules are
    in ``edgegen.generator.genconfig``'s module doc). ``${MODELS.x}`` are pinned through ``models`` (callers pass
    ``edgegen.models.registry.SolutionModels`` for the solution's registry).

    By default the output is iotedgedev's. ``resource_limits`` turns each module folder's Azure ML
    ``deploymentconfig.json`` into ``HostConfig.NanoCpus/Memory``; ``registry_credentials`` adds
    ``registryCredentials`` for the registries of ``CONTAINER_REGISTRY_*`` in .env that module images use.

    Raises ``GeneratorError`` subclasses for render failures, ``ImageError`` for ``--pin-digests`` without the
    digests of a push, and the validation package's ``ValidationError`` when ``fail_on_validation_error`` and an
    error-severity finding exist (nothing is written then).
    """
    rendered = render_solution(template_file, platform=platform, cwd=cwd, environ=environ, chunk=chunk,
                               allow_unresolved=allow_unresolved, resource_limits=resource_limits, models=models)
    apply_image_facts(rendered.render, rendered.env, rendered.template_file, rendered.template_dir,
                      registry_credentials=registry_credentials, pin_digests=pin_digests)
    return write_manifest(rendered, output_dir=output_dir, validate=validate,
                          fail_on_validation_error=fail_on_validation_error, write=write)


def apply_image_facts(result: RenderResult, env: SolutionEnv, template: str, template_dir: Path, *,
                      registry_credentials: bool = False, pin_digests: bool = False) -> None:
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
        for reg in registries:
            if not reg.host and reg.has_credentials:
                result.notes.append(f"{reg.env_names[1]}/{reg.env_names[2]} have no {reg.env_names[0]}: no "
                                    "registryCredentials entry from them (name the address in the template, or set "
                                    f"{reg.env_names[0]})")
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
