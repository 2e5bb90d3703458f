"""Make the Azure ML request/response modules importable without the Azure ML SDK or azmlinfsrv.

Entry scripts import ``AMLRequest``/``AMLResponse``/``rawhttp`` from either of two places:
``azureml.contrib.services.aml_request`` / ``.aml_response`` (the SDK v1 path, which azmlinfsrv also patches into
``sys.modules``) and ``azureml_inference_server_http.api.aml_request`` / ``.aml_response`` (azmlinfsrv's own). A
meta-path finder placed first answers those four names with this package's modules, even where the real packages are
installed (their classes need Flask). Parent packages (``azureml``, ``azureml.contrib`` …) are provided as empty
packages by a second finder placed last, so an installed ``azureml`` namespace still wins for everything else.
Nothing is imported until a script asks: plain scripts never load Werkzeug.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["ALIASES", "install"]

_PACKAGE = __name__.rpartition(".")[0]
ALIASES = {
    "azureml.contrib.services.aml_request": "aml_request",
    "azureml.contrib.services.aml_response": "aml_response",
    "azureml_inference_server_http.api.aml_request": "aml_request",
    "azureml_inference_server_http.api.aml_response": "aml_response",
}
PARENTS = {name.rpartition(".")[0] for name in ALIASES} | {"azureml", "azureml.contrib"} | {
    "azureml_inference_server_http"}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(f"{_PACKAGE}.{self.target}")
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.own_spec  # already executed under its own name; keep its own spec


class _EmptyPackageLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__path__ = []


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        target_name = ALIASES.get(fullname)
        if target_name is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(target_name))


class _ParentFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PARENTS:
            return None
        return importlib.machinery.ModuleSpec(fullname, _EmptyPackageLoader(), is_package=True)


def install() -> None:
    """Idempotent. Also replaces aliases a real azmlinfsrv import may already have put in ``sys.modules``."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
        sys.meta_path.append(_ParentFinder())
    for name in ALIASES:
        module = sys.modules.get(name)
        if module is not None and not module.__name__.startswith(_PACKAGE + "."):
            del sys.modules[name]
