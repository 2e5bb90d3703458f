"""Models in images: staged into the build context from the registry, then checked in the built image.

``stage_models`` lays the pinned models (``EDGEGEN_MODELS``) out as ``<context>/azureml-models/…`` (Azure ML's
layout, see ``edgegen.models.layout``); the module's Dockerfile copies that folder to ``$AML_APP_ROOT``.
``verify_image_models`` reads ``$AML_APP_ROOT/azureml-models`` back out of the built image (a created, never
started container) and compares every model's digest with the pin: an image whose model bytes differ from the
registry's is refused (the tag is removed and the build fails).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from edgegen.errors import Location
from edgegen.images.build import BuildEvent, BuildResult, build_image
from edgegen.images.engine import Engine
from edgegen.images.errors import ImageError
from edgegen.images.plan import Target
from edgegen.images.registries import Masker
from edgegen.models.layout import lay_out, pins_from_env
from edgegen.models.modelpath import MODELS_DIR_NAME, tree_digest
from edgegen.models.registry import Registry, SolutionModels

__all__ = ["build_with_models", "stage_models", "unstage_models", "verify_image_models"]

_COPIES_ALL = re.compile(r"^\s*(COPY|ADD)\s+(--\S+\s+)*\.\s+\S+\s*$", re.M | re.I)


def stage_models(registry: Registry, models: str, context: Path, dockerfile: Path) -> Path | None:
    """Lay the models out in the build context; None when the module pins none."""
    pins = pins_from_env(models, str(dockerfile)) if models else []
    if not pins:
        return None
    text = dockerfile.read_text(encoding="utf-8", errors="replace") if dockerfile.is_file() else ""
    if MODELS_DIR_NAME not in text and not _COPIES_ALL.search(text):
        raise ImageError(f"{dockerfile} does not copy {MODELS_DIR_NAME}/: the models the module pins would not be "
                         "in the image", location=Location(file=str(dockerfile)),
                         hint=f"add `COPY {MODELS_DIR_NAME}/ /var/azureml-app/{MODELS_DIR_NAME}/` and "
                              "`ENV AML_APP_ROOT=/var/azureml-app`")
    lay_out(registry, pins, context)
    return context / MODELS_DIR_NAME


def unstage_models(staged: Path | None) -> None:
    if staged is not None:
        shutil.rmtree(staged, ignore_errors=True)


def _app_root(engine: Engine, tag: str) -> str:
    attrs = engine.image(tag) or {}
    for item in (attrs.get("Config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        if key == "AML_APP_ROOT" and value:
            return value
    workdir = (attrs.get("Config") or {}).get("WorkingDir") or "/"
    return str(workdir)


def verify_image_models(engine: Engine, tag: str, models: str) -> list[str]:
    """Check each pinned model's bytes inside the image; returns one line per model verified."""
    pins = pins_from_env(models) if models else []
    if not pins:
        return []
    root = _app_root(engine, tag).rstrip("/") + "/" + MODELS_DIR_NAME
    files: dict[str, str] = {}
    for path, content in engine.read_tree(tag, root):
        files[path] = hashlib.sha256(content).hexdigest()
    verified = []
    problems = []
    for pin in pins:
        prefix = f"{pin.name}/{pin.version}/"
        entries: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for path, digest in files.items():
            if path.startswith(prefix):
                entry, _, rest = path[len(prefix):].partition("/")
                entries[entry].append((rest, digest))
        if len(entries) != 1:
            problems.append(f"{pin.name}:{pin.version}: {root}/{prefix} holds {len(entries)} entries")
            continue
        ((entry, content),) = entries.items()
        actual = content[0][1] if content == [("", content[0][1])] else tree_digest(content)
        if actual != pin.sha256:
            problems.append(f"{pin.name}:{pin.version}: sha256 in the image {actual} differs from the registry's "
                            f"{pin.sha256}")
        else:
            verified.append(f"{pin.name}:{pin.version} ({entry}) sha256 {pin.sha256[:12]}… verified in the image")
    if problems:
        engine.remove_image(tag)
        raise ImageError(f"image {tag} was refused: " + "; ".join(problems),
                         hint="the image does not hold the registered model bytes; the tag was removed. Check the "
                              f"Dockerfile's COPY of {MODELS_DIR_NAME}/ and AML_APP_ROOT, then build again")
    return verified


def build_with_models(engine: Engine, target: Target, container_tag: str, models: SolutionModels, *,
                      on_event: Callable[[BuildEvent], None] | None = None, masker: Masker | None = None,
                      wheels: bool = True) -> tuple[BuildResult, list[str]]:
    """``build_image`` for one target of a plan with the models its modules pin: staged into the build context
    from ``models``' registry before, removed after, then checked in the built image (``edgegen build``, ``push``
    and ``up --engine docker`` all build this way). Returns the build and one line per model verified."""
    staged = stage_models(models.registry, target.models, target.spec.context,
                          target.spec.dockerfile(target.platform)) if target.models else None
    try:
        built = build_image(engine, target.spec, target.platform, container_tag, on_event=on_event, masker=masker,
                            wheels=wheels)
    finally:
        unstage_models(staged)
    return built, verify_image_models(engine, target.tag, target.models)
