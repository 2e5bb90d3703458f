"""Load an Azure ML entry script the way azmlinfsrv 1.5.1 does, and call its ``run()`` the way it expects.

The contract (azmlinfsrv ``server/user_script.py``): the script defines ``init()`` and ``run(...)``; ``init()`` runs
once; ``run()`` must not take ``*args``, ``**kwargs`` or positional-only parameters, and may take a
``request_headers`` parameter (a dict of the request's headers). Which arguments it gets depends on how it is
declared:

- ``@rawhttp`` (from ``aml_request``): the first parameter gets the request object (``AMLRequest``);
- ``@input_schema`` (inference_schema): each parameter by name, from the keys of the JSON body (or the query string
  on GET), converted by the decorators to the declared Standard/Numpy/Pandas types;
- neither: the first parameter gets the body as text (on GET: the query parameters as a JSON object string).

The script is imported under the module name ``entry_module`` (as azmlinfsrv does) and registered in
``sys.modules`` under that name, so pickling and dataclasses defined in it work. Before the import:
``AZUREML_ENTRY_SCRIPT`` is the script's real path, ``AML_APP_ROOT`` defaults to the working directory and joins
``sys.path`` (as under azmlinfsrv), ``AZUREML_MODEL_DIR`` is set only when a model folder is given (otherwise a
script reading it sees what the environment has, possibly nothing, as under azmlinfsrv). The script's own folder is
put first on ``sys.path`` too, so its sibling modules import wherever it is started from.
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from . import shims

__all__ = ["EntryScript", "InputKind", "ScriptError", "load_entry_script", "prepare_environment"]

MODULE_NAME = "entry_module"


class ScriptError(Exception):
    """The entry script cannot be hosted: missing, no ``init``/``run``, or a ``run()`` the host cannot call."""


class InputKind(enum.Enum):
    PLAIN = "plain"
    SCHEMA = "inference_schema"
    RAW = "rawhttp"


@dataclass
class EntryScript:
    path: Path
    module: ModuleType
    init: Callable[[], Any]
    run: Callable[..., Any]  # the user's run(), behind a driver module when there is one
    kind: InputKind
    parameters: tuple[str, ...]  # PLAIN/RAW: the one input parameter; SCHEMA: every parameter but request_headers
    defaults: dict[str, Any] = field(default_factory=dict)  # SCHEMA parameters that have a default
    wants_headers: bool = False

    def call(self, arguments: dict[str, Any], headers: Callable[[], Mapping[str, str]]) -> Any:
        """Call ``run()``; ``headers`` is only evaluated when ``run()`` declares ``request_headers``."""
        if self.wants_headers:
            return self.run(**arguments, request_headers=dict(headers()))
        return self.run(**arguments)

    def model_version(self) -> str | None:
        version = os.environ.get("MODEL_VERSION") or getattr(self.module, "MODEL_VERSION", None)
        return str(version) if version is not None else None


def prepare_environment(script: Path, model_dir: Path | None = None, app_root: Path | None = None) -> None:
    """Export what azmlinfsrv exports before it imports the script (see the module docstring)."""
    os.environ["AZUREML_ENTRY_SCRIPT"] = os.path.realpath(script)
    if app_root is not None:
        os.environ["AML_APP_ROOT"] = str(app_root)
    else:
        os.environ.setdefault("AML_APP_ROOT", os.getcwd())
    if model_dir is not None:
        os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    root = os.environ["AML_APP_ROOT"]
    if root not in sys.path:
        sys.path.append(root)
    folder = str(Path(script).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def load_entry_script(path: Path, model_dir: Path | None = None, *, app_root: Path | None = None) -> EntryScript:
    """Prepare the environment, import the script and work out how to call ``run()``. Does not call ``init()``.

    Raises ``ScriptError`` for a script that breaks the contract; anything the import itself raises propagates.
    """
    if not path.is_file():
        raise ScriptError(f"entry script {path} does not exist")
    prepare_environment(path, model_dir, app_root)
    shims.install()
    _set_rawhttp_flag(False)
    _forget_schemas()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"cannot import entry script {path} (is it a Python file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    for name in ("init", "run"):
        if not callable(getattr(module, name, None)):
            raise ScriptError(f"entry script {path} does not have a {name}() function defined")
    run = module.run
    driver = getattr(module, "driver_module", None)  # Azure ML's generated proxy scripts: call the real run()
    if isinstance(driver, ModuleType) and callable(getattr(driver, "run", None)):
        run = driver.run
    return _analyse(path, module, run, _rawhttp_requested())


def _forget_schemas() -> None:
    """inference_schema keeps the decorators' schemas in module-wide dicts keyed ``<module>.<function>``: a script
    loaded again under ``entry_module`` (a second host in one process, a reload) must not inherit the last one's."""
    util = sys.modules.get("inference_schema.schema_util")
    for registry in (getattr(util, "__functions_schema__", None), getattr(util, "__versions__", None)):
        if isinstance(registry, dict):
            for key in [k for k in registry if k.startswith(f"{MODULE_NAME}.")]:
                del registry[key]


def _aml_request_module() -> ModuleType | None:
    return sys.modules.get(f"{__package__}.aml_request")  # imported only when a script imports it


def _set_rawhttp_flag(value: bool) -> None:
    module = _aml_request_module()
    if module is not None:
        module._rawHttpRequested = value


def _rawhttp_requested() -> bool:
    module = _aml_request_module()
    return bool(module is not None and module._rawHttpRequested)


def _is_schema_decorated(run: Callable[..., Any]) -> bool:
    schema_util = sys.modules.get("inference_schema.schema_util")  # imported by the script if it uses the decorators
    return bool(schema_util is not None and schema_util.is_schema_decorated(run))


def _analyse(path: Path, module: ModuleType, run: Callable[..., Any], raw: bool) -> EntryScript:
    try:
        params = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ScriptError(f"{path}: cannot read the signature of run(): {exc}") from None
    allowed = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind not in allowed for p in params):
        raise ScriptError(f"{path}: run() cannot accept positional-only arguments, *args, or **kwargs")
    wants_headers = any(p.name == "request_headers" for p in params)
    params = [p for p in params if p.name != "request_headers"]
    if not params:
        raise ScriptError(f"{path}: run() needs to accept an argument "
                          + ('other than "request_headers"' if wants_headers else "for input data"))
    schema = _is_schema_decorated(run)
    if raw and schema:
        raise ScriptError(f"{path}: run() cannot be decorated with both @rawhttp and @input_schema")
    if raw:
        kind, names = InputKind.RAW, (params[0].name,)
    elif schema:
        kind, names = InputKind.SCHEMA, tuple(p.name for p in params)
    else:
        kind, names = InputKind.PLAIN, (params[0].name,)
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return EntryScript(path, module, module.init, run, kind, names, defaults, wants_headers)
