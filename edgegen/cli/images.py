"""`edgegen build` and `edgegen push`: a thin shell over edgegen.images (rich progress, --output json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edgegen.cli.output import emit, output_option, table
from edgegen.errors import EdgegenError

__all__ = ["build", "push"]


def _common(f: Any) -> Any:
    f = click.argument("modules", nargs=-1)(f)
    f = output_option()(f)
    f = click.option(
        "-f",
        "--file",
        "template",
        default=None,
        metavar="TEMPLATE",
        help="Deployment template [default: $DEPLOYMENT_CONFIG_TEMPLATE_FILE or deployment.template.json].",
    )(f)
    f = click.option("-P", "--platform", help="Platform (default: DEFAULT_PLATFORM from .env, else amd64).")(f)
    return f


@click.command("build")
@_common
@click.option("--push", "do_push", is_flag=True, help="Push each image after building it.")
@click.option("--no-wheels", is_flag=True,
              help="Do not download requirements.txt's wheels into a module's wheels/ folder before its build.")
def build(
    platform: str | None, template: str | None, output_format: str, modules: tuple[str, ...], do_push: bool,
    no_wheels: bool,
) -> None:
    """Build module images with the Docker SDK.

    Builds the template's module images (minus BYPASS_MODULES) with the Docker API of DOCKER_HOST.

    A module folder with a wheels/ folder first gets the wheels of its requirements.txt for the platform (pip on
    this machine), so its Dockerfile installs them with no network inside the build.

    \b
    Examples:
      edgegen build
      edgegen build sensor -P arm64v8
      edgegen build --push --output json
    """
    _run(template, platform, modules, do_build=True, do_push=do_push, fmt=output_format, wheels=not no_wheels)


@click.command("push")
@_common
@click.option("--no-build", is_flag=True, help="Push images built earlier without building them again.")
def push(
    platform: str | None, template: str | None, output_format: str, modules: tuple[str, ...], no_build: bool
) -> None:
    """Build (unless --no-build) and push the template's module images.

    Records the pushed digests for `edgegen genconfig --pin-digests`.

    \b
    Examples:
      edgegen push
      edgegen push sensor --no-build
      edgegen push --output json
    """
    _run(template, platform, modules, do_build=not no_build, do_push=True, fmt=output_format)


def _run(
    template: str | None, platform: str | None, modules: tuple[str, ...], *, do_build: bool, do_push: bool, fmt: str,
    wheels: bool = True,
) -> None:
    from edgegen.generator.solution import load_env
    from edgegen.images import (
        Engine,
        Masker,
        default_digest_file,
        push_image,
        record_digests,
        registries_from_env,
    )
    from edgegen.images.models import build_with_models
    from edgegen.images.plan import plan_targets
    from edgegen.models.registry import SolutionModels

    solution_models = SolutionModels(Path.cwd())

    # Every password known before anything can fail, so no message below can show one.
    masker = Masker(v for k, v in load_env(Path.cwd()).values.items() if k.startswith("CONTAINER_REGISTRY_PASSWORD"))
    report = _RichReporter() if fmt in ("text", "table") else _JsonReporter()
    rows: list[dict[str, Any]] = []
    pushed: list[Any] = []
    digests_file = None
    try:
        plan = plan_targets(template, platform=platform, only=modules)
        registries = registries_from_env(plan.env, source=".env")
        for reg in registries:
            masker.add(reg.password)
        digests_file = default_digest_file(plan.solution_dir)
        targets = plan.targets
        if not targets:
            report.message("no module of the template is built from a module.json (or all are in BYPASS_MODULES)")
        with Engine.connect(plan.env) as engine, report:
            for target in targets:
                row: dict[str, Any] = {
                    "modules": list(target.modules),
                    "folder": str(target.spec.folder),
                    "platform": target.platform,
                    "tag": target.tag,
                }
                if do_build:
                    built, checked = build_with_models(engine, target, plan.container_tag, solution_models,
                                                       on_event=report.build_event, masker=masker, wheels=wheels)
                    for line in checked:
                        report.message(line)
                    row.update(image_id=built.image_id, build_seconds=round(built.seconds, 2),
                               notes=list(built.notes), models=checked)
                if do_push:
                    result = push_image(engine, target.tag, registries, on_event=report.push_event, masker=masker)
                    pushed.append(result)
                    row.update(digest=result.digest, pinned=result.pinned, push_seconds=round(result.seconds, 2))
                rows.append(row)
    except EdgegenError as exc:
        exc.message = masker(exc.message)
        exc.hint = masker(exc.hint) if exc.hint else exc.hint
        exc.args = (exc.message,)
        raise
    finally:
        if pushed and digests_file is not None:
            record_digests(digests_file, pushed)
    data = {"images": rows, "digests_file": str(digests_file) if pushed else None}
    shown = [{**r, "modules": ", ".join(r["modules"]), "image_id": str(r.get("image_id") or "")[:19]} for r in rows]
    columns = ["modules", "platform", "tag", "image_id", "digest"]
    emit(data, fmt, table(shown, columns, title="images") if rows else "nothing built", rows=shown, columns=columns)


class _JsonReporter:
    """One compact JSON object per event on stderr (CI logs); stdout keeps the final summary."""

    def __enter__(self) -> _JsonReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _line(self, obj: dict[str, Any]) -> None:
        sys.stderr.write(json.dumps(obj, default=str) + "\n")
        sys.stderr.flush()

    def message(self, text: str) -> None:
        self._line({"event": "message", "text": text})

    def build_event(self, e: Any) -> None:
        self._line({"event": "build", "kind": e.kind, "tag": e.tag, "text": e.text, "step": e.step, "total": e.total})

    def push_event(self, e: Any) -> None:
        self._line(
            {
                "event": "push",
                "tag": e.tag,
                "status": e.status,
                "layer": e.layer,
                "current": e.current,
                "total": e.total,
            }
        )


class _RichReporter:
    """Rich progress bars on stderr: one bar per image build (steps), one per pushed layer (bytes)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console if console is not None else Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._totals: dict[Any, float] = {}

    def __enter__(self) -> _RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def message(self, text: str) -> None:
        self.console.print(text)

    def _task(self, key: str, description: str, total: float | None) -> Any:
        if key not in self._tasks:
            self._tasks[key] = self.progress.add_task(description, total=total, detail="")
        return self._tasks[key]

    def build_event(self, e: Any) -> None:
        task = self._task("build:" + e.tag, f"build {e.tag}", None)
        if e.kind == "step":
            self.progress.update(task, total=e.total, completed=(e.step or 1) - 1, detail=f"{e.step}/{e.total}")
            self.progress.console.print(f"[bold]{e.tag}[/] {e.text}", markup=True, highlight=False, soft_wrap=True)
        elif e.kind == "done":
            total = e.total or 1
            self.progress.update(task, total=total, completed=total, detail="done")
        elif e.kind in ("log", "note"):
            self.progress.console.print(f"  {e.text}", markup=False, highlight=False, style="dim", soft_wrap=True)

    def push_event(self, e: Any) -> None:
        if e.layer:  # Docker: one bar per layer (bytes); finished layers end full
            task = self._task(f"push:{e.tag}:{e.layer}", f"  layer {e.layer[:12]}", e.total)
            if e.total:
                self._totals[task] = e.total
                self.progress.update(task, total=e.total, completed=e.current or 0, detail=e.status)
            elif e.status in ("Pushed", "Layer already exists") or e.status.startswith("Mounted from"):
                total = self._totals.get(task, 1)
                self.progress.update(task, total=total, completed=total, detail=e.status)
            else:
                self.progress.update(task, detail=e.status)
            return
        task = self._task("push:" + e.tag, f"push {e.tag}", None)
        if e.status.startswith("pushed "):
            self.progress.update(task, total=1, completed=1, detail="done")
        elif e.status:
            self.progress.update(task, detail=e.status[:60])
            self.progress.console.print(f"  {e.status}", markup=False, highlight=False, style="dim", soft_wrap=True)
