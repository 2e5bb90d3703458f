"""Generator commands: new, add, genconfig, validate (thin shells over edgegen.generator)."""

from __future__ import annotations

import sys

import click

from edgegen.cli.output import emit, output_option

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
