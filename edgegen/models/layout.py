"""Lay pinned models out as Azure ML deploys them, from the registry's verified bytes.

``lay_out(registry, pins, app_root)`` writes ``<app_root>/azureml-models/<name>/<version>/<entry>`` for each
pinned model and returns the variables a module needs: ``AML_APP_ROOT``, ``AZUREML_MODEL_DIR`` (the model's own
folder for one model, the ``azureml-models`` folder for several) and ``EDGEGEN_MODELS``. The same call stages a
module's build context (``edgegen build``) and prepares a process-mode module on the local device, so the
image and the device see the same tree. A pin whose digest differs from the registry's is refused
(``ModelError``), and so is a blob whose bytes no longer match their hash.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from edgegen.models.errors import Location, ModelError
from edgegen.models.modelpath import MODELS_DIR_NAME, PinnedModel, entry_digest, model_dir, parse_models
from edgegen.models.refs import ModelRef
from edgegen.models.registry import Registry

__all__ = ["ENV_VAR", "lay_out", "models_of", "pins_from_env"]

ENV_VAR = "EDGEGEN_MODELS"


def pins_from_env(value: str, source: str | None = None) -> list[PinnedModel]:
    try:
        return parse_models(value)
    except ValueError as exc:
        raise ModelError(str(exc), location=Location(file=source, json_path=f"env.{ENV_VAR}"),
                         hint="render the deployment with edgegen genconfig: ${MODELS.<name>} placeholders "
                              "become name:version@sha256:<hex>") from None


def models_of(env: Mapping[str, str]) -> list[PinnedModel]:
    """The pinned models of a module's environment (``EDGEGEN_MODELS``), [] when it serves none."""
    value = env.get(ENV_VAR, "").strip()
    return pins_from_env(value) if value else []


def lay_out(registry: Registry, pins: list[PinnedModel], app_root: Path) -> dict[str, str]:
    """Write the layout under ``app_root`` (reusing what is already there and verified); returns the env."""
    root = app_root / MODELS_DIR_NAME
    wanted = {(p.name, str(p.version)) for p in pins}
    if root.is_dir():  # a module's earlier models: drop what this deployment no longer pins
        for name_dir in root.iterdir():
            for version_dir in (name_dir.iterdir() if name_dir.is_dir() else []):
                if (name_dir.name, version_dir.name) not in wanted:
                    shutil.rmtree(version_dir, ignore_errors=True)
            if name_dir.is_dir() and not any(name_dir.iterdir()):
                name_dir.rmdir()
    for pin in pins:
        model = registry.get(ModelRef(pin.name, pin.version, pin.sha256))
        folder = root / pin.name / str(pin.version)
        existing = folder / model.entry
        if existing.exists() and _entries(folder) == [model.entry]:
            try:
                if entry_digest(existing) == pin.sha256:
                    continue
            except (OSError, ValueError):
                pass
        if folder.exists():
            shutil.rmtree(folder)
        registry.write_entry(model, folder)
        actual = entry_digest(folder / model.entry)
        if actual != pin.sha256:  # the registry verified each blob; this guards the tree as laid out
            raise ModelError(f"{model.id}: laid out with sha256 {actual}, pinned {pin.sha256}",
                             location=Location(file=str(folder)))
    return {"AML_APP_ROOT": str(app_root), "AZUREML_MODEL_DIR": model_dir(str(root), pins),
            ENV_VAR: ",".join(str(p) for p in pins)}


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except OSError:
        return []
