"""Jinja2 in deployment templates: sandboxed, ``StrictUndefined``, includes from ``templates/``.

A template is rendered with Jinja2 when its name ends in ``.j2`` or its text starts with ``{#`` or ``{%``
(neither can start a JSON or YAML document, so plain iotedgedev templates are never touched -- not even one
holding Docker's ``{{.Name}}`` log tags). Jinja runs first; ``$VAR`` expansion and placeholders run on its
output. Context: ``env`` (the effective environment), ``platform``, ``container_tag`` and ``modules``:
``modules.<folder>.image`` (the image for the selected platform), ``.images[<platform>]``, ``.debug_image``,
``.repository``, ``.version``, ``.platforms``, ``.placeholder``. Includes and imports are looked up in the
template's folder, then its ``templates/`` folder, then edgegen's own ``templates/`` (``fragments/routes.j2``,
``fragments/modules.j2``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegen.generator.errors import Location, RenderError
from edgegen.generator.modulejson import ModuleSpec

if TYPE_CHECKING:
    from edgegen.generator.jinjalimits import JinjaLimits

__all__ = ["builtin_templates_dir", "is_jinja", "module_context", "render_jinja", "search_path"]


def builtin_templates_dir() -> Path:
    """edgegen's ``templates/`` folder (``$EDGEGEN_TEMPLATES`` overrides; default: next to the package)."""
    override = os.environ.get("EDGEGEN_TEMPLATES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "templates"


def is_jinja(file: str, text: str) -> bool:
    return file.endswith(".j2") or text.lstrip().startswith(("{#", "{%"))


def search_path(template_dir: Path) -> list[Path]:
    return [template_dir, template_dir / "templates", builtin_templates_dir()]


def module_context(specs: Mapping[str, ModuleSpec], platform: str, container_tag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        images = {p: spec.image(p, container_tag) for p in spec.platforms}
        entry: dict[str, Any] = {
            "name": name,
            "repository": spec.repository,
            "version": spec.version,
            "platforms": sorted(spec.platforms),
            "images": images,
            "placeholder": "${MODULES." + name + "}",
        }
        if platform in images:
            entry["image"] = images[platform]
        if platform + ".debug" in images:
            entry["debug_image"] = images[platform + ".debug"]
        out[name] = entry
    return out


def _line(exc: BaseException, filename: str = "<template>") -> int | None:
    """The template line an exception was raised on (Jinja rewrites tracebacks to template frames)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_jinja(text: str, *, file: str, paths: Sequence[Path], context: Mapping[str, Any],
                 limits: JinjaLimits | None = None) -> str:
    """Render ``text`` in a sandbox bounded by ``limits`` (``jinjalimits``); every failure becomes a
    ``RenderError`` with the template line."""
    import jinja2
    from jinja2.sandbox import SecurityError

    from edgegen.generator.jinjalimits import DEFAULT_LIMITS, LimitedEnvironment, TemplateLimitError

    env = LimitedEnvironment(
        limits or DEFAULT_LIMITS,
        loader=jinja2.FileSystemLoader([str(p) for p in paths]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    lines = text.splitlines()

    def where(name: str | None, line: int | None = None) -> Location:
        src = lines[line - 1] if name in (None, file) and line and 0 < line <= len(lines) else None
        return Location(file=name or file, line=line, source_line=src)

    try:
        template = env.from_string(text)
        budget = env.begin()
        out: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            budget.size(size, "the output")
            budget.check_time()
            out.append(chunk)
        return "".join(out)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"Jinja2 syntax error: {exc.message}", location=where(exc.filename or file, exc.lineno),
                          hint="see https://jinja.palletsprojects.com/en/3.1.x/templates/") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"Jinja2 include {exc.name!r} not found", location=where(file, _line(exc)),
                          hint="searched: " + ", ".join(str(p) for p in paths)) from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"Jinja2: {exc.message}", location=where(file, _line(exc)),
                          hint="StrictUndefined is on: every name must exist (context: env, modules, platform, "
                          "container_tag); use `x | default(...)` for optional values") from None
    except SecurityError as exc:
        raise RenderError(f"Jinja2 sandbox refused: {exc}", location=where(file, _line(exc))) from None
    except TemplateLimitError as exc:
        raise RenderError(f"Jinja2 limit: {exc.message}", location=where(file, _line(exc)), hint=exc.hint) from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"Jinja2: {exc}", location=where(file, _line(exc))) from None
    except RecursionError:
        raise RenderError("Jinja2: the template recurses too deeply (a macro or recursive loop without end?)",
                          location=Location(file=file)) from None
    except Exception as exc:  # the template's own code failed (1/0, int('x'), a huge float…): user input
        raise RenderError(f"Jinja2: {type(exc).__name__}: {exc}", location=where(file, _line(exc)),
                          hint="fix the expression on that line") from None
