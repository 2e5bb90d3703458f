"""``edgegen profile``: run the real scoring host under load with samples; recommend cpu and memoryInGB."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from edgegen.cli.output import emit, output_option, table


def _levels(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.UsageError(f"--concurrency {text!r}: write numbers separated by commas, e.g. 1,2,4") from None


def _module_target(module: str) -> tuple[Path, list[str], Path]:
    """(entry script, pinned models, module folder) of a module of the solution's deployment template."""
    from edgegen.errors import EdgegenError
    from edgegen.models.registry import SolutionModels
    from edgegen.pipeline import genconfig

    cwd = Path.cwd()
    result = genconfig(cwd=cwd, write=False, validate=False, models=SolutionModels(cwd))
    modules = result.manifest["modulesContent"]["$edgeAgent"]["properties.desired"].get("modules", {})
    if module not in modules:
        raise EdgegenError(f"module {module!r} is not in {result.template_file}",
                           hint=f"modules: {', '.join(sorted(modules)) or 'none'}")
    env = {k: v.get("value") for k, v in (modules[module].get("env") or {}).items() if isinstance(v, dict)}
    folder = cwd / result.env.modules_path / module
    script = folder / (env.get("ENTRY_SCRIPT") or "score.py")
    pins = [p for p in (env.get("EDGEGEN_MODELS") or "").split(",") if p.strip()]
    return script, pins, folder


@click.command("profile")
@click.option("--module", "module", default=None, help="A module of the deployment template (its ENTRY_SCRIPT "
              "and EDGEGEN_MODELS); the recommendation goes to its deploymentconfig.json.")
@click.option("--entry-script", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--model", "model_refs", multiple=True, metavar="NAME[:VERSION]", help="Model(s) for --entry-script.")
@click.option("--sample-data", required=True, type=click.Path(path_type=Path),
              help="JSON Lines: one /score request body per line.")
@click.option("--duration", default=30.0, show_default=True, help="Seconds per concurrency level.")
@click.option("--concurrency", default="1,2,4", show_default=True, help="Concurrency levels.")
@click.option("--margin", default=0.25, show_default=True, help="Headroom added to the measured peaks (0.25 = 25 %).")
@click.option("--host", default="auto", show_default=True,
              help="Scoring host: auto (= edgegen-serve, the inference module's scoring core), edgegen-serve, or "
                   "builtin (a minimal baseline).")
@click.option("--write-config", "config_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="deploymentconfig.json to write [default: the module's, or ./deploymentconfig.json].")
@click.option("--no-write", is_flag=True, help="Only print the figures and the recommendation.")
@click.option("--registry", default=None, metavar="DIR", help="Model registry [default: the solution's].")
@output_option()
def profile(module: str | None, entry_script: Path | None, model_refs: tuple[str, ...], sample_data: Path,
            duration: float, concurrency: str, margin: float, host: str, config_file: Path | None, no_write: bool,
            registry: str | None, output_format: str) -> None:
    """Measure a scoring host under load; recommend cpu and memory.

    Runs the entry script in the real scoring host with the samples at each concurrency level and recommends
    cpu and memoryInGB for the module's deploymentconfig.json.

    \b
    Examples:
      edgegen profile --module inference --sample-data build/samples/readings.jsonl --duration 10
      edgegen profile --entry-script score.py --model sensor-anomaly:2 --sample-data req.jsonl --concurrency 1,4
    """
    from edgegen.models.layout import lay_out
    from edgegen.models.profile import load_samples, run_profile, write_deployment_config
    from edgegen.models.refs import parse_ref
    from edgegen.models.registry import Registry, SolutionModels

    if (module is None) == (entry_script is None):
        raise click.UsageError("give either --module NAME or --entry-script FILE (with --model)")
    if module is not None and model_refs:
        raise click.UsageError("--model goes with --entry-script; a module's models come from its deployment")
    reg = Registry(Path(registry)) if registry else SolutionModels(Path.cwd()).registry
    if module is not None:
        script, pins_text, folder = _module_target(module)
        target = config_file or folder / "deploymentconfig.json"
        pins = [parse_ref(p) for p in pins_text]
    else:
        assert entry_script is not None
        script, target = entry_script.resolve(), config_file or Path("deploymentconfig.json")
        pins = [parse_ref(r) for r in model_refs]
    pinned = [reg.get(p).pinned() for p in pins]
    samples = load_samples(sample_data)
    with tempfile.TemporaryDirectory(prefix="edgegen-profile-") as tmp:
        env = lay_out(reg, pinned, Path(tmp) / "app") if pinned else {"AZUREML_MODEL_DIR": str(script.parent)}
        result = run_profile(script, Path(env["AZUREML_MODEL_DIR"]), samples, env=env,
                             models=[str(p) for p in pinned], concurrency=_levels(concurrency), duration=duration,
                             margin=margin, host=host, workdir=Path(tmp))
    if not no_write:
        result.deployment_config = str(write_deployment_config(target, result.cpu, result.memory_in_gb))
    _report(result, output_format)


def _report(result: Any, output_format: str) -> None:
    rows = [{"concurrency": lv.concurrency, "req/s": lv.throughput, "p50 ms": lv.p50_ms, "p90 ms": lv.p90_ms,
             "p99 ms": lv.p99_ms, "errors": lv.errors, "cpu cores": lv.cpu_cores, "cpu ms/req": lv.cpu_ms_per_request,
             "peak MiB": round(lv.peak_memory_bytes / 1024**2, 1)} for lv in result.levels]
    lines = [f"Profiled {result.script} in {result.host} with {result.samples} samples"
             + (f", models {', '.join(m.split('@')[0] for m in result.models)}" if result.models else ""),
             table(rows, list(rows[0])),
             f"Recommendation (measured peaks + {result.margin:.0%} margin): cpu {result.cpu}, "
             f"memoryInGB {result.memory_in_gb}"]
    if result.deployment_config:
        lines.append(f"Wrote {result.deployment_config} (genconfig turns it into HostConfig.NanoCpus/Memory)")
    emit(result.to_dict(), output_format, "\n".join(lines), rows=rows)
