"""``edgegen new`` and ``edgegen add``: solutions and modules from the Jinja2 templates in ``templates/``.

No network and no cookiecutter: everything comes from ``templates/solution`` and ``templates/modules``.
Names and messages follow iotedgedev 3.3.9 (``Modules.add``, ``Solution.create``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common import ids
from edgegen.common.private import write_private
from edgegen.generator.atomic import write_text_atomic
from edgegen.generator.errors import Location, ScaffoldError
from edgegen.generator.jinja import builtin_templates_dir
from edgegen.generator.solution import load_env
from edgegen.generator.templatedit import add_module_to_template, load_for_edit

__all__ = ["MODULE_TEMPLATES", "RUNTIME_VERSIONS", "AddResult", "add_module", "add_module_to_template",
           "check_module_name", "module_files", "new_solution", "render_builtin", "solution_template_text",
           "write_module_folder"]

MODULE_TEMPLATES = ("inference", "monitor", "python", "sensor")
RUNTIME_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
_NAME = re.compile(r"^[a-zA-Z0-9_]+$")
_BASE_IMAGES = {
    "amd64": "amd64/python:3.11-slim-bookworm",
    "arm32v7": "arm32v7/python:3.11-slim-bookworm",
    "arm64v8": "arm64v8/python:3.11-slim-bookworm",
}
_DESCRIPTIONS = {
    "python": "forwards input1 to output1",
    "sensor": "simulated temperature sensor (output temperatureOutput)",
    "inference": "scores input1 with an Azure ML entry script (outputs output1, errors)",
    "monitor": "summarizes inputs scored and errors (output upstream)",
}
# What feeds the inputs each template reads: input -> (template of the sending module, its output). A module of
# that template already in the deployment template gets a route to the new module's input.
_FEEDS: dict[str, dict[str, tuple[str, str]]] = {
    "inference": {"input1": ("sensor", "temperatureOutput")},
    "monitor": {"scored": ("inference", "output1"), "errors": ("inference", "errors")},
}
_SIMULATED_SENSOR = "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor"
# createOptions of the module in deployment.debug.template.json (iotedgedev: python -> debugger port 5678)
DEBUG_CREATE_OPTIONS: dict[str, Any] = {"ExposedPorts": {"5678/tcp": {}},
                                        "HostConfig": {"PortBindings": {"5678/tcp": [{"HostPort": "5678"}]}}}


def _env() -> Any:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(loader=jinja2.FileSystemLoader(str(builtin_templates_dir())),
                                undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def render_builtin(template_name: str, **context: Any) -> str:
    """Render one of edgegen's own scaffolding templates (``templates/<template_name>``, sandboxed Jinja2,
    undefined names are errors) to text; other areas scaffolding files (``edgegen add --entry-script``) use it."""
    import jinja2

    try:
        return str(_env().get_template(template_name).render(**context))
    except jinja2.TemplateNotFound:
        raise ScaffoldError(f"template {template_name} not found in {builtin_templates_dir()}",
                            hint="edgegen's templates/ folder is missing; set EDGEGEN_TEMPLATES to it") from None


def check_module_name(name: str) -> None:
    """iotedgedev's rules and messages for module names, and IoT Hub's for module ids (at most 128 characters)."""
    if len(name) > ids.MAX_ID_LENGTH:
        raise ScaffoldError(f"Module name is {len(name)} characters long; IoT Hub allows at most {ids.MAX_ID_LENGTH}",
                            hint="choose a shorter name, e.g. my_module")
    if name.startswith("_") or name.endswith("_"):
        raise ScaffoldError("Module name cannot start or end with the symbol _")
    if not _NAME.fullmatch(name):
        raise ScaffoldError("Module name can only contain alphanumeric characters and the symbol _",
                            hint="use letters, digits and _ only, e.g. my_module")


def solution_template_text(module: str | None = "filtermodule") -> str:
    """The new solution's deployment template (iotedgedev's template with ``%MODULE%`` = ``module``)."""
    return render_builtin("solution/deployment.template.json.j2", module=module)


def _schema_versions(runtime: str) -> tuple[str, str]:
    if runtime in ("1.0", "1.1"):
        return runtime, runtime
    return "1.1", "1.2"


@dataclass
class AddResult:
    module_dir: Path
    files: list[Path] = field(default_factory=list)
    templates: list[Path] = field(default_factory=list)  # deployment templates that got the module
    routes: list[str] = field(default_factory=list)  # routes added to feed its inputs
    unfed: list[str] = field(default_factory=list)  # inputs its code reads that no module of the template feeds


def module_files(name: str, template: str) -> dict[str, str]:
    """File name -> content of a new module folder."""
    if template not in MODULE_TEMPLATES:
        raise ScaffoldError(f"unknown module template {template!r}",
                            hint=f"choose one of {', '.join(MODULE_TEMPLATES)}")
    module_json = render_builtin("modules/common/module.json.j2", name=name, description=_DESCRIPTIONS[template])
    if template == "inference":  # the host of modules/inference (amlhost) and a sample entry script
        from edgegen.generator.inferencehost import host_files

        return {"module.json": module_json, **host_files(name, "score.py", [], onnx=False),
                "score.py": render_builtin("modules/inference/score.py.j2", name=name)}
    files = {
        "module.json": module_json,
        "requirements.txt": render_builtin("modules/common/requirements.txt.j2", extra_requirements=[]),
        "main.py": render_builtin(f"modules/{template}/main.py.j2", name=name),
    }
    for platform, base in _BASE_IMAGES.items():
        files[f"Dockerfile.{platform}"] = render_builtin("modules/common/Dockerfile.j2", base_image=base, debug=False)
    files["Dockerfile.amd64.debug"] = render_builtin("modules/common/Dockerfile.j2", base_image=_BASE_IMAGES["amd64"],
                                              debug=True)
    return files


def write_module_folder(target: Path, files: dict[str, str]) -> None:
    """Create ``target`` with ``files`` (relative POSIX names -> text) at once: staged beside it, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for fname, text in files.items():
            path = staging / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            folder.chmod(0o777 & ~umask)  # mkdtemp made the top 0700
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def add_module(solution_dir: Path | str, name: str, template: str = "python", *,
               environ: dict[str, str] | None = None) -> AddResult:
    """Create ``<MODULES_PATH>/<name>/`` and add the module to the deployment (and debug) template."""
    sol = Path(solution_dir)
    env = load_env(sol, environ)
    main_template = sol / env.template_file
    debug_template = sol / env.debug_template_file
    load_for_edit(main_template)  # refuse before creating anything (missing, Jinja2, invalid)
    has_debug = debug_template.is_file()
    if has_debug:
        load_for_edit(debug_template)
    modules_dir = sol / env.modules_path
    check_module_name(name)
    target = modules_dir / name
    if target.exists():
        raise ScaffoldError(f'Module "{name}" already exists under {modules_dir.resolve()}',
                            location=Location(file=str(target)))
    files = module_files(name, template)
    write_module_folder(target, files)
    result = AddResult(target, [target / f for f in files])
    feeds = _input_routes(main_template, modules_dir, name, template)
    result.routes = list(feeds)
    result.unfed = [i for i in _FEEDS.get(template, {}) if not any(r.endswith(f"/inputs/{i}\")") for r in
                                                                   feeds.values())]
    add_module_to_template(main_template, name, input_routes=feeds)
    result.templates.append(main_template)
    if has_debug:
        add_module_to_template(debug_template, name, DEBUG_CREATE_OPTIONS, is_debug=True, input_routes=feeds)
        result.templates.append(debug_template)
    return result


def _template_of(module: dict[str, Any], modules_dir: Path) -> str | None:
    """Which edgegen module template a module of the deployment template was made from, if any."""
    image = (module.get("settings") or {}).get("image") if isinstance(module, dict) else None
    if not isinstance(image, str):
        return None
    if image.startswith(_SIMULATED_SENSOR):
        return "sensor"
    m = re.fullmatch(r"\$\{MODULES\.([^.}]+)(?:\.[^}]*)?\}", image)
    if m is None:
        return None
    try:
        description = json.loads((modules_dir / m.group(1) / "module.json").read_text()).get("description")
    except (OSError, ValueError, AttributeError):
        return None
    return next((k for k, d in _DESCRIPTIONS.items() if d == description), None)


def _input_routes(template_file: Path, modules_dir: Path, name: str, template: str) -> dict[str, str]:
    """Routes from modules already in the template to the inputs the new module's code reads."""
    feeds = _FEEDS.get(template)
    if not feeds:
        return {}
    data, _, _ = load_for_edit(template_file)
    content = data.get("modulesContent") if isinstance(data, dict) else None
    agent = (content or {}).get("$edgeAgent", {}).get("properties.desired", {}) if isinstance(content, dict) else {}
    modules = agent.get("modules") if isinstance(agent, dict) else None
    kinds = {m: _template_of(v, modules_dir) for m, v in sorted((modules or {}).items())}
    routes = {}
    for input_name, (kind, output) in feeds.items():
        source = next((m for m, k in kinds.items() if k == kind and m != name), None)
        if source is not None:
            routes[f"{source}To{name}" + ("" if len(feeds) == 1 else f"_{input_name}")] = (
                f'FROM /messages/modules/{source}/outputs/{output} INTO BrokeredEndpoint("/modules/{name}/inputs/'
                f'{input_name}")')
    return routes


def new_solution(path: Path | str, *, module: str | None = "filtermodule", template: str = "python",
                 runtime_version: str = "1.4") -> Path:
    """Create a solution folder (must be absent or empty); with ``module``, add it with ``template``."""
    target = Path(path)
    if runtime_version not in RUNTIME_VERSIONS:
        raise ScaffoldError(f"edge runtime version {runtime_version!r} is not valid",
                            hint=f"choose one of {', '.join(RUNTIME_VERSIONS)}")
    if module is not None:
        check_module_name(module)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError("Directory is not empty. Choose another name or clean the directory.",
                            location=Location(file=str(target)))
    agent, hub = _schema_versions(runtime_version)
    files = {
        "deployment.template.json": solution_template_text(module),
        "deployment.debug.template.json": solution_template_text(module),
        ".env": render_builtin("solution/env.j2", name=target.resolve().name, runtime_version=runtime_version,
                        agent_schema=agent, hub_schema=hub),
        ".gitignore": render_builtin("solution/gitignore.j2"),
    }
    target.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        if fname == ".env":  # where the registry passwords and connection strings go: 0600 before they do
            write_private(target / fname, text, private_parent=False)
        else:
            write_text_atomic(target / fname, text)
    (target / "modules").mkdir(exist_ok=True)
    if module is not None:
        add_module(target, module, template, environ={})
    return target
