"""Fixtures for the container runtime: a real podman engine (Docker API, runc) holding the offline base image,
a real TLS+htpasswd docker-registry, and copies of the repo's solution whose images go to that registry."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baseimage import BaseImageUnavailable, ensure_rootfs, import_base
from tests.support.podman import PodmanUnavailable, run_podman_service
from tests.support.registry import RegistryInfo, RegistryUnavailable, run_registry

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def engine_host() -> Iterator[str]:
    """DOCKER_HOST of a podman service private to this session, with python:3.11-slim-bookworm made offline."""
    try:
        ensure_rootfs()
    except BaseImageUnavailable as exc:
        pytest.skip(f"no offline base image: {exc}")
    last: Exception | None = None
    for driver in ("overlay", "vfs"):  # overlay builds in seconds; vfs copies every layer whole
        try:
            with run_podman_service(driver=driver) as host:
                import_base(host)
                yield host
                return
        except PodmanUnavailable as exc:
            last = exc
    pytest.skip(f"no podman engine: {last}")


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryInfo]:
    try:
        with run_registry() as info:
            yield info
    except RegistryUnavailable as exc:
        pytest.skip(str(exc))


def engine_solution(root: Path, reg: RegistryInfo, *, message_count: int, interval: float,
                    scoring_port: int) -> Path:
    """The repo's solution, its images in ``reg`` (module.json repositories ``${CONTAINER_REGISTRY_SERVER}/x``),
    the sensor sending ``message_count`` messages every ``interval`` s, inference's /score on ``scoring_port``."""
    sol = root / "solution"
    sol.mkdir(parents=True)
    shutil.copytree(REPO / "modules", sol / "modules", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / ".models", sol / ".models")  # the registry holding the model the template pins
    for spec_path in (sol / "modules").glob("*/module.json"):
        spec = json.loads(spec_path.read_text())
        spec["image"]["repository"] = "${CONTAINER_REGISTRY_SERVER}/" + spec_path.parent.name
        spec_path.write_text(json.dumps(spec, indent=2))
    (sol / ".env").write_text(f"CONTAINER_REGISTRY_SERVER={reg.host}\nCONTAINER_REGISTRY_USERNAME={reg.username}\n"
                              f"CONTAINER_REGISTRY_PASSWORD={reg.password}\n")
    template: dict[str, Any] = json.loads((REPO / "deployment.template.json").read_text())
    mc = template["modulesContent"]
    modules = mc["$edgeAgent"]["properties.desired"]["modules"]
    modules["sensor"]["env"].update(MESSAGE_COUNT={"value": str(message_count)}, SEND_INTERVAL={"value": str(interval)})
    mc["sensor"]["properties.desired"]["SendInterval"] = interval
    inference = modules["inference"]
    inference["env"]["SCORING_PORT"] = {"value": str(scoring_port)}
    inference["settings"]["createOptions"] = {
        "ExposedPorts": {f"{scoring_port}/tcp": {}},
        "HostConfig": {"PortBindings": {f"{scoring_port}/tcp": [{"HostPort": str(scoring_port)}]},
                       "Memory": 268435456},
    }
    (sol / "deployment.template.json").write_text(json.dumps(template, indent=2))
    return sol
