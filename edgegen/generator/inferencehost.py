"""The inference host that scaffolded inference modules run: the repo's own ``modules/inference`` host, copied.

``edgegen add --template inference`` and ``edgegen add NAME --entry-script FILE --model N[:V]`` give the new module
the same host as ``modules/inference``: the scoring core ``amlhost`` (azmlinfsrv's contract: plain,
``inference_schema`` and ``@rawhttp`` scripts, swagger, status codes) behind module messages, HTTP ``/score`` and
the ``score`` direct method, plus the models in the twin (``main.py``, ``outputs.py``, ``modelpath.py``). The files
are copied into the module folder when it is made, so the folder stays a standalone Docker build context (docker,
iotedgedev or ``edgegen build`` build it as it is) and runs in process mode unchanged; they are the bytes of the
``amlhost`` that ``edgegen serve`` imports, so a script answers the same on both.

Only reads files: no network, nothing of the models area (the generator floor).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from edgegen.generator.errors import ScaffoldError

__all__ = ["HOST_FILES", "host_dir", "host_files", "host_requirements"]

HOST_FILES = ("main.py", "outputs.py", "modelpath.py")
DOCKERFILES = ("Dockerfile.amd64", "Dockerfile.amd64.debug", "Dockerfile.arm32v7", "Dockerfile.arm64v8")
# In the host's pinned requirements only for the repo's ONNX sample model (onnxruntime and what it pulls in).
ONNX_PACKAGES = frozenset({"onnxruntime", "numpy", "flatbuffers", "protobuf"})
_HEADER = "# modules/inference for "


def host_dir() -> Path:
    """The folder holding the inference module's host: the parent of the ``amlhost`` package edgegen imports."""
    spec = importlib.util.find_spec("amlhost")
    origin = spec.origin if spec is not None else None
    folder = Path(origin).resolve().parent.parent if origin else None
    needed = (*HOST_FILES, "requirements.txt", *DOCKERFILES)
    if folder is None or any(not (folder / f).is_file() for f in needed):
        raise ScaffoldError("cannot find the inference module's host (main.py, outputs.py, modelpath.py and "
                            "requirements.txt beside the amlhost package)",
                            hint="scaffolding an inference module needs edgegen from its source checkout "
                                 "(pip install -e .), which holds modules/inference")
    return folder


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; @]", requirement.strip(), maxsplit=1)[0].strip().lower().replace("_", "-")


def host_requirements(extra: list[str], *, onnx: bool) -> str:
    """The host's pinned requirements (without the ONNX runtime unless ``onnx``), then ``extra``; a package that
    ``extra`` names is taken from ``extra`` only (the user's pin wins over the host's)."""
    lines = (host_dir() / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = {_name(r) for r in extra}
    kept = [ln for ln in lines if ln.strip() and not ln.startswith("#") and _name(ln) not in wanted
            and (onnx or _name(ln) not in ONNX_PACKAGES)]
    head = ["# The inference host's pins (azure-iot-device, aiohttp, Werkzeug, inference-schema and their",
            "# dependencies; copied from edgegen's modules/inference), then what the entry script needs."]
    return "\n".join([*head, *kept, *([""] if extra else []), *extra]) + "\n"


def host_files(name: str, entry_script: str, extra_requirements: list[str], *, onnx: bool) -> dict[str, str]:
    """File name (POSIX, relative to the module folder) -> text of the host part of a new inference module: main.py,
    outputs.py, modelpath.py, amlhost/, requirements.txt, the Dockerfiles and wheels/ (offline builds)."""
    folder = host_dir()
    files = {f: (folder / f).read_text(encoding="utf-8") for f in HOST_FILES}
    core = folder / "amlhost"
    for path in sorted(core.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
    files["requirements.txt"] = host_requirements(extra_requirements, onnx=onnx)
    files["wheels/README.md"] = (folder / "wheels" / "README.md").read_text(encoding="utf-8")
    for dockerfile in DOCKERFILES:
        text = (folder / dockerfile).read_text(encoding="utf-8")
        if not text.startswith(_HEADER) or "ENV SCORING_HOST=" not in text:
            raise ScaffoldError(f"{folder / dockerfile} is not the inference host's Dockerfile this version of "
                                "edgegen knows (its first line or ENV SCORING_HOST changed)")
        text = f"# {name} (the inference host of edgegen's modules/inference) for " + text[len(_HEADER):]
        if entry_script != "score.py":
            text = text.replace("ENV SCORING_HOST=", f"ENV ENTRY_SCRIPT={entry_script} \\\n    SCORING_HOST=", 1)
        files[dockerfile] = text
    return files
