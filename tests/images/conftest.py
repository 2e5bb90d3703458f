"""Fixtures for the images area: a real podman engine, a real TLS+htpasswd registry, and small solutions."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.podman import PodmanUnavailable, run_podman_service
from tests.support.registry import RegistryInfo, RegistryUnavailable, run_registry


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """DOCKER_HOST of a podman service private to this test session."""
    try:
        with run_podman_service() as host:
            yield host
    except PodmanUnavailable as exc:
        pytest.skip(f"no podman engine: {exc}")


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryInfo]:
    try:
        with run_registry() as info:
            yield info
    except RegistryUnavailable as exc:
        pytest.skip(str(exc))
    except PermissionError as exc:
        pytest.skip(f"cannot make podman trust the test CA (needs root for /etc/containers/certs.d): {exc}")


def agent_template(modules: Mapping[str, str]) -> dict[str, Any]:
    """A minimal deployment template whose user modules have the given image placeholders."""
    return {
        "$schema-template": "4.0.0",
        "modulesContent": {
            "$edgeAgent": {
                "properties.desired": {
                    "schemaVersion": "1.1",
                    "runtime": {"type": "docker", "settings": {"registryCredentials": {}}},
                    "systemModules": {
                        "edgeAgent": {
                            "type": "docker",
                            "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4"},
                        },
                        "edgeHub": {
                            "type": "docker",
                            "status": "running",
                            "restartPolicy": "always",
                            "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4"},
                        },
                    },
                    "modules": {
                        name: {
                            "version": "1.0",
                            "type": "docker",
                            "status": "running",
                            "restartPolicy": "always",
                            "settings": {"image": image, "createOptions": {}},
                        }
                        for name, image in modules.items()
                    },
                }
            },
            "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {}}},
        },
    }


def write_module(
    root: Path,
    name: str,
    *,
    repository: str = "${CONTAINER_REGISTRY_SERVER}/" + "NAME",
    version: str = "0.1.0",
    dockerfile: str = "FROM scratch\nCOPY hello.txt /hello.txt\n",
    platforms: Mapping[str, str] | None = None,
    build_options: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
) -> Path:
    folder = root / "modules" / name
    folder.mkdir(parents=True, exist_ok=True)
    plats = dict(platforms or {"amd64": "./Dockerfile.amd64"})
    for rel in plats.values():
        if dockerfile:
            (folder / rel).write_text(dockerfile, encoding="utf-8")
    for rel, text in (files or {"hello.txt": f"hello from {name}\n"}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    spec = {
        "$schema-version": "0.0.1",
        "description": f"test module {name}",
        "image": {
            "repository": repository.replace("NAME", name),
            "tag": {"version": version, "platforms": plats},
            "buildOptions": list(build_options),
            "contextPath": "./",
        },
        "language": "python",
    }
    (folder / "module.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return folder


def write_solution(root: Path, modules: Mapping[str, str], env: Mapping[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    template = root / "deployment.template.json"
    template.write_text(json.dumps(agent_template(modules), indent=2), encoding="utf-8")
    return template
