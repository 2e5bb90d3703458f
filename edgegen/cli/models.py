"""Model commands: ``edgegen model register/list/show/download/delete/verify/convert`` and ``edgegen profile``
(thin shells over edgegen.models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgegen.cli.output import emit, output_option, table

_COLUMNS = ("id", "framework", "sha256", "size", "createdTime", "tags", "description")


def _registry(registry: str | None) -> Any:
    from edgegen.models.registry import Registry, SolutionModels

    return Registry(Path(registry)) if registry else SolutionModels(Path.cwd()).registry


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--{what} {item!r}: write KEY=VALUE")
        out[key] = value
    return out


def _row(m: Any) -> dict[str, Any]:
    d = m.to_dict()
    d["sha256"] = m.sha256[:12]
    d["tags"] = ", ".join(f"{k}={v}" for k, v in m.tags.items())
    return d


registry_option = click.option("--registry", default=None, metavar="DIR",
                               help="Registry folder [default: $MODEL_REGISTRY_PATH from .env, or .models].")


@click.group("model")
def model() -> None:
    """Register, list, download, convert models (no Azure).

    Register, list, show, download, delete, verify and convert model versions in the solution's registry.

    \b
    Examples:
      edgegen model register build/model --name sensor-anomaly --framework scikit-learn --tag stage=dev
      edgegen model list --output json
      edgegen model convert sensor-anomaly --to onnx --sample-data build/features.jsonl
    """


@model.command("register")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Model name (letters, digits, - and _).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="A property (repeatable).")
@click.option("--description", default=None)
@click.option("--framework", default=None, help="scikit-learn, onnx, tensorflow, pytorch, keras or custom.")
@click.option("--framework-version", default=None)
@click.option("--if-changed", is_flag=True, help="Reuse the latest version when bytes, framework, tags and "
                                                 "properties are the same (no new version).")
@registry_option
@output_option()
def register(path: Path, name: str, tags: tuple[str, ...], properties: tuple[str, ...], description: str | None,
             framework: str | None, framework_version: str | None, if_changed: bool, registry: str | None,
             output_format: str) -> None:
    """Register the model file or folder PATH as the next version of --name.

    \b
    Examples:
      edgegen model register build/model.pkl --name sensor-anomaly --framework scikit-learn
      edgegen model register build/model --name sensor-anomaly --tag stage=dev --if-changed --output json
    """
    reg = _registry(registry)
    m, created = reg.register(path, name, tags=_pairs(tags, "tag"), properties=_pairs(properties, "property"),
                              description=description, framework=framework, framework_version=framework_version,
                              if_changed=if_changed)
    verb = "Registered" if created else "Unchanged, kept"
    emit({**m.to_dict(), "created": created}, output_format,
         f"{verb} {m.id} (sha256 {m.sha256}, {m.size} bytes, {len(m.files)} file(s)) in {reg.root}",
         rows=[_row(m)], columns=_COLUMNS)


@model.command("list")
@click.option("--name", "-n", default=None, help="Only this model's versions.")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="Only versions with this tag.")
@registry_option
@output_option()
def list_models(name: str | None, tags: tuple[str, ...], registry: str | None, output_format: str) -> None:
    """List registered model versions.

    \b
    Examples:
      edgegen model list
      edgegen model list --name sensor-anomaly --tag stage=prod --output json
    """
    wanted: dict[str, str | None] = {}
    for t in tags:
        key, sep, value = t.partition("=")
        wanted[key] = value if sep else None
    models = _registry(registry).list(name, wanted or None)
    rows = [_row(m) for m in models]
    emit([m.to_dict() for m in models], output_format, table(rows, _COLUMNS) if models else "no models registered",
         rows=rows, columns=_COLUMNS)


@model.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@registry_option
@output_option()
def show(ref: str, registry: str | None, output_format: str) -> None:
    """Show one model version (the latest without :VERSION), with its files.

    \b
    Examples:
      edgegen model show sensor-anomaly
      edgegen model show sensor-anomaly:2 --output json
    """
    m = _registry(registry).get(ref)
    d = m.to_dict()
    lines = [f"{k}: {d[k]}" for k in ("id", "sha256", "framework", "frameworkVersion", "description", "createdTime",
                                       "derivedFrom", "kind", "entry", "size") if d[k] not in (None, "")]
    lines += [f"tags: {', '.join(f'{k}={v}' for k, v in m.tags.items())}" if m.tags else "tags: -",
              f"properties: {', '.join(f'{k}={v}' for k, v in m.properties.items())}" if m.properties else
              "properties: -"]
    emit(d, output_format, "\n".join(lines) + "\n" + table(d["files"], ("path", "sha256", "size")),
         rows=[_row(m)], columns=_COLUMNS)


@model.command("download")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--target", "-t", default=".", type=click.Path(path_type=Path), show_default=True,
              help="Folder to write the model's file or folder into.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file or folder of the same name.")
@registry_option
def download(ref: str, target: Path, overwrite: bool, registry: str | None) -> None:
    """Write a model's file or folder into --target, checking every byte against its hash.

    \b
    Examples:
      edgegen model download sensor-anomaly:2 --target build/
    """
    path = _registry(registry).download(ref, target, exist_ok=overwrite)
    click.echo(str(path))


@model.command("delete")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--yes", is_flag=True, help="Delete every version of NAME when no :VERSION is given.")
@registry_option
def delete(ref: str, yes: bool, registry: str | None) -> None:
    """Delete a model version (or all versions of NAME with --yes); unused bytes are removed.

    \b
    Examples:
      edgegen model delete sensor-anomaly:1
      edgegen model delete sensor-anomaly --yes
    """
    from edgegen.models.refs import parse_ref

    r = parse_ref(ref)
    if r.version is None and not yes:
        raise click.UsageError(f"{ref!r} names every version of the model: add :VERSION, or --yes to delete all")
    for m in _registry(registry).delete(r):
        click.echo(f"Deleted {m.id}")


@model.command("verify")
@click.argument("ref", metavar="[NAME[:VERSION]]", required=False)
@registry_option
@output_option()
def verify(ref: str | None, registry: str | None, output_format: str) -> None:
    """Re-hash the stored bytes of one or every model version; exit 1 when any differs.

    \b
    Examples:
      edgegen model verify
      edgegen model verify sensor-anomaly:2 --output json
    """
    import sys

    rows = [{"id": m.id, "ok": problem is None, "problem": problem} for m, problem in _registry(registry).verify(ref)]
    emit(rows, output_format, "\n".join(f"{r['id']}: {r['problem'] or 'ok'}" for r in rows))
    if any(not r["ok"] for r in rows):
        from edgegen.cli import ExitStatus

        sys.exit(ExitStatus.FAILURE)


@model.command("convert")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--to", "target", type=click.Choice(["onnx"]), required=True, help="Target format.")
@click.option("--sample-data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines of input rows (a list of numbers, a list of rows, or {\"data\": rows}).")
@click.option("--rtol", default=1e-4, show_default=True, help="Relative tolerance of the agreement check.")
@click.option("--atol", default=1e-4, show_default=True,
              help="Absolute tolerance of the agreement check (float32 inference: outputs near 0 need one).")
@click.option("--opset", default=None, type=int, help="ONNX opset [default: skl2onnx's latest tested].")
@registry_option
@output_option()
def convert(ref: str, target: str, sample_data: Path, rtol: float, atol: float, opset: int | None,
            registry: str | None, output_format: str) -> None:
    """Convert a scikit-learn model to ONNX, check it agrees on samples, register it.

    The ONNX model is registered as a new version of the same name, derived from the source version.

    \b
    Examples:
      edgegen model convert sensor-anomaly --to onnx --sample-data build/features.jsonl
      edgegen model convert sensor-anomaly:2 --to onnx --sample-data rows.jsonl --output json
    """
    from edgegen.models.convert import convert_to_onnx

    result = convert_to_onnx(_registry(registry), ref, sample_data, rtol=rtol, atol=atol, opset=opset)
    emit(result.to_dict(), output_format,
         "\n".join([f"Converted {result.source} ({result.estimator}) to ONNX: registered {result.model.id} "
                    f"(sha256 {result.model.sha256})", *(f"  {check}" for check in result.checks)]))
