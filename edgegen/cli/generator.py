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
    """Create a new solution folder NAME ('.' for the current, empty folder).

    Writes deployment.template.json, deployment.debug.template.json, a documented .env, .gitignore and
    modules/ (with a first module) from edgegen's Jinja2 templates; no network needed.
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
def add(name: str, module_template: str) -> None:
    """Add module NAME to the solution in the current folder.

    Creates <MODULES_PATH>/NAME (module.json, Dockerfiles for amd64, amd64.debug, arm64v8, arm32v7, main.py,
    requirements.txt) and adds the module (${MODULES.NAME} / ${MODULES.NAME.debug}) and a route NAMEToIoTHub
    to deployment.template.json and deployment.debug.template.json.
    """
    from edgegen.generator.scaffold import add_module

    result = add_module(".", name, module_template)
    click.echo(f"Added module {name} ({module_template}) in {result.module_dir}")
    for template in result.templates:
        click.echo(f"  updated {template}")


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
@output_option(("text", "json"))
def genconfig(template_file: str | None, platform: str | None, output_dir: str | None,
              fail_on_validation_error: bool, no_chunk: bool, allow_unresolved: bool, no_validate: bool,
              output_format: str) -> None:
    """Render a deployment template into a manifest, like `iotedgedev solution genconfig`.

    Expands $VARS from .env and the environment, ${MODULES.x} image placeholders from modules/*/module.json,
    Jinja2 (templates named *.j2 or starting with {# / {%), YAML templates, resource limits from
    deploymentconfig.json, then splits createOptions into 512-character chunks and validates the result.
    """
    from edgegen.generator.genconfig import genconfig as run

    try:
        result = run(template_file, platform=platform, output_dir=output_dir, chunk=not no_chunk,
                     allow_unresolved=allow_unresolved, validate=not no_validate,
                     fail_on_validation_error=fail_on_validation_error)
    except Exception as exc:
        findings = getattr(exc, "findings", None)
        if findings is not None:  # ValidationError: show every finding before the one-line failure
            _print_findings(str(getattr(exc.location, "file", "") or "manifest"), findings, output_format)
        raise
    _genconfig_report(result, output_format)


def _print_findings(file: str, findings: list[Any], output_format: str) -> None:
    from edgegen.generator.validation.report import to_json, to_text

    if output_format == "json":
        emit(to_json(file, findings), "json")
    else:
        click.echo(to_text(file, findings))


def _genconfig_report(result: Any, output_format: str) -> None:
    out = str(result.output_path)
    if output_format == "json":
        data: dict[str, Any] = {
            "template": result.template_file,
            "output": out,
            "written": result.written,
            "images": result.render.images,
            "notes": result.notes,
            "unresolved": [e.to_dict() for e in result.render.unresolved],
            "validation": None,
        }
        if result.findings is not None:
            from edgegen.generator.validation.report import to_json

            data["validation"] = to_json(out, result.findings)
        elif result.validation_note:
            data["validation"] = {"skipped": result.validation_note}
        emit(data, "json")
        return
    lines = [f"Expanding '{os.path.basename(result.template_file)}' to '{out}'"]
    lines += [f"  {name}: {image}" for name, image in result.render.images.items()]
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"warning: {e.render()}" for e in result.render.unresolved]
    click.echo("\n".join(lines))
    if result.findings is not None:
        from edgegen.generator.validation.report import to_text

        click.echo(f"Validating generated deployment manifest {out}")
        click.echo(to_text(out, result.findings))
    elif result.validation_note:
        click.echo(f"note: {result.validation_note}")


# --- validate (edgegen.generator.validation) ------------------------------------------------------------


@click.command("validate")
@click.argument("manifest", type=click.Path(dir_okay=False))
@output_option(("text", "json"))
def validate(manifest: str, output_format: str) -> None:
    """Validate a deployment manifest offline (rendered, or a layered deployment).

    Checks our JSON schemas for $edgeAgent/$edgeHub (by schemaVersion), routes, createOptions chunks,
    images, registry credentials, names and size limits. Exit 1 when any error is found.
    """
    from edgegen.generator.validation import validate_file
    from edgegen.generator.validation.report import summary, to_json, to_text

    findings = validate_file(manifest)
    if output_format == "json":
        emit(to_json(manifest, findings), "json")
    else:
        emit(None, "text", to_text(manifest, findings))
    if summary(findings)["error"]:
        from edgegen.cli import ExitStatus

        # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, which swallows Exit codes
        sys.exit(ExitStatus.FAILURE)
