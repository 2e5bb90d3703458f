"""The module folders hold what iotedgedev and our agent need: Dockerfiles per platform that copy every source
file the module imports (the whole context, minus .dockerignore), install the requirements from the wheels
edgegen build puts in wheels/, and fully pinned requirements that agree with the SDK version edgegen is tested
with. (tests/local/engine builds the amd64 images for real and runs them.)"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from tests.modules.conftest import MODULES

NAMES = ["sensor", "inference", "monitor"]
DEV_ONLY = {"train.py"}


@pytest.mark.parametrize("name", NAMES)
def test_dockerfiles_exist_per_platform_and_copy_every_source_file(name: str) -> None:
    folder = MODULES / name
    spec = json.loads((folder / "module.json").read_text())
    assert spec["image"]["repository"] == f"localhost:5000/{name}" and spec["image"]["tag"]["version"] == "0.1.0"
    sources = {p.name for p in folder.glob("*.py")} - DEV_ONLY
    sources |= {p.parent.name for p in folder.glob("*/__init__.py")}  # packages (inference: amlhost)
    ignored = [ln.strip() for ln in (folder / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    assert not [s for s in sources | {"model"} if any(fnmatch.fnmatch(s, pat) for pat in ignored)]
    assert (folder / "wheels").is_dir()
    for platform, dockerfile in spec["image"]["tag"]["platforms"].items():
        text = (folder / dockerfile).read_text()
        copied = {word for line in text.splitlines() if line.startswith("COPY ") for word in line.split()[1:-1]}
        assert sources <= copied or "." in copied, f"{dockerfile} ({platform}) misses {sources - copied}"
        assert {"requirements.txt", "wheels/"} <= copied and re.search(r'^CMD \[.*"main.py"\]$', text, re.M)
        assert "--no-index --find-links /tmp/wheels -r requirements.txt" in text
        assert "USER " in text


@pytest.mark.parametrize("name", NAMES)
def test_requirements_are_pinned_and_match_the_tested_sdk(name: str, repo_root: Path) -> None:
    lines = [ln.strip() for ln in (MODULES / name / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.\-+]+", ln) for ln in lines), lines
    pins = dict(ln.lower().split("==") for ln in lines)
    assert pins["azure-iot-device"] == "2.14.0"
    assert pins["paho-mqtt"].startswith("1.")
    assert '"azure-iot-device==2.14.0"' in (repo_root / "pyproject.toml").read_text()
    if name == "inference":
        assert "aiohttp" in pins
    if name == "inference":  # the deployed sample model is ONNX; scikit-learn is for training only
        assert "onnxruntime" in pins and "numpy" in pins and "scikit-learn" not in pins
    else:
        assert "numpy" not in pins


@pytest.mark.parametrize("name", NAMES)
def test_modules_never_import_edgegen(name: str) -> None:
    for source in (MODULES / name).rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+edgegen\b", source.read_text(), re.M), source
