"""Package what a data scientist already has into an inference module: ``edgegen add NAME --entry-script FILE
--model NAME[:VERSION] [--requirements FILE | --conda-file FILE]``.

The module folder gets the entry script (or, for an ONNX model and no script, the generic ``score_onnx.py``) and
the inference host of edgegen's ``modules/inference``, copied (``edgegen.generator.inferencehost``): ``main.py``
and the scoring core ``amlhost`` — azmlinfsrv's contract over module messages, HTTP ``/score`` and the ``score``
direct method, the models verified at start and reported in the twin — ``modelpath.py`` (Azure ML's
``Model.get_model_path`` for the deployed layout), the host's pinned requirements plus the script's, Dockerfiles
that copy the models ``edgegen build`` stages, and ``"models"`` in module.json, which genconfig turns into the
module's ``EDGEGEN_MODELS`` (pinned with digests). A script not named ``score.py`` is named by ``ENTRY_SCRIPT`` in
the module's ``env`` in the deployment template (and in the Dockerfiles). A conda environment file becomes pip
requirements where a package has a pip twin; what cannot be converted is named in one error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_yaml
from edgegen.generator.errors import Location, ScaffoldError
from edgegen.generator.inferencehost import HOST_FILES, host_files
from edgegen.generator.scaffold import (
    AddResult,
    add_module_to_template,
    check_module_name,
    render_builtin,
    write_module_folder,
)
from edgegen.generator.solution import load_env
from edgegen.generator.templatedit import load_for_edit
from edgegen.models.errors import ModelError
from edgegen.models.refs import parse_ref
from edgegen.models.registry import Registry

__all__ = ["CondaConversion", "add_inference_module", "conda_to_requirements"]

GENERIC_ONNX_SCRIPT = "score_onnx.py"
# conda packages with a different pip name
_PIP_NAMES = {"pytorch": "torch", "py-xgboost": "xgboost", "msgpack-python": "msgpack", "pytables": "tables",
              "pyqt": "PyQt5", "matplotlib-base": "matplotlib", "tensorflow-base": "tensorflow"}
# conda packages that are not Python distributions (the base image or pip provides what they do, or nothing can)
_NOT_PIP = re.compile(r"^(_.*|python|pip|setuptools|wheel|cudatoolkit|cudnn|cuda-.*|mkl.*|intel-openmp|blas|libblas|"
                      r"openblas|libopenblas|openssl|ca-certificates|libgcc.*|libstdcxx.*|libffi|tk|xz|zlib|ncurses|readline|"
                      r"sqlite|bzip2|ld_impl_.*|nodejs|r-.*|gcc.*|gxx.*|make|cmake)$")
_SKIP_PIP = {"azureml-defaults", "azureml-inference-server-http", "inference-schema"}  # the module is the host
_CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<op>==|>=|<=|=|>|<|!=)?\s*(?P<ver>[^=\s]+)?(?:=\S+)?$")


@dataclass
class CondaConversion:
    requirements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def conda_to_requirements(text: str, file: str) -> CondaConversion:
    """pip requirements from a conda environment file (``dependencies``, with its ``pip:`` list)."""
    try:
        data = loads_yaml(text, file=file, what="the conda file")
    except InputError as exc:
        raise exc.as_error(ModelError) from None
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise ModelError("a conda environment file needs a 'dependencies' list", location=Location(file=file),
                         hint="see https://docs.conda.io: name, channels, dependencies")
    out = CondaConversion()
    refused: list[str] = []
    for i, dep in enumerate(deps):
        if isinstance(dep, dict) and "pip" in dep:
            for req in dep["pip"] or []:
                name = re.split(r"[<>=!~\[; ]", str(req).strip(), maxsplit=1)[0].lower()
                if name in _SKIP_PIP:
                    out.notes.append(f"dropped {req}: the module hosts the entry script itself")
                else:
                    out.requirements.append(str(req).strip())
            continue
        if not isinstance(dep, str):
            raise ModelError(f"dependency {i + 1} is neither a package spec nor a 'pip:' list",
                             location=Location(file=file, json_path=f"dependencies[{i}]"))
        spec = dep.split("::", 1)[-1].strip()  # drop a channel prefix (conda-forge::numpy)
        m = _CONDA_SPEC.match(spec)
        if m is None:
            refused.append(f"{dep!r} (not a spec this converter reads)")
            continue
        name, op, ver = m.group("name"), m.group("op"), m.group("ver")
        if name.lower() == "python":
            out.notes.append(f"{dep}: the module image's Python is 3.11 (python:3.11-slim-bookworm)")
            continue
        if name.lower() in ("pip", "setuptools", "wheel"):
            continue
        if _NOT_PIP.match(name.lower()):
            refused.append(f"{dep!r} (a conda package with no pip distribution)")
            continue
        pip_name = _PIP_NAMES.get(name.lower(), name)
        if op == "=" and ver and not ver.endswith("*") and ver.count(".") < 2:
            requirement = f"{pip_name}=={ver}.*"  # conda's numpy=1.26 is any 1.26.x
        elif op in (None, "=") and ver:
            requirement = f"{pip_name}=={ver}"
        elif op and ver:
            requirement = f"{pip_name}{op}{ver}"
        else:
            requirement = pip_name
            out.notes.append(f"{name} is not pinned in the conda file; pin it in requirements.txt for repeatable "
                             "images")
        out.requirements.append(requirement)
    if refused:
        raise ModelError(f"cannot convert {len(refused)} conda dependenc{'y' if len(refused) == 1 else 'ies'} to pip: "
                         f"{'; '.join(refused)}", location=Location(file=file, json_path="dependencies"),
                         hint="drop them (the module image is Debian + pip), or pass --requirements with the pip "
                              "packages you need")
    return out


def _read_requirements(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"cannot read requirements: {exc.strerror or exc}",
                         location=Location(file=str(path))) from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def add_inference_module(solution_dir: Path | str, name: str, *, registry: Registry, models: list[str],
                         entry_script: Path | None = None, requirements: Path | None = None,
                         conda_file: Path | None = None,
                         environ: Mapping[str, str] | None = None) -> tuple[AddResult, list[str]]:
    """Create ``<MODULES_PATH>/<name>/`` and add it to the deployment template; returns it and conversion notes."""
    sol = Path(solution_dir)
    check_module_name(name)
    if requirements is not None and conda_file is not None:
        raise ModelError("give --requirements or --conda-file, not both")
    if not models:
        raise ModelError("an inference module needs at least one --model NAME[:VERSION]")
    registered = [registry.get(parse_ref(m)) for m in models]  # refuse before writing anything
    onnx = [m for m in registered if m.framework == "onnx"]
    if entry_script is None and not (len(registered) == 1 and onnx):
        raise ModelError("without --entry-script, edgegen scaffolds the generic ONNX script, which serves one "
                         "ONNX model", hint="pass --entry-script score.py, or one --model whose framework is onnx")
    script_name = entry_script.name if entry_script is not None else GENERIC_ONNX_SCRIPT
    if entry_script is not None and not entry_script.is_file():
        raise ModelError(f"entry script {entry_script} does not exist", location=Location(file=str(entry_script)))
    if script_name in HOST_FILES or not script_name.endswith(".py"):
        raise ModelError(f"the entry script cannot be called {script_name}: the module's host has "
                         f"{', '.join(HOST_FILES)}, and the script must be a .py file",
                         location=Location(file=str(entry_script)), hint="rename the script (score.py is usual)")
    extra: list[str] = []
    notes: list[str] = []
    if requirements is not None:
        extra = _read_requirements(requirements)
    elif conda_file is not None:
        try:
            text = conda_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"cannot read the conda file: {exc.strerror or exc}",
                             location=Location(file=str(conda_file))) from None
        converted = conda_to_requirements(text, str(conda_file))
        extra, notes = converted.requirements, converted.notes
    env = load_env(sol, environ)
    main_template = sol / env.template_file
    load_for_edit(main_template)
    target = sol / env.modules_path / name
    if target.exists():
        raise ScaffoldError(f'Module "{name}" already exists under {target.parent.resolve()}',
                            location=Location(file=str(target)))
    # pinned to what is registered now; the generic ONNX script needs the host's onnxruntime pins
    files = _files(name, script_name, extra, [m.id for m in registered], onnx=entry_script is None)
    if entry_script is not None:
        files[script_name] = entry_script.read_text(encoding="utf-8")
    else:
        files[script_name] = render_builtin("modules/inference-model/score_onnx.py.j2")
    write_module_folder(target, files)
    result = AddResult(target, [target / f for f in files])
    # main.py runs ENTRY_SCRIPT (default score.py): the deployment says which script, in process mode and containers
    add_module_to_template(main_template, name,
                           env={"ENTRY_SCRIPT": script_name} if script_name != "score.py" else None)
    result.templates.append(main_template)
    return result, notes


def _files(name: str, script_name: str, extra: list[str], models: list[str], *, onnx: bool) -> dict[str, Any]:
    import json

    spec = json.loads(render_builtin("modules/common/module.json.j2", name=name, description=""))
    spec["description"] = f"hosts {script_name} with models {', '.join(models)}"
    spec["models"] = models
    return {"module.json": json.dumps(spec, indent=4) + "\n", **host_files(name, script_name, extra, onnx=onnx)}
