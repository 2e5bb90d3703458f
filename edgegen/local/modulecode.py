"""Find a module's code for its image, and give it a Python environment.

An image such as ``localhost:5000/sensor:0.1.0-amd64`` maps to the solution folder whose ``module.json`` has
repository ``localhost:5000/sensor`` (the tag rule is ``edgegen.generator.modulejson.image_tag``).

``module.json`` variables are expanded like ``edgegen genconfig`` does: the solution's ``.env`` under the process
environment (so ``${CONTAINER_REGISTRY_SERVER}/sensor`` matches the image genconfig rendered).

Microsoft's public sample image ``mcr.microsoft.com/azureiotedge-simulated-temperature-sensor`` (the module
``tempSensor`` of every new solution, iotedgedev's and ours) has no code in the solution. In its place the local
device runs edgegen's simulated temperature sensor (``templates/modules/sensor``: the same output
``temperatureOutput`` and message shape), written under ``<solution>/.state/standins/``. Any other image with no
module folder is an error here (the runtime decides whether to skip the module).

Each module gets a venv under ``<state>/venvs/<folder>-<hash>`` with its ``requirements.txt`` installed; the hash
covers the requirements and the interpreter, so an unchanged module reuses its venv. With
``system_site_packages=True`` the venv sees this interpreter's packages, so requirements already satisfied here
install nothing (the tests and ``--reuse-site-packages`` use that).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edgegen.common.private import open_private_append, private_dir
from edgegen.errors import Location
from edgegen.generator.modulejson import ModuleJsonError, ModuleSpec, load_module_json
from edgegen.local.errors import DeviceError
from edgegen.models.errors import ModelError

__all__ = ["STANDIN_IMAGES", "ModuleCode", "ModuleResolver", "VenvCache", "model_layout"]

log = logging.getLogger(__name__)

# public images with no code in a solution -> the module template that stands in for them in process mode
STANDIN_IMAGES = {"mcr.microsoft.com/azureiotedge-simulated-temperature-sensor": "sensor"}


@dataclass(frozen=True)
class ModuleCode:
    folder: Path
    entry: Path  # main.py
    spec: ModuleSpec


def _repository_of(image: str) -> str:
    """``host:port/name:tag`` → ``host:port/name`` (a tag is after the last ':' that follows the last '/')."""
    name, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return name.lower()
    return image.lower()


class ModuleResolver:
    """Maps images to module folders of a solution (``<solution>/modules/*/module.json``)."""

    def __init__(self, solution_dir: Path, modules_dir: str = "modules", *,
                 environ: dict[str, str] | None = None, standin_dir: Path | None = None) -> None:
        self.solution_dir = Path(solution_dir)
        self.modules_dir = self.solution_dir / modules_dir
        self.environ = environ  # None: os.environ (under which the solution's .env is read)
        self.standin_dir = standin_dir or self.solution_dir / ".state" / "standins"
        self._specs: list[ModuleSpec] | None = None

    def specs(self) -> list[ModuleSpec]:
        if self._specs is None:
            from edgegen.generator.errors import GeneratorError
            from edgegen.generator.expand import expand
            from edgegen.generator.solution import load_env

            try:
                values = load_env(self.solution_dir, self.environ).values
            except GeneratorError:
                values = dict(os.environ if self.environ is None else self.environ)

            def _expand(text: str) -> str:
                return expand(text, values).text

            specs = []
            if self.modules_dir.is_dir():
                for folder in sorted(self.modules_dir.iterdir()):
                    if (folder / "module.json").is_file():
                        try:
                            specs.append(load_module_json(folder, expand=_expand))
                        except ModuleJsonError:
                            continue  # a broken module.json only matters if an image needs it; resolve() says so
            self._specs = specs
        return self._specs

    def resolve(self, module: str, image: str, json_path: str | None = None, source: str | None = None) -> ModuleCode:
        exact = [s for s in self.specs() for p in s.platforms if s.image(p) == image.lower()]
        repo = _repository_of(image)
        by_repo = [s for s in self.specs() if s.repository.lower() == repo]
        candidates = exact or by_repo
        if not candidates and repo in STANDIN_IMAGES:
            log.warning("module %s: image %s has no code in %s; running edgegen's %s module in its place (same "
                        "outputs and messages)", module, image, self.modules_dir, STANDIN_IMAGES[repo])
            return self._standin(STANDIN_IMAGES[repo])
        if not candidates:
            known = ", ".join(f"{s.repository} ({s.name})" for s in self.specs()) or "none"
            raise DeviceError(
                f"no module folder builds image {image!r} (module {module!r})",
                location=Location(file=source, json_path=json_path),
                hint=f"the local device runs code from {self.modules_dir}/<folder>/ whose module.json repository "
                f"matches the image; repositories found: {known}",
            )
        spec = candidates[0]
        entry = spec.folder / "main.py"
        if not entry.is_file():
            raise DeviceError(
                f"module folder {spec.folder} has no main.py (module {module!r})",
                location=Location(file=str(spec.folder / "module.json")),
                hint="the local device starts 'python main.py' in the module folder",
            )
        return ModuleCode(spec.folder.resolve(), entry.resolve(), spec)


    def _standin(self, template: str) -> ModuleCode:
        """edgegen's module template written as a module folder (rewritten when the template changes)."""
        from edgegen.generator.scaffold import module_files

        folder = self.standin_dir / template
        files = {n: text for n, text in module_files(f"standin_{template}", template).items()
                 if not n.startswith("Dockerfile")}
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = folder / name
            if not path.is_file() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)  # the inference template has amlhost/
                path.write_text(text)
        spec = load_module_json(folder, expand=lambda text: text.replace("${CONTAINER_REGISTRY_SERVER}", "local"))
        return ModuleCode(folder.resolve(), (folder / "main.py").resolve(), spec)


class VenvCache:
    """Per-module venvs keyed by a hash of requirements.txt and the interpreter; safe across processes (flock)."""

    def __init__(self, root: Path, *, system_site_packages: bool = False, python: str | None = None) -> None:
        self.root = Path(root)
        self.system_site_packages = system_site_packages
        self.python = python or sys.executable

    def key(self, folder: Path) -> str:
        req = folder / "requirements.txt"
        h = hashlib.sha256()
        h.update(req.read_bytes() if req.is_file() else b"")
        h.update(f"{self.python}|{sys.version}|{self.system_site_packages}".encode())
        return h.hexdigest()[:12]

    def path(self, folder: Path) -> Path:
        return self.root / f"{folder.name}-{self.key(folder)}"

    def ensure(self, folder: Path, log: Path | None = None) -> Path:
        """The venv's python for ``folder``, created and installed when missing (blocking; run it in a thread)."""
        folder = Path(folder)
        venv = self.path(folder)
        python = venv / "bin" / "python"
        done = venv / ".edgegen-ready"
        if done.exists():
            return python
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{venv.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done.exists():
                return python
            if venv.exists():
                shutil.rmtree(venv)
            if log:
                private_dir(log.parent)
            out = open_private_append(log) if log else subprocess.DEVNULL
            try:
                cmd = [self.python, "-m", "venv", "--without-pip"]
                if self.system_site_packages:
                    cmd.append("--system-site-packages")
                self._run([*cmd, str(venv)], out, folder)
                if self.system_site_packages:
                    self._share_site_packages(venv)
                req = folder / "requirements.txt"
                if req.is_file():
                    self._run([self.python, "-m", "pip", "--python", str(python), "install",
                               "--disable-pip-version-check", "-q", "-r", str(req)], out, folder)
            finally:
                if log:
                    out.close()
            done.write_text(self.key(folder))
        return python

    def _share_site_packages(self, venv: Path) -> None:
        """Make this interpreter's site-packages (a venv's too, which --system-site-packages skips) visible."""
        out = subprocess.run(
            [self.python, "-c", "import site, sys; print('\\n'.join(site.getsitepackages()))"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        for site_dir in (venv / "lib").glob("python*/site-packages"):
            (site_dir / "_edgegen_shared.pth").write_text("\n".join(out) + "\n")

    def _run(self, cmd: list[str], out: object, folder: Path) -> None:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder, check=False)
        if proc.returncode != 0:
            raise DeviceError(
                f"preparing the Python environment of {folder.name} failed (exit {proc.returncode}): "
                f"{' '.join(cmd[:4])}…",
                location=Location(file=str(folder / "requirements.txt")),
                hint="see the module's log under <state>/logs/ for pip's output",
            )


def model_layout(module: str, env: Mapping[str, str], solution_dir: Path, app_root: Path) -> dict[str, str]:
    """The models a module's deployment pins (``EDGEGEN_MODELS``), laid out under ``app_root`` as in its image.

    Returns the variables to give the module (``AML_APP_ROOT``, ``AZUREML_MODEL_DIR``, ``EDGEGEN_MODELS``), {}
    when it serves no models. Bytes come from the solution's registry and are checked against the pinned
    digests: a mismatch refuses the deployment (DeviceError). Blocking; engines call it in a thread.
    """
    from edgegen.generator.solution import load_env
    from edgegen.models.layout import lay_out, models_of
    from edgegen.models.registry import Registry

    json_path = f"modulesContent.$edgeAgent.properties.desired.modules.{module}.env.EDGEGEN_MODELS"
    try:
        pins = models_of(env)
        if not pins:
            return {}
        registry = Registry.for_solution(solution_dir, load_env(solution_dir).values)
        return lay_out(registry, pins, app_root)
    except ModelError as exc:
        raise DeviceError(f"module {module!r}: its models cannot be deployed: {exc.message}",
                          location=Location(json_path=json_path), hint=exc.hint) from None
