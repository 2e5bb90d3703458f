"""Our schemas agree with the official ones (valid/invalid verdict per system twin) on every official payload, every
iotedgedev fixture after iotedgedev's variable expansion, and on our own manifests (one per schema rule)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from edgegen.generator.validation import validate_manifest
from edgegen.generator.validation.schema import KNOWN_VERSIONS
from edgegen.pipeline import genconfig
from tests.conftest import CONFORMANCE
from tests.generator.validation.official import TWINS, modules_content, official_verdicts, our_verdicts

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _conformance_files(sub: str, pattern: str) -> list[str]:
    base = CONFORMANCE / sub
    return sorted(str(p.relative_to(base)) for p in base.glob(pattern) if p.name != "module.json")


def _agree(manifest: Any, schemas: Path) -> tuple[dict[str, bool | None], dict[str, bool | None]]:
    findings = validate_manifest(manifest)
    return official_verdicts(manifest, schemas), our_verdicts(manifest, findings)


def _check_agreement(manifest: Any, schemas: Path) -> dict[str, bool | None]:
    official, ours = _agree(manifest, schemas)
    _, mc = modules_content(manifest)
    for twin in TWINS:
        if official[twin] is not None:
            assert ours[twin] == official[twin], f"{twin}: official says valid={official[twin]}, we say {ours[twin]}"
            continue
        desired = mc.get(twin, {}).get("properties.desired") if isinstance(mc.get(twin), dict) else None
        version = desired.get("schemaVersion") if isinstance(desired, dict) else None
        if desired is None:
            # layered twin (property paths) or absent: azext does not schema-check it; neither may we fail it
            assert ours[twin] is not False, f"{twin}: layered fragments reported as schema-invalid"
        elif version not in KNOWN_VERSIONS[twin]:
            assert ours[twin] is None, f"{twin}: unknown schemaVersion {version!r} must be skipped with a warning"
    return official


@pytest.mark.parametrize("name", _conformance_files("schemas/payloads", "*.json"))
def test_official_payloads(conformance_dir: Path, name: str) -> None:
    manifest = json.loads((conformance_dir / "schemas/payloads" / name).read_text())
    official = _check_agreement(manifest, conformance_dir / "schemas")
    if name == "test_edge_deployment_malformed.json":
        assert official["$edgeAgent"] is False  # the README's two errors; make sure the case is exercised


def _expand_like_iotedgedev(text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """iotedgedev's first genconfig step: os.path.expandvars over the raw template text with .env loaded
    (python-dotenv, not overriding the process environment)."""
    for key, value in env.items():
        if key not in os.environ:
            monkeypatch.setenv(key, value)
    return os.path.expandvars(text)


@pytest.mark.parametrize("name", _conformance_files("iotedgedev/assets", "**/*.json"))
def test_iotedgedev_fixtures_after_expansion(conformance_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conformance = conformance_dir
    env = {k: v or "" for k, v in dotenv_values(conformance / "iotedgedev/.env.tmp").items()}
    env["TTL"] = "7200"  # what test_gen_config_with_non_string_placeholder sets
    for key in list(os.environ):
        if key in env or key.startswith(("EDGE", "CONTAINER_REGISTRY", "MODULES")):
            monkeypatch.delenv(key, raising=False)
    text = (conformance / "iotedgedev/assets" / name).read_text(encoding="utf-8")
    manifest = json.loads(_expand_like_iotedgedev(text, env, monkeypatch))
    assert modules_content(manifest)[1], f"{name} holds no modulesContent"
    _check_agreement(manifest, conformance / "schemas")


@pytest.mark.parametrize("name", EXPECTED["valid"])
def test_own_valid_manifests(conformance_dir: Path, name: str) -> None:
    manifest = json.loads((DATA / "valid" / f"{name}.json").read_text())
    official, ours = _agree(manifest, conformance_dir / "schemas")
    assert official == {"$edgeAgent": True, "$edgeHub": True}
    assert ours == official
    errors = [f for f in validate_manifest(manifest) if f.is_error]
    if "lenient" in name:  # 1.0 lets extra keys through; the semantic checks still see a non-string chunk
        assert errors and all(f.rule != "schema" for f in errors)
    else:
        assert not errors, [f.message for f in errors]


@pytest.mark.parametrize("name", sorted(EXPECTED["schema"]))
def test_own_invalid_manifests_one_per_schema_rule(conformance_dir: Path, name: str) -> None:
    case = EXPECTED["schema"][name]
    manifest = json.loads((DATA / "schema" / f"{name}.json").read_text())
    official, ours = _agree(manifest, conformance_dir / "schemas")
    assert False in official.values(), f"{name} ({case['description']}) is valid for the official schemas"
    assert ours == official
    expected = tuple(case["path"])
    hits = [f for f in validate_manifest(manifest) if f.rule == "schema" and f.is_error]
    assert any(f.pointer == expected for f in hits), (
        f"no schema error at {expected}; got {[(f.path, f.message) for f in hits]}"
    )
    assert all(f.message and f.path for f in hits)


@pytest.mark.parametrize("name", sorted(EXPECTED["semantic"]))
def test_semantic_cases_are_schema_valid(conformance_dir: Path, name: str) -> None:
    """The semantic cases pass both schemas (the problem is beyond the schema), except an unknown schemaVersion."""
    manifest = json.loads((DATA / "semantic" / f"{name}.json").read_text())
    official, ours = _agree(manifest, conformance_dir / "schemas")
    if name == "unknown-schema-version":
        assert official["$edgeAgent"] is None and ours["$edgeAgent"] is None
    else:
        assert official == ours == {"$edgeAgent": True, "$edgeHub": True}


RENDERED = [n for n in _conformance_files("iotedgedev/assets", "**/*.json")
            if "template" in n or n.startswith("deployment.manifest")]


@pytest.mark.parametrize("name", RENDERED)
def test_iotedgedev_fixtures_rendered_by_genconfig(conformance_dir: Path, tmp_path: Path, name: str) -> None:
    """The same fixtures fully rendered (placeholders, createOptions chunks) by the genconfig library, with the
    .env that iotedgedev's tests copy in; allow_unresolved keeps iotedgedev's leave-in-place behaviour."""
    import shutil

    conformance = conformance_dir
    work = tmp_path / "assets"
    shutil.copytree(conformance / "iotedgedev/assets", work)
    folder = work / Path(name).parent
    template = Path(name).name
    if name == "deployment.template_without_schema_template.json":
        # test_solution_build_without_schema_template copies it over the shared-lib solution's template
        folder = work / "test_solution_shared_lib"
        shutil.copy(work / name, folder / template)
    shutil.copy(conformance / "iotedgedev/.env.tmp", folder / ".env")
    environ = {"TTL": "7200", "PATH": os.environ.get("PATH", "")}
    result = genconfig(template, cwd=folder, environ=environ, allow_unresolved=True, validate=False,
                       write=False, platform="amd64")
    _check_agreement(result.render.manifest, conformance / "schemas")


def _hub_version(sub: str, name: str) -> object:
    manifest = json.loads((DATA / sub / f"{name}.json").read_text())
    return manifest["modulesContent"]["$edgeHub"]["properties.desired"].get("schemaVersion")


HUB_12_CASES = [
    (sub, n)
    for sub, names in (("valid", EXPECTED["valid"]), ("schema", sorted(EXPECTED["schema"])))
    for n in names
    if _hub_version(sub, n) == "1.2"
]


@pytest.mark.parametrize(("sub", "name"), HUB_12_CASES)
def test_hub_1_3_equals_official_1_2_without_integrity(conformance_dir: Path, sub: str, name: str) -> None:
    """There is no official 1.3 schema; 1.3 only adds `integrity`, so on documents without it our 1.3 verdict must
    be the official 1.2 verdict."""
    manifest = json.loads((DATA / sub / f"{name}.json").read_text())
    desired = manifest["modulesContent"]["$edgeHub"]["properties.desired"]
    official = official_verdicts(manifest, conformance_dir / "schemas")["$edgeHub"]
    desired["schemaVersion"] = "1.3"
    assert our_verdicts(manifest, validate_manifest(manifest))["$edgeHub"] == official


def test_documented_divergence_float_integers(conformance_dir: Path) -> None:
    """docs/validation.md: our schemas are draft-07, so 7200.0 is an integer; the official hub 1.1/1.2 files are
    draft-04, where it is not. No shared payload or fixture has such a value; this pins the one known difference."""
    manifest = json.loads((DATA / "valid/valid-agent1.1-hub1.2.json").read_text())
    saf = manifest["modulesContent"]["$edgeHub"]["properties.desired"]["storeAndForwardConfiguration"]
    saf["timeToLiveSecs"] = 7200.0
    official, ours = _agree(manifest, conformance_dir / "schemas")
    assert official["$edgeHub"] is False and ours["$edgeHub"] is True
