"""edgegen genconfig vs. the real iotedgedev 3.3.9 on the same solutions: byte-identical manifests, same names.

iotedgedev is not a dependency: ``make peers`` (part of ``make test``) installs it into ``.bench-venvs/iotedgedev``;
without it these tests skip, saying so. It runs offline (``tests/support/iotedgedev.py``: telemetry off, proxies to
a closed loopback port, so its schema download fails at once), and only the written manifests are compared.

edgegen runs with its defaults. The one documented difference: a variable or ``${MODULES.x}`` that resolves to
nothing is an error for edgegen (iotedgedev leaves it in place). When edgegen refuses, the test checks that
something really was unresolved and that ``--allow-unresolved`` then gives iotedgedev's bytes.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.errors import UnresolvedError
from edgegen.generator.genconfig import GenconfigResult
from edgegen.pipeline import genconfig
from tests.generator.conftest import _writable_copy
from tests.generator.corpus import random_solution
from tests.support.iotedgedev import IOTEDGEDEV, IOTEDGEDEV_PYTHON, closed_port, offline_env

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not IOTEDGEDEV.exists(), reason="iotedgedev 3.3.9 is not installed (make peers installs it)"),
]


@pytest.fixture(scope="module")
def proxy_port() -> Iterator[int]:
    with closed_port() as port:
        yield port


def ours_by_default(template: str, cwd: Path, environ: dict[str, str], platform: str | None) -> GenconfigResult:
    """genconfig with its defaults; on an unresolved name, check that one was (it is left in place when allowed,
    as iotedgedev leaves it), and return the permissive run."""
    try:
        return genconfig(template, cwd=cwd, environ=environ, platform=platform)
    except UnresolvedError as exc:
        res = genconfig(template, cwd=cwd, environ=environ, platform=platform, allow_unresolved=True)
        left = {e.name for e in res.render.unresolved}
        placeholder = exc.name.removeprefix("placeholder ")  # ${MODELS.x}: edgegen's, iotedgedev leaves it as is
        assert exc.name in left or placeholder in res.text, f"refused for {exc.name} but it is not left unresolved"
        return res


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


def solution(kind: str, conformance_dir: Path, dst: Path) -> Path:
    if kind == "repo":
        dst.mkdir()
        shutil.copyfile(REPO / "deployment.template.json", dst / "deployment.template.json")
        for mj in (REPO / "modules").glob("*/module.json"):
            (dst / "modules" / mj.parent.name).mkdir(parents=True)
            shutil.copyfile(mj, dst / "modules" / mj.parent.name / "module.json")
        (dst / ".env").write_text('CONFIG_OUTPUT_DIR="config"\n')
        return dst
    _writable_copy(conformance_dir / "iotedgedev" / "assets", dst)
    sol = dst / kind
    shutil.copyfile(conformance_dir / "iotedgedev" / ".env.tmp", sol / ".env")
    return sol


def run_iotedgedev_cli(cwd: Path, env: dict[str, str], template: str, platform: str | None) -> str:
    """``iotedgedev solution genconfig``; the path of the manifest it wrote (relative to ``cwd``)."""
    args = [str(IOTEDGEDEV), "solution", "genconfig", "-f", template] + (["-P", platform] if platform else [])
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Welcome to iotedgedev" not in proc.stdout  # the prepared HOME: no first run, telemetry off
    said = [ln for ln in proc.stdout.splitlines() if ln.startswith("Validating generated deployment manifest ")]
    return said[0].split("Validating generated deployment manifest ", 1)[1].strip()


@pytest.mark.parametrize(("kind", "template", "extra", "platform"), CASES,
                         ids=[f"{k}/{t}/{p or 'amd64'}/{','.join(e)}" for k, t, e, p in CASES])
def test_same_manifest_as_iotedgedev(conformance_dir: Path, tmp_path: Path, proxy_port: int, kind: str,
                                     template: str, extra: dict[str, str], platform: str | None) -> None:
    env = offline_env(tmp_path / "home", proxy_port, DEFAULT_PLATFORM="amd64", **extra)
    theirs = solution(kind, conformance_dir, tmp_path / "theirs")
    ours = solution(kind, conformance_dir, tmp_path / "ours")
    their_path = run_iotedgedev_cli(theirs, env, template, platform)
    res = ours_by_default(template, ours, env, platform)
    assert str(res.output_path) == their_path
    assert (ours / res.output_path).read_bytes() == (theirs / their_path).read_bytes()
    json.loads((ours / res.output_path).read_text())


# --- many generated solutions, iotedgedev's own code in one process --------------------------------------------

RUNNER = r"""
import contextlib, io, json, os, sys
from iotedgedev.envvars import EnvVars
from iotedgedev.modules import Modules
from iotedgedev.output import Output

results = []
base = dict(os.environ)
for case in json.load(open(sys.argv[1])):
    os.environ.clear()
    os.environ.update(base)
    os.environ.update(case["env"])
    os.chdir(case["dir"])
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            ev = EnvVars(Output())
            ev.load(force=True)
            path = Modules(ev, Output()).build_push(case["template"], case["platform"] or ev.DEFAULT_PLATFORM,
                                                    no_build=True, no_push=True)
        results.append({"path": path})
    except Exception as exc:
        results.append({"error": f"{type(exc).__name__}: {exc}"})
json.dump(results, open(sys.argv[2], "w"))
"""


def _run_iotedgedev_in_process(cases: list[dict[str, Any]], tmp_path: Path, proxy_port: int) -> list[dict[str, str]]:
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([str(IOTEDGEDEV_PYTHON), "-c", RUNNER, str(tmp_path / "cases.json"),
                           str(tmp_path / "out.json")], env=offline_env(tmp_path / "home", proxy_port),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())  # type: ignore[no-any-return]


def _corpus(tmp_path: Path, n: int, seed: int) -> tuple[list[dict[str, Any]], list[Path]]:
    rng = random.Random(seed)
    cases = [random_solution(rng, tmp_path / f"s{i:03d}") for i in range(n)]
    copies = []
    for case in cases:
        ours = Path(str(case["dir"]) + "-ours")
        shutil.copytree(str(case["dir"]), ours)
        copies.append(ours)
    return cases, copies


@pytest.mark.slow
def test_generated_corpus_same_as_iotedgedev(tmp_path: Path, proxy_port: int) -> None:
    """300 generated solutions (registry layouts of real solutions included): whatever iotedgedev renders,
    edgegen renders byte-identically by default (unresolved names aside, see ours_by_default)."""
    cases, copies = _corpus(tmp_path, 300, 20261201)
    theirs = _run_iotedgedev_in_process(cases, tmp_path, proxy_port)
    outcome: Counter[str] = Counter()
    layouts: Counter[str] = Counter()
    for case, ours_dir, their in zip(cases, copies, theirs, strict=True):
        env = offline_env(tmp_path / "home", proxy_port, **case["env"])
        try:
            res = ours_by_default(case["template"], ours_dir, env, case["platform"])
        except Exception as exc:  # compared with iotedgedev's outcome below
            assert "error" in their, f"{case}: edgegen failed ({exc}), iotedgedev wrote {their}"
            outcome["both refused"] += 1
            continue
        assert "path" in their, f"{case}: iotedgedev failed ({their['error']}), edgegen wrote {res.output_path}"
        assert str(res.output_path) == their["path"], case
        assert (ours_dir / res.output_path).read_bytes() == (Path(case["dir"]) / their["path"]).read_bytes(), case
        outcome["identical, needed --allow-unresolved" if res.render.unresolved else "identical by default"] += 1
        layouts[case["layout"]] += 1
    print(f"{dict(outcome)}; identical per registry layout: {dict(layouts)}")
    assert outcome["identical by default"] >= 120 and outcome["both refused"] >= 1, outcome  # >8 chunks: both fail
    assert all(layouts[name] >= 5 for name in ("vscode", "no-server", "address", "acr", "iotedgedev")), layouts


def test_generated_solutions_through_both_clis(tmp_path: Path, proxy_port: int) -> None:
    """The first generated solutions that both tools render, through the command lines this time (`edgegen
    genconfig` with no flag against `iotedgedev solution genconfig`, same environment): same files, same bytes."""
    cases, copies = _corpus(tmp_path, 40, 7)
    compared = 0
    for case, ours_dir in zip(cases, copies, strict=True):
        env = offline_env(tmp_path / "home", proxy_port, **case["env"])
        try:
            res = genconfig(case["template"], cwd=ours_dir, environ=env, platform=case["platform"], write=False)
        except Exception:
            continue  # refused (unresolved names, >8 chunks): covered by the corpus test above
        their_path = run_iotedgedev_cli(Path(case["dir"]), env, case["template"], case["platform"])
        args = [sys.executable, "-m", "edgegen", "genconfig", "-f", case["template"]]
        proc = subprocess.run(args + (["-P", case["platform"]] if case["platform"] else []), cwd=ours_dir, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (ours_dir / res.output_path).read_bytes() == (Path(case["dir"]) / their_path).read_bytes(), case
        compared += 1
        if compared == 10:
            break
    assert compared == 10
