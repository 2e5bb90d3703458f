"""A model registry with no Azure: versioned names, tags and properties, content-addressed bytes.

On disk (``<solution>/.models`` unless ``MODEL_REGISTRY_PATH`` says otherwise)::

    blobs/sha256/<2 hex>/<64 hex>     each distinct file's bytes, once, read-only (named by their SHA-256)
    models/<name>/<version>.json      one registered version: digest, files, framework, tags, properties, …
    models/<name>/.last               the highest version ever given to the name (never reused after a delete)
    .lock                             held (flock) while registering or deleting

Registering copies each file into its blob (hashing on the way; a file changed while being read is refused),
then writes the version's JSON atomically: a crash leaves at most an unreferenced blob, never a half model.
Every read that hands bytes out (download, layout) re-hashes them, so a corrupted blob is reported, not served.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, read_text
from edgegen.generator.atomic import write_text_atomic
from edgegen.models.errors import Location, ModelError
from edgegen.models.modelpath import PinnedModel, file_digest, tree_digest
from edgegen.models.refs import ModelRef, check_name, parse_ref

__all__ = ["DEFAULT_REGISTRY", "FRAMEWORKS", "ModelFile", "ModelVersion", "Registry", "SolutionModels",
           "normalize_framework"]

DEFAULT_REGISTRY = ".models"
# Azure ML's Model.Framework names (and common spellings) -> the name stored here
FRAMEWORKS = {"scikit-learn": "scikit-learn", "scikitlearn": "scikit-learn", "sklearn": "scikit-learn",
              "onnx": "onnx", "tensorflow": "tensorflow", "pytorch": "pytorch", "keras": "keras",
              "custom": "custom", "multi": "multi"}
_CHUNK = 1 << 20


def normalize_framework(value: str | None) -> str:
    if value is None:
        return "custom"
    key = value.strip().lower().replace("_", "-")
    if key not in FRAMEWORKS:
        raise ModelError(f"unknown framework {value!r}",
                         hint=f"choose one of {', '.join(sorted(set(FRAMEWORKS.values())))}")
    return FRAMEWORKS[key]


@dataclass(frozen=True)
class ModelFile:
    path: str  # POSIX, relative to the model folder (the file's own name for a one-file model)
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    sha256: str  # the model's digest (modelpath.entry_digest)
    entry: str  # name of the registered file or folder (the one entry of <name>/<version>/ when deployed)
    kind: str  # "file" | "folder"
    files: tuple[ModelFile, ...]
    framework: str = "custom"
    framework_version: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    derived_from: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def pinned(self) -> PinnedModel:
        return PinnedModel(self.name, self.version, self.sha256)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "version": self.version, "sha256": self.sha256, "entry": self.entry,
            "kind": self.kind, "size": self.size, "framework": self.framework,
            "frameworkVersion": self.framework_version, "description": self.description, "tags": dict(self.tags),
            "properties": dict(self.properties), "createdTime": self.created, "derivedFrom": self.derived_from,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> ModelVersion:
        try:
            return cls(
                name=str(data["name"]), version=int(data["version"]), sha256=str(data["sha256"]),
                entry=str(data["entry"]), kind=str(data["kind"]),
                files=tuple(ModelFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in data["files"]),
                framework=str(data.get("framework") or "custom"), framework_version=data.get("frameworkVersion"),
                description=data.get("description"), tags=dict(data.get("tags") or {}),
                properties=dict(data.get("properties") or {}), created=str(data.get("createdTime") or ""),
                derived_from=data.get("derivedFrom"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"registry entry is damaged: {exc}", location=Location(file=source),
                             hint="restore it from version control or delete it") from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n", mode=0o644)


class Registry:
    """One registry folder. Thread- and process-safe for register/delete (an exclusive flock)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def for_solution(cls, solution_dir: Path | str, env: Mapping[str, str] | None = None) -> Registry:
        """``MODEL_REGISTRY_PATH`` from ``env`` (the solution's .env + environment), relative to the solution."""
        value = (env or {}).get("MODEL_REGISTRY_PATH", "").strip() or DEFAULT_REGISTRY
        path = Path(value).expanduser()
        return cls(path if path.is_absolute() else Path(solution_dir) / path)

    # -- paths ------------------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest[:2] / digest

    def _meta_path(self, name: str, version: int) -> Path:
        return self.root / "models" / name / f"{version}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- reading ----------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        folder = self.root / "models"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.root / "models" / name
        if not folder.is_dir():
            return []
        found = []
        for p in folder.glob("*.json"):
            if p.stem.isdigit():
                found.append(self._load(p))
        return sorted(found, key=lambda m: m.version)

    def list(self, name: str | None = None, tags: Mapping[str, str | None] | None = None) -> list[ModelVersion]:
        """Every version (of ``name``), filtered by tags (a None value: the key only)."""
        out = []
        for n in [name] if name else self.names():
            for m in self.versions(n):
                if tags and any(k not in m.tags or (v is not None and m.tags[k] != v) for k, v in tags.items()):
                    continue
                out.append(m)
        return out

    def _load(self, path: Path) -> ModelVersion:
        try:
            data = loads_json(read_text(path, what="the registry entry"), file=str(path), what="the registry entry")
        except InputError as exc:
            raise exc.as_error(ModelError) from None
        return ModelVersion.from_dict(data, str(path))

    def get(self, ref: ModelRef | str) -> ModelVersion:
        """One version (the latest when ``ref`` has none); a digest in ``ref`` must match the registry's."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        versions = self.versions(r.name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise ModelError(f"model {r.name!r} is not registered in {self.root}",
                             hint=f"register it with `edgegen model register PATH --name {r.name}` "
                                  f"(registered models: {known})")
        if r.version is None:
            found = versions[-1]
        else:
            match = [m for m in versions if m.version == r.version]
            if not match:
                raise ModelError(f"model {r.name!r} has no version {r.version} in {self.root}",
                                 hint=f"versions: {', '.join(str(m.version) for m in versions)}")
            found = match[0]
        if r.sha256 is not None and r.sha256 != found.sha256:
            raise ModelError(f"{found.id}: the deployment pins sha256 {r.sha256}, the registry has {found.sha256}",
                             hint="the model's bytes are not the ones this deployment was made for: render the "
                                  "deployment again (edgegen genconfig) or register the intended bytes")
        return found

    def pin(self, name: str, version: int | None = None) -> str:
        """``name:version@sha256:<hex>`` of a registered model (the generator's ``ModelSource``)."""
        return str(self.get(ModelRef(name, version)).pinned())

    # -- registering ------------------------------------------------------------------------------------------
    def register(self, path: Path | str, name: str, *, tags: Mapping[str, str] | None = None,
                 properties: Mapping[str, str] | None = None, description: str | None = None,
                 framework: str | None = None, framework_version: str | None = None,
                 derived_from: str | None = None, if_changed: bool = False) -> tuple[ModelVersion, bool]:
        """Register a file or folder as the next version of ``name``. Returns (version, created).

        With ``if_changed``, the latest version is returned instead (created=False) when it has the same bytes,
        framework, tags and properties.
        """
        check_name(name)
        src = Path(path)
        if src.is_symlink():
            raise ModelError(f"{src} is a symbolic link", location=Location(file=str(src)),
                             hint="register the file or folder it points to")
        if not src.exists():
            raise ModelError(f"{src} does not exist", location=Location(file=str(src)),
                             hint="give the path of the model file or folder to register")
        fw = normalize_framework(framework)
        files = self._scan(src)
        if not files:
            raise ModelError(f"{src} holds no files", location=Location(file=str(src)))
        kind = "folder" if src.is_dir() else "file"
        with self._locked():
            stored = [self._store(src / rel if kind == "folder" else src, digest, size, rel)
                      for rel, digest, size in files]
            digest = tree_digest((f.path, f.sha256) for f in stored) if kind == "folder" else stored[0].sha256
            latest = self.versions(name)
            if if_changed and latest:
                last = latest[-1]
                if (last.sha256, last.entry, last.framework, dict(last.tags), dict(last.properties)) == (
                        digest, src.name, fw, dict(tags or {}), dict(properties or {})):
                    return last, False
            counter = self.root / "models" / name / ".last"
            try:
                last_given = int(counter.read_text().strip())
            except (FileNotFoundError, ValueError):
                last_given = 0
            version = max([last_given, *(m.version for m in latest)]) + 1
            model = ModelVersion(
                name=name, version=version, sha256=digest, entry=src.name, kind=kind, files=tuple(stored),
                framework=fw, framework_version=framework_version, description=description,
                tags=dict(tags or {}), properties=dict(properties or {}), created=_now(), derived_from=derived_from)
            _write_json_atomic(self._meta_path(name, version), model.to_dict())
            counter.write_text(f"{version}\n")
        return model, True

    def _scan(self, src: Path) -> builtins.list[tuple[str, str, int]]:
        """(relative path, sha256, size) of each file, without copying; refuses links and special files."""
        if src.is_file():
            return [(src.name, file_digest(src), src.stat().st_size)]
        out = []
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for n in [*dirnames, *filenames]:
                full = Path(dirpath) / n
                if full.is_symlink():
                    raise ModelError(f"{full} is a symbolic link; a model holds regular files and folders only",
                                     location=Location(file=str(full)), hint="copy the target in its place")
            for n in sorted(filenames):
                full = Path(dirpath) / n
                if not full.is_file():
                    raise ModelError(f"{full} is not a regular file", location=Location(file=str(full)))
                rel = full.relative_to(src).as_posix()
                out.append((rel, file_digest(full), full.stat().st_size))
        return out

    def _store(self, path: Path, digest: str, size: int, rel: str) -> ModelFile:
        blob = self.blob_path(digest)
        if blob.is_file() and blob.stat().st_size == size:
            return ModelFile(rel, digest, size)
        blob.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".blob.", dir=blob.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != digest:
                raise ModelError(f"{path} changed while it was being registered", location=Location(file=str(path)),
                                 hint="register it again once nothing writes to it")
            os.chmod(tmp, 0o444)
            os.replace(tmp, blob)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return ModelFile(rel, digest, size)

    # -- handing bytes out ------------------------------------------------------------------------------------
    def check_blob(self, model: ModelVersion, f: ModelFile) -> Path:
        blob = self.blob_path(f.sha256)
        if not blob.is_file():
            raise ModelError(f"{model.id}: the bytes of {f.path} are missing from the registry ({blob})",
                             location=Location(file=str(blob)),
                             hint=f"register the model again, or delete {model.id}")
        actual = file_digest(blob)
        if actual != f.sha256:
            raise ModelError(f"{model.id}: {f.path} is corrupted in the registry: its sha256 is {actual}, "
                             f"registered as {f.sha256}", location=Location(file=str(blob)),
                             hint=f"register the model again from its source (the bytes are refused), or delete "
                                  f"{model.id}")
        return blob

    def verify(self, ref: ModelRef | str | None = None) -> builtins.list[tuple[ModelVersion, str | None]]:
        """(version, problem or None) for one version or every version."""
        models = [self.get(ref)] if ref is not None else self.list()
        out: list[tuple[ModelVersion, str | None]] = []
        for m in models:
            try:
                for f in m.files:
                    self.check_blob(m, f)
                digest = tree_digest((f.path, f.sha256) for f in m.files) if m.kind == "folder" else m.files[0].sha256
                out.append((m, None if digest == m.sha256 else f"digest {digest} differs from {m.sha256}"))
            except ModelError as exc:
                out.append((m, exc.message))
        return out

    def write_entry(self, model: ModelVersion, target_dir: Path) -> Path:
        """Write the model's file or folder into ``target_dir`` (verified, atomically); returns its path."""
        target_dir.mkdir(parents=True, exist_ok=True)
        dest = target_dir / model.entry
        staging = Path(tempfile.mkdtemp(prefix=f".{model.entry}.", dir=target_dir))
        try:
            for f in model.files:
                blob = self.check_blob(model, f)
                out = staging / model.entry / f.path if model.kind == "folder" else staging / model.entry
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(blob, out)
                os.chmod(out, 0o644)
            if model.kind == "folder":
                (staging / model.entry).mkdir(exist_ok=True)
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(staging / model.entry, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest

    def download(self, ref: ModelRef | str, target_dir: Path | str, *, exist_ok: bool = False) -> Path:
        """Like ``Model.download(target_dir, exist_ok)``: the model's file or folder inside ``target_dir``."""
        model = self.get(ref)
        dest = Path(target_dir) / model.entry
        if dest.exists() and not exist_ok:
            raise ModelError(f"{dest} already exists", location=Location(file=str(dest)),
                             hint="pass --overwrite (exist_ok) or choose another --target")
        return self.write_entry(model, Path(target_dir))

    # -- deleting ---------------------------------------------------------------------------------------------
    def delete(self, ref: ModelRef | str) -> builtins.list[ModelVersion]:
        """Delete one version (or every version when ``ref`` names none); blobs nobody uses any more go too."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        with self._locked():
            doomed = [self.get(r)] if r.version is not None else self.versions(r.name)
            if not doomed:
                self.get(r)  # raises "not registered"
            for m in doomed:
                self._meta_path(m.name, m.version).unlink()
            self._collect_garbage()
        return doomed

    def _collect_garbage(self) -> None:
        used = {f.sha256 for m in self.list() for f in m.files}
        blobs = self.root / "blobs" / "sha256"
        if not blobs.is_dir():
            return
        for sub in blobs.iterdir():
            for blob in sub.iterdir():
                if blob.name not in used:
                    blob.unlink()
            with contextlib.suppress(OSError):
                sub.rmdir()


class SolutionModels:
    """A solution's registry, found on first use from its ``.env`` (``MODEL_REGISTRY_PATH``): the
    ``ModelSource`` that genconfig, build, up and the local device are given."""

    def __init__(self, solution_dir: Path | str, environ: Mapping[str, str] | None = None) -> None:
        self.solution_dir = Path(solution_dir)
        self.environ = environ
        self._registry: Registry | None = None
        self._pins: dict[tuple[str, int | None], str] = {}  # one lookup per model for a fleet's thousands of renders

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from edgegen.generator.solution import load_env

            self._registry = Registry.for_solution(self.solution_dir, load_env(self.solution_dir, self.environ).values)
        return self._registry

    def pin(self, name: str, version: int | None = None) -> str:
        key = (name, version)
        if key not in self._pins:
            self._pins[key] = self.registry.pin(name, version)
        return self._pins[key]
