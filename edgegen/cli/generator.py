"""Generator commands: new, add, genconfig, validate (thin shells over edgegen.generator)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from edgegen.cli.output import emit, output_option

# --- new / add / genconfig (edgegen.generator: render, scaffold) --------------------------------------------


@click.command("new")
@click.argument("name")
@click.option("-m", "--module", default="filtermodule", show_default=True,
              help="The first module to add; '' for none.")
@click.option("-t", "--template", "module_template", default="python", show_default=True,
              type=click.Choice(["inference", "monitor", "sensor", "python"]), help="Template of the first module.")
@click.option("--edge-runtime-version", "-er", default="1.4", show_default=True,
              type=click.Choice(["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]), help="IoT Edge runtime version.")
def new(name: str, module: str, module_template: str, edge_runtime_version: str) -> None:
    """Create a new IoT Edge solution folder.

    NAME is the folder ('.' for the current, empty folder). Writes deployment.template.json,
    deployment.debug.template.json, a documented .env, .gitignore and modules/ (with a first module) from
    edgegen's Jinja2 templates; no network needed.

    \b
    Examples:
      edgegen new mysolution
      edgegen new mysolution -m sensor -t sensor
      mkdir sol && cd sol && edgegen new . -m ''
    """
    from edgegen.generator.scaffold import new_solution

    target = new_solution(name, module=module or None, template=module_template,
                          runtime_version=edge_runtime_version)
    click.echo(f"Created solution {target}")
    if module:
        click.echo(f"  module {module} ({module_template}) in {target / 'modules' / module}")
    if name != ".":
        click.echo(f"Next: cd {name} && edgegen genconfig")


@click.command("add")
@click.argument("name")
@click.option("-t", "--template", "module_template", default="python", show_default=True,
              type=click.Choice(["inference", "monitor", "sensor", "python"]), help="Module template.")
@click.option("--entry-script", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An Azure ML entry script (init()/run()) to host; with --model.")
@click.option("--model", "models", multiple=True, metavar="NAME[:VERSION]",
              help="A registered model the module serves (repeatable); ONNX alone needs no --entry-script.")
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The entry script's pip requirements.")
@click.option("--conda-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A conda environment file, converted to pip requirements.")
def add(name: str, module_template: str, entry_script: str | None, models: tuple[str, ...],
        requirements: str | None, conda_file: str | None) -> None:
    """Add module NAME to the solution in the current folder.

    Creates <MODULES_PATH>/NAME (module.json, Dockerfiles for amd64, amd64.debug, arm64v8, arm32v7, main.py,
    requirements.txt) and adds the module (${MODULES.NAME} / ${MODULES.NAME.debug}) and a route NAMEToIoTHub
    to deployment.template.json and deployment.debug.template.json. For the inference and monitor templates it
    also routes the inputs their code reads from a module that sends them (the sample sensor's
    temperatureOutput to inference's input1; inference's output1 and errors to monitor's scored and errors).

    \b
    Examples:
      edgegen add sensor -t sensor
      edgegen add inference -t inference
    \b
    From what a data scientist already has (models from `edgegen model register`):
      edgegen add inference --entry-script score.py --model sensor-anomaly:2 --conda-file env.yml
      edgegen add scorer --model my-onnx-model      # the generic ONNX entry script (onnxruntime)
    """
    if entry_script or models or requirements or conda_file:
        _add_inference(name, entry_script, models, requirements, conda_file)
        return
    from edgegen.generator.scaffold import add_module

    result = add_module(".", name, module_template)
    click.echo(f"Added module {name} ({module_template}) in {result.module_dir}")
    for template in result.templates:
        click.echo(f"  updated {template}")
    for route in result.routes:
        click.echo(f"  route {route} feeds its input")
    for input_name in result.unfed:
        click.echo(f"note: nothing routes to input {input_name!r} of {name} yet: add a route FROM <module output> "
                   f'INTO BrokeredEndpoint("/modules/{name}/inputs/{input_name}")')


def _add_inference(name: str, entry_script: str | None, models: tuple[str, ...], requirements: str | None,
                   conda_file: str | None) -> None:
    from pathlib import Path

    from edgegen.models.packaging import add_inference_module
    from edgegen.models.registry import SolutionModels

    cwd = Path.cwd()
    result, notes = add_inference_module(
        cwd, name, registry=SolutionModels(cwd).registry, models=list(models),
        entry_script=Path(entry_script) if entry_script else None,
        requirements=Path(requirements) if requirements else None, conda_file=Path(conda_file) if conda_file else None)
    click.echo(f"Added inference module {name} in {result.module_dir}")
    for template in result.templates:
        click.echo(f"  updated {template}")
    for note in notes:
        click.echo(f"note: {note}")
    click.echo("Next: edgegen genconfig (pins the models), edgegen build (puts their bytes in the image)")


@click.command("genconfig")
@click.option("-f", "--file", "template_file", default=None, metavar="TEMPLATE",
              help="Deployment template [default: $DEPLOYMENT_CONFIG_TEMPLATE_FILE or deployment.template.json].")
@click.option("-P", "--platform", default=None, help="Platform [default: $DEFAULT_PLATFORM or amd64].")
@click.option("-o", "--output-dir", default=None, metavar="DIR",
              help="Output folder [default: $CONFIG_OUTPUT_DIR or manifests].")
@click.option("--fail-on-validation-error", is_flag=True, help="Exit 1 (and write nothing) on any validation error.")
@click.option("--no-chunk", is_flag=True, help="One unsplit createOptions string (IoT Central rejects chunks).")
@click.option("--allow-unresolved", is_flag=True,
              help="Leave unset variables and unresolved ${MODULES...} placeholders in place (iotedgedev's way).")
@click.option("--no-validate", is_flag=True, help="Skip the offline validation of the generated manifest.")
@click.option("--pin-digests", is_flag=True,
              help="Pin module images to repository@sha256:... of the last `edgegen push` (reproducible deployments).")
@click.option("--resource-limits", is_flag=True,
              help="Turn each module folder's Azure ML deploymentconfig.json (cpu, memoryInGB) into "
                   "HostConfig.NanoCpus/Memory (off: iotedgedev's output).")
@click.option("--registry-credentials/--no-registry-credentials", default=False, show_default=True,
              help="Also add registryCredentials for the registries of CONTAINER_REGISTRY_* in .env that module "
                   "images use (off: the manifest is iotedgedev's, the template's own entries only).")
@click.option("--fleet", "fleet_file", default=None, metavar="FLEET_YAML", type=click.Path(dir_okay=False),
              help="Render one manifest per device group / device of FLEET_YAML into DIR "
                   "[default: <output dir>/fleet], plus fleet-index.json.")
@output_option()
def genconfig(template_file: str | None, platform: str | None, output_dir: str | None,
              fail_on_validation_error: bool, no_chunk: bool, allow_unresolved: bool, no_validate: bool,
              pin_digests: bool, resource_limits: bool, registry_credentials: bool, fleet_file: str | None,
              output_format: str) -> None:
    """Render deployment templates into manifests/.

    Like `iotedgedev solution genconfig`.
    Expands $VARS from .env and the environment, ${MODULES.x} image placeholders from modules/*/module.json,
    Jinja2 (templates named *.j2 or starting with {# / {%), YAML templates, then splits createOptions into
    512-character chunks and validates the result. The output is iotedgedev's unless you opt in to more
    (--resource-limits, --registry-credentials, --pin-digests).

    \b
    Examples:
      edgegen genconfig
      edgegen genconfig -f deployment.debug.template.json -P arm64v8 --fail-on-validation-error
      edgegen genconfig --pin-digests --output json
      edgegen genconfig --fleet fleet.yaml
    """
    if fleet_file is not None:
        if template_file or platform or no_chunk or allow_unresolved or pin_digests or registry_credentials \
                or resource_limits:
            raise click.UsageError("--fleet takes the template and platform from the fleet file; -f, -P, --no-chunk, "
                                   "--allow-unresolved, --pin-digests, --registry-credentials and --resource-limits "
                                   "do not apply")
        _genconfig_fleet(fleet_file, output_dir, validate=not no_validate,
                         fail_on_validation_error=fail_on_validation_error, output_format=output_format)
        return
    from pathlib import Path

    from edgegen.generator.validation.findings import ValidationError
    from edgegen.pipeline import genconfig as run

    try:
        result = run(template_file, platform=platform, output_dir=output_dir, chunk=not no_chunk,
                     allow_unresolved=allow_unresolved, validate=not no_validate,
                     fail_on_validation_error=fail_on_validation_error,
                     registry_credentials=registry_credentials, pin_digests=pin_digests,
                     resource_limits=resource_limits, models=_LazyModels(Path.cwd()))
    except ValidationError as exc:  # show every finding before the one-line failure
        _print_findings(str(exc.location.file if exc.location and exc.location.file else "manifest"), exc.findings,
                        output_format)
        raise
    _genconfig_report(result, output_format)


class _LazyModels:
    """The solution's model registry (``edgegen.models.registry.SolutionModels``), imported only when the template
    pins a model: importing it (hashlib's OpenSSL, the registry) costs more than a whole genconfig without one."""

    def __init__(self, solution_dir: Any) -> None:
        self.solution_dir = solution_dir
        self._models: Any = None

    def pin(self, name: str, version: int | None = None) -> str:
        if self._models is None:
            from edgegen.models.registry import SolutionModels

            self._models = SolutionModels(self.solution_dir)
        return str(self._models.pin(name, version))


def _print_findings(file: str, findings: list[Any], output_format: str) -> None:
    from edgegen.generator.validation.report import to_json, to_text

    emit(to_json(file, findings), output_format, to_text(file, findings))


def _genconfig_report(result: Any, output_format: str) -> None:
    out = str(result.output_path)
    data: dict[str, Any] = {
        "template": result.template_file,
        "output": out,
        "written": result.written,
        "images": result.render.images,
        "notes": result.notes,
        "unresolved": [e.to_dict() for e in result.render.unresolved],
        "validation": None,
    }
    lines = [f"Expanding '{os.path.basename(result.template_file)}' to '{out}'"]
    lines += [f"  {name}: {image}" for name, image in result.render.images.items()]
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"warning: {e.render()}" for e in result.render.unresolved]
    if result.findings is not None:
        from edgegen.generator.validation.report import to_json, to_text

        data["validation"] = to_json(out, result.findings)
        lines += [f"Validating generated deployment manifest {out}", to_text(out, result.findings)]
    emit(data, output_format, "\n".join(lines))


# --- genconfig --fleet (edgegen.hub.fleet) ----------------------------------------------------------------


def _genconfig_fleet(fleet_file: str, output_dir: str | None, *, validate: bool, fail_on_validation_error: bool,
                     output_format: str) -> None:
    """Render + validate every deployment of a fleet file; write them (atomically) unless told to fail."""
    from pathlib import Path

    from edgegen.errors import EdgegenError
    from edgegen.hub.fleet import render_fleet, write_fleet

    cwd = Path.cwd()
    if output_dir is None:
        from edgegen.generator.solution import load_env

        out = Path(load_env(cwd).output_dir) / "fleet"
    else:
        out = Path(output_dir)
    plan = render_fleet(Path(fleet_file), cwd=cwd, validate=validate)
    errors = plan.errors()
    failing = fail_on_validation_error and bool(errors)
    groups = _fleet_findings(plan, out, output_format, errors_only=failing)
    written = [] if failing else write_fleet(plan, out)
    warnings = sum(1 for d in plan.deployments for f in d.findings if f.severity == "warning")
    devices = sum(1 for d in plan.deployments if d.device is not None)
    text = (f"Rendered {fleet_file}: {len(plan.deployments)} deployments ({len(plan.deployments) - devices} "
            f"groups, {devices} devices with their own variables) for {len(plan.device_deployment)} listed "
            f"devices; {plan.renders} renders, {plan.validations if validate else 0} validations, "
            f"{len(errors)} error(s), {warnings} warning(s) ({len(groups)} distinct findings shown)")
    if written:
        text += f"\nWrote {len(written) - 1} manifests and fleet-index.json to {out}"
    emit({"fleet": fleet_file, "output_dir": str(out), "written": bool(written),
          "devices": len(plan.device_deployment), "renders": plan.renders, "validations": plan.validations,
          "errors": len(errors), "warnings": warnings,
          "findings": [{**f.to_dict(), "deployments": names} for f, names in groups],
          "deployments": [{"name": d.name, "group": d.group, "device": d.device, "priority": d.priority,
                           "targetCondition": d.target_condition, "file": str(out / f"{d.name}.json")}
                          for d in plan.deployments]}, output_format, text)
    if failing:
        raise EdgegenError(f"{len(errors)} validation error(s) in the fleet's manifests; nothing written",
                           hint="fix the template or the fleet's variables, or drop --fail-on-validation-error")


def _fleet_findings(plan: Any, out: Any, output_format: str, *, errors_only: bool) -> list[tuple[Any, list[str]]]:
    """Print each distinct finding once, located in the first manifest (as written) that has it, with the
    deployments that share it (a fleet's manifests mostly share their warnings)."""
    import json

    from edgegen.generator.validation import locate
    from edgegen.generator.validation.report import render_finding

    groups: dict[tuple[Any, ...], tuple[Any, list[str]]] = {}
    for d in plan.deployments:
        findings = [f for f in d.findings if f.is_error or not errors_only]
        keys = [(f.severity, f.path, f.message, f.hint) for f in findings]
        if any(k not in groups for k in keys):
            located = locate(findings, json.dumps(d.manifest, indent=2), str(out / f"{d.name}.json"), d.manifest)
            for k, f in zip(keys, located, strict=True):
                groups.setdefault(k, (f, []))
        for k in dict.fromkeys(keys):
            groups[k][1].append(d.name)
    ordered = sorted(groups.values(), key=lambda g: (not g[0].is_error, g[0].severity != "warning"))
    if output_format == "text":  # the other formats carry them in their data
        for f, names in ordered:
            shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
            click.echo(f"{render_finding(f)}\n    in {len(names)} deployment(s): {shown}\n")
    return ordered


# --- validate (edgegen.generator.validation) ------------------------------------------------------------


@click.command("validate")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1): for CI.")
@output_option()
def validate(manifest: str, strict: bool, output_format: str) -> None:
    """Validate a deployment manifest offline.

    The manifest is a rendered one, or a layered deployment.

    Checks our JSON schemas for $edgeAgent/$edgeHub (by schemaVersion), routes, createOptions chunks,
    images, registry credentials, leftover ${VAR} placeholders, names and size limits. Exit 1 when any error
    is found (with --strict: any error or warning; infos never fail).

    \b
    Examples:
      edgegen validate manifests/deployment.amd64.json
      edgegen validate manifests/deployment.amd64.json --strict --output json
    """
    from edgegen.generator.validation import validate_file
    from edgegen.generator.validation.report import summary, to_json, to_text

    findings = validate_file(manifest)
    emit(to_json(manifest, findings), output_format, to_text(manifest, findings))
    counts = summary(findings)
    if counts["error"] or (strict and counts["warning"]):
        if strict and not counts["error"]:
            click.echo(f"--strict: {counts['warning']} warning(s) fail the validation", err=True)
        from edgegen.cli import ExitStatus

        # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, which swallows Exit codes
        sys.exit(ExitStatus.FAILURE)
