"""Deployed models, found the way Azure ML's ``Model.get_model_path`` finds them, and checked by hash.

Standalone on purpose (standard library only, no edgegen imports): ``edgegen add inference`` copies this file
into a module folder so entry scripts can ``from modelpath import Model`` and call
``Model.get_model_path("name")`` unchanged, and the inference module uses it to verify what it serves.

Layout (Azure ML's, ``azureml.core.model.MODELS_DIR``)::

    <AML_APP_ROOT>/azureml-models/<name>/<version>/<entry>

``<entry>`` is the registered file or folder, the only thing in ``<version>/``. ``AZUREML_MODEL_DIR`` is
``<root>/<name>/<version>`` when one model is deployed and ``<root>`` itself when several are.

``EDGEGEN_MODELS`` (a deployment's module env) pins what a module serves: ``name:version@sha256:<hex>``, several
separated by commas. A model's digest is its file's SHA-256, or for a folder the SHA-256 of the lines
``<path>\\0<file sha256>\\n`` of its files (POSIX paths relative to the folder, sorted), so the same bytes give
the same digest wherever they are laid out.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MODELS_DIR_NAME", "Model", "ModelMismatch", "PinnedModel", "entry_digest", "file_digest", "format_models",
    "get_model_path", "model_dir", "models_root", "parse_models", "prepare", "tree_digest", "verify",
]

MODELS_DIR_NAME = "azureml-models"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_PINNED = re.compile(r"^(?P<name>[^:@\s]+):(?P<version>[0-9]+)@sha256:(?P<digest>[0-9a-f]{64})$")
_CHUNK = 1 << 20


class ModelMismatch(RuntimeError):
    """A deployed model is missing or its bytes differ from the digest the deployment pinned."""


@dataclass(frozen=True)
class PinnedModel:
    name: str
    version: int
    sha256: str

    def __str__(self) -> str:
        return f"{self.name}:{self.version}@sha256:{self.sha256}"


def file_digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(files: Iterable[tuple[str, str]]) -> str:
    """Digest of a folder from its (relative POSIX path, file sha256) pairs."""
    h = hashlib.sha256()
    for path, digest in sorted(files, key=lambda f: f[0].encode("utf-8")):
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()


def folder_files(folder: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(relative POSIX path, sha256) of every regular file under ``folder``; symlinks and specials refused."""
    out: list[tuple[str, str]] = []
    base = os.fspath(folder)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                raise ValueError(f"{full} is a symbolic link; a model holds regular files and folders only")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if not os.path.isfile(full):
                raise ValueError(f"{full} is not a regular file")
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            out.append((rel, file_digest(full)))
    return out


def entry_digest(path: str | os.PathLike[str]) -> str:
    """The digest of a model file or folder (see the module doc)."""
    if os.path.islink(path):
        raise ValueError(f"{os.fspath(path)} is a symbolic link; a model holds regular files and folders only")
    if os.path.isdir(path):
        return tree_digest(folder_files(path))
    return file_digest(path)


def parse_models(value: str) -> list[PinnedModel]:
    """``EDGEGEN_MODELS`` → pinned models; ValueError naming the entry that is not ``name:version@sha256:hex``."""
    out: list[PinnedModel] = []
    seen: set[str] = set()
    for i, raw in enumerate(value.split(",")):
        item = raw.strip()
        if not item:
            continue
        m = _PINNED.match(item)
        if m is None or not NAME.match(m.group("name")):
            raise ValueError(f"EDGEGEN_MODELS entry {i + 1} {item!r} is not name:version@sha256:<64 hex digits>")
        if m.group("name") in seen:
            raise ValueError(f"EDGEGEN_MODELS names model {m.group('name')!r} twice")
        seen.add(m.group("name"))
        out.append(PinnedModel(m.group("name"), int(m.group("version")), m.group("digest")))
    return out


def format_models(models: Iterable[PinnedModel]) -> str:
    return ",".join(str(m) for m in models)


def models_root(environ: Mapping[str, str] | None = None) -> str:
    """``$AML_APP_ROOT/azureml-models`` (relative to the working directory when AML_APP_ROOT is unset)."""
    env = os.environ if environ is None else environ
    return os.path.join(env.get("AML_APP_ROOT", ""), MODELS_DIR_NAME)


def model_dir(root: str, models: list[PinnedModel]) -> str:
    """``AZUREML_MODEL_DIR`` for ``models`` laid out under ``root``."""
    if len(models) == 1:
        return os.path.join(root, models[0].name, str(models[0].version))
    return root


def _latest(versions: Iterable[str]) -> int | None:
    numbers = [int(v) for v in versions if v.isdigit()]
    return max(numbers) if numbers else None


def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
    """Path of the model's file or folder, like ``azureml.core.Model.get_model_path`` inside a deployment.

    Looks in ``<root>/<name>/<version or latest>/`` (exactly one entry there), then falls back to ``./<name>``
    as Azure ML does. ``_workspace`` is accepted for signature compatibility and must be None (no Azure here).
    """
    if _workspace is not None:
        raise ValueError("no workspace here: models come from the deployment's layout (AML_APP_ROOT)")
    if version is not None and not isinstance(version, int):
        raise ValueError("version should be an int")
    root = models_root()
    candidate = os.path.join(root, model_name)
    if os.path.isdir(candidate):
        chosen = version if version is not None else _latest(os.listdir(candidate))
        folder = os.path.join(candidate, str(chosen))
        if chosen is not None and os.path.isdir(folder):
            entries = os.listdir(folder)
            if len(entries) != 1:
                raise ValueError(f"Dir {folder} can contain only 1 file or folder. Found {entries}")
            return os.path.join(folder, entries[0])
    if os.path.exists(model_name):
        return model_name
    raise FileNotFoundError(f"Model {model_name} not found in cache at {root} or in current working directory "
                            f"{os.getcwd()}.")


class Model:
    """``from modelpath import Model`` in place of ``from azureml.core.model import Model`` (lookup only)."""

    get_model_path = staticmethod(get_model_path)


def verify(root: str, models: list[PinnedModel]) -> list[dict[str, Any]]:
    """What is laid out under ``root`` for each model, checked against its pinned digest."""
    report = []
    for m in models:
        folder = os.path.join(root, m.name, str(m.version))
        entry: dict[str, Any] = {"name": m.name, "version": m.version, "sha256": m.sha256, "verified": False}
        try:
            entries = os.listdir(folder)
        except OSError:
            entry["error"] = f"{folder} does not exist"
            report.append(entry)
            continue
        if len(entries) != 1:
            entry["error"] = f"{folder} holds {len(entries)} entries; expected the model's one file or folder"
        else:
            try:
                actual = entry_digest(os.path.join(folder, entries[0]))
            except (OSError, ValueError) as exc:
                entry["error"] = str(exc)
            else:
                entry["path"] = entries[0]
                entry["verified"] = actual == m.sha256
                if actual != m.sha256:
                    entry["error"] = f"content sha256 {actual} differs from the pinned {m.sha256}"
        report.append(entry)
    return report


def prepare(environ: MutableMapping[str, str] | None = None) -> list[dict[str, Any]]:
    """At module start: verify the pinned models and set ``AZUREML_MODEL_DIR`` when the deployment did not.

    Returns the per-model report (for the module twin); [] without ``EDGEGEN_MODELS``. Raises ModelMismatch
    when a model is missing or differs, so the module refuses to serve bytes nobody registered.
    """
    env = os.environ if environ is None else environ
    value = env.get("EDGEGEN_MODELS", "").strip()
    if not value:
        return []
    try:
        models = parse_models(value)
    except ValueError as exc:
        raise ModelMismatch(str(exc)) from None
    root = os.path.abspath(models_root(env))
    report = verify(root, models)
    bad = [r for r in report if not r["verified"]]
    if bad:
        raise ModelMismatch("; ".join(f"{r['name']}:{r['version']}: {r.get('error')}" for r in bad))
    env.setdefault("AZUREML_MODEL_DIR", model_dir(root, models))
    return report
