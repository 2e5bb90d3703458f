"""edgegen genconfig vs. the real iotedgedev 3.3.9 on the same solutions: byte-identical manifests, same names.

iotedgedev is not a dependency: ``python bench/genconfig.py`` installs it into ``.bench-venvs/iotedgedev``.
Without that venv these tests skip. iotedgedev leaves unset variables in place, so edgegen runs here with
``allow_unresolved=True``; its schema check needs the internet and is skipped offline, which is fine: only the
written manifests are compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgegen.generator.genconfig import genconfig
from tests.generator.conftest import _writable_copy

REPO = Path(__file__).resolve().parents[2]
IOTEDGEDEV = REPO / ".bench-venvs" / "iotedgedev" / "bin" / "iotedgedev"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not IOTEDGEDEV.exists(), reason="iotedgedev 3.3.9 not installed; run python bench/genconfig.py"),
]

SHARED_LIB = "test_solution_shared_lib"
CASES = [
    # (folder under the copied assets, template, extra env, platform)
    (".", "deployment.template_1.json", {}, None),
    (".", "deployment.template_2.json", {}, None),
    (".", "deployment.template_3.json", {}, None),
    (".", "deployment.template_4.json", {}, None),
    (".", "deployment.template_invalidresult.json", {}, None),
    (".", "deployment.manifest_invalid.json", {}, None),
    (".", "deployment.manifest_invalid_schema.json", {}, None),
    (".", "deployment.manifest_invalid_createoptions.json", {}, None),
    (".", "deployment.template.non_str_placeholder.json", {"TTL": "7200"}, None),
    (SHARED_LIB, "deployment.template.json", {}, None),
    (SHARED_LIB, "deployment.template.json", {"CONTAINER_TAG": "rc1", "USERNAME": "u"}, "windows-amd64"),
    (SHARED_LIB, "deployment.template.json", {"DEPLOYMENT_CONFIG_FILE": "foo.json", "CONFIG_OUTPUT_DIR": "out"}, None),
    (SHARED_LIB, "deployment.debug.template.json", {}, None),
    (SHARED_LIB, "layered_deployment.flattened_props.template.json", {}, None),
    ("repo", "deployment.template.json", {}, None),
    ("repo", "deployment.template.json", {}, "arm64v8"),
]


def base_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "DEFAULT_PLATFORM": "amd64"}


def solution(kind: str, shared_dir: Path, dst: Path) -> Path:
    if kind == "repo":
        dst.mkdir()
        shutil.copyfile(REPO / "deployment.template.json", dst / "deployment.template.json")
        for mj in (REPO / "modules").glob("*/module.json"):
            (dst / "modules" / mj.parent.name).mkdir(parents=True)
            shutil.copyfile(mj, dst / "modules" / mj.parent.name / "module.json")
        (dst / ".env").write_text('CONFIG_OUTPUT_DIR="config"\n')
        return dst
    _writable_copy(shared_dir / "conformance" / "iotedgedev" / "assets", dst)
    env_tmp = shared_dir / "conformance" / "iotedgedev" / ".env.tmp"
    sol = dst / kind
    shutil.copyfile(env_tmp, sol / ".env")
    return sol


@pytest.mark.parametrize(("kind", "template", "extra", "platform"), CASES,
                         ids=[f"{k}/{t}/{p or 'amd64'}/{','.join(e)}" for k, t, e, p in CASES])
def test_same_manifest_as_iotedgedev(shared_dir: Path, tmp_path: Path, kind: str, template: str,
                                     extra: dict[str, str], platform: str | None) -> None:
    env = base_env(tmp_path / "home") | extra
    (tmp_path / "home").mkdir()
    theirs = solution(kind, shared_dir, tmp_path / "theirs")
    ours = solution(kind, shared_dir, tmp_path / "ours")
    args = [str(IOTEDGEDEV), "solution", "genconfig", "-f", template] + (["-P", platform] if platform else [])
    proc = subprocess.run(args, cwd=theirs, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = [ln for ln in proc.stdout.splitlines() if ln.startswith("Validating generated deployment manifest ")]
    their_path = said[0].split("Validating generated deployment manifest ", 1)[1].strip()

    res = genconfig(template, cwd=ours, environ=env, platform=platform, allow_unresolved=True, validate=False)
    assert str(res.output_path) == their_path
    assert (ours / res.output_path).read_bytes() == (theirs / their_path).read_bytes()
    json.loads((ours / res.output_path).read_text())
