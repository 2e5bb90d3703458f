"""Build and push against a real engine (podman's Docker API) and a real registry (TLS + htpasswd)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from edgegen.errors import EdgegenError
from edgegen.generator.modulejson import load_module_json
from edgegen.images import (
    BuildEvent,
    Engine,
    ImageError,
    Masker,
    PushEvent,
    Registry,
    build_image,
    default_digest_file,
    load_digests,
    pin_manifest,
    push_image,
    record_digests,
)
from tests.images.conftest import agent_template, write_module
from tests.support.net import closed_port
from tests.support.registry import RegistryInfo

pytestmark = pytest.mark.integration

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@pytest.fixture
def engine(docker_host: str) -> Engine:
    with Engine.connect({"DOCKER_HOST": docker_host}) as e:
        yield e


def _registry(reg: RegistryInfo, password: str | None = None) -> Registry:
    return Registry(reg.host, reg.username, reg.password if password is None else password)


def _manifest(reg: RegistryInfo, repository: str, reference: str) -> requests.Response:
    name = repository.split("/", 1)[1]
    return requests.get(
        f"{reg.url}/v2/{name}/manifests/{reference}",
        auth=(reg.username, reg.password),
        verify=str(reg.ca_file),
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )


def test_build_and_push_with_credentials_lands_in_the_registry(
    tmp_path: Path, engine: Engine, registry: RegistryInfo
) -> None:
    folder = write_module(
        tmp_path,
        "sensor",
        repository=f"{registry.host}/edge/SENSOR",
        dockerfile="FROM scratch\nARG GREETING=none\nLABEL greeting=$GREETING\nCOPY hello.txt /hello.txt\n",
        build_options=[
            "--build-arg GREETING=hi-from-buildoptions",
            "--label org.opencontainers.image.title=sensor",
            "--rm",
            "-t ignored:tag",
        ],
    )
    spec = load_module_json(folder)
    build_events: list[BuildEvent] = []
    built = build_image(engine, spec, "amd64", "ci7", on_event=build_events.append)
    assert built.tag == f"{registry.host}/edge/sensor:0.1.0-ci7-amd64" == spec.image("amd64", "ci7")
    assert len(built.notes) == 2 and all("ignored" in n for n in built.notes)
    steps = [e for e in build_events if e.kind == "step"]
    assert "COPY hello.txt /hello.txt" in [e.text for e in steps]
    assert steps[0].step == 1 and steps[-1].step == steps[-1].total >= 4  # podman adds a LABEL step of its own
    assert build_events[-1].kind == "done"

    config = engine.image(built.tag)
    assert config is not None and config["Id"].endswith(built.image_id.split(":")[-1])
    labels = config["Config"]["Labels"]
    assert labels["greeting"] == "hi-from-buildoptions"  # --build-arg reached the Dockerfile's ARG
    assert labels["org.opencontainers.image.title"] == "sensor"  # --label

    push_events: list[PushEvent] = []
    pushed = push_image(engine, built.tag, [_registry(registry)], on_event=push_events.append)
    assert pushed.authenticated and pushed.registry == registry.host
    assert pushed.digest is not None and pushed.digest.startswith("sha256:")
    assert push_events[0].status.endswith(f"as {registry.username}")
    assert not any(registry.password in e.status for e in push_events)

    by_tag = _manifest(registry, f"{registry.host}/edge/sensor", "0.1.0-ci7-amd64")
    assert by_tag.status_code == 200, by_tag.text
    assert by_tag.headers["Docker-Content-Digest"] == pushed.digest
    assert _manifest(registry, f"{registry.host}/edge/sensor", pushed.digest).status_code == 200
    anonymous = requests.get(
        f"{registry.url}/v2/edge/sensor/manifests/0.1.0-ci7-amd64", verify=str(registry.ca_file), timeout=10
    )
    assert anonymous.status_code == 401  # the registry really requires the credentials we sent

    # --pin-digests data: recorded, and the pinned reference resolves in the registry
    state = default_digest_file(tmp_path)
    record_digests(state, [pushed])
    digests = load_digests(state)
    assert digests[built.tag].pinned == f"{registry.host}/edge/sensor@{pushed.digest}"
    manifest = pin_manifest(agent_template({"sensor": built.tag}), digests, required=[built.tag])
    image = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["settings"]["image"]
    repo, digest = image.split("@")
    assert _manifest(registry, repo, digest).status_code == 200


def test_wrong_password_is_a_clear_error_with_the_password_masked(
    tmp_path: Path, engine: Engine, registry: RegistryInfo
) -> None:
    folder = write_module(tmp_path, "wrongpw", repository=f"{registry.host}/wrongpw")
    spec = load_module_json(folder)
    tag = build_image(engine, spec, "amd64").tag
    bad = "Wr0ng-" + registry.password
    events: list[PushEvent] = []
    with pytest.raises(ImageError) as info:
        push_image(engine, tag, [Registry(registry.host, registry.username, bad, "_2")], on_event=events.append)
    text = info.value.render()
    assert "authentication failed" in text and registry.host in text
    assert "CONTAINER_REGISTRY_PASSWORD_2" in text and registry.username in text
    assert bad not in text and registry.password not in text
    assert not any(bad in e.status for e in events)
    # A password that the engine echoes back is masked too (the masker covers every text).
    mask = Masker([bad])
    assert mask(f"denied for {bad}") == "denied for ****"


def test_push_without_credentials_names_the_variables_to_set(
    tmp_path: Path, engine: Engine, registry: RegistryInfo
) -> None:
    spec = load_module_json(write_module(tmp_path, "anon", repository=f"{registry.host}/anon"))
    tag = build_image(engine, spec, "amd64").tag
    with pytest.raises(ImageError) as info:
        push_image(engine, tag, [])
    assert "authentication failed" in info.value.message
    assert "CONTAINER_REGISTRY_USERNAME" in (info.value.hint or "")


def test_unreachable_registry_is_a_clear_error(tmp_path: Path, engine: Engine) -> None:
    with closed_port() as port:
        host = f"127.0.0.1:{port}"
        spec = load_module_json(write_module(tmp_path, "lost", repository=f"{host}/lost"))
        tag = build_image(engine, spec, "amd64").tag
        with pytest.raises(ImageError) as info:
            push_image(engine, tag, [Registry(host, "u", "secretpw")])
    assert f"registry {host} is unreachable" in info.value.message
    assert "CONTAINER_REGISTRY_SERVER" in (info.value.hint or "")
    assert "secretpw" not in info.value.render()


def test_pushing_an_image_that_was_never_built(engine: Engine) -> None:
    with pytest.raises(ImageError) as info:
        push_image(engine, "127.0.0.1:1/never/built:1-amd64", [])
    assert "no local image" in info.value.message and "edgegen push" in (info.value.hint or "")


def test_missing_dockerfile_for_the_platform(tmp_path: Path, engine: Engine) -> None:
    folder = write_module(tmp_path, "nodf", platforms={"amd64": "./Dockerfile.amd64", "arm64v8": "./Dockerfile.arm"})
    (folder / "Dockerfile.arm").unlink()
    spec = load_module_json(folder, expand=lambda t: t.replace("${CONTAINER_REGISTRY_SERVER}", "localhost:5000"))
    with pytest.raises(ImageError) as info:
        build_image(engine, spec, "arm64v8")
    loc = info.value.location
    assert loc is not None and loc.file == str(folder / "module.json")
    assert loc.json_path == "image.tag.platforms.arm64v8"
    assert "Dockerfile.arm" in info.value.message
    with pytest.raises(EdgegenError) as unknown:  # a platform module.json does not list at all
        build_image(engine, spec, "arm32v7")
    assert "arm32v7" in unknown.value.render() and "amd64, arm64v8" in unknown.value.render()


def test_failing_copy_step_names_the_step_and_its_dockerfile_line(tmp_path: Path, engine: Engine) -> None:
    folder = write_module(
        tmp_path,
        "badcopy",
        repository="localhost:5000/badcopy",
        dockerfile="FROM scratch\n# a comment\nCOPY hello.txt /hello.txt\nCOPY missing.txt /missing.txt\n",
    )
    with pytest.raises(ImageError) as info:
        build_image(engine, load_module_json(folder), "amd64")
    text = info.value.render()
    assert "step 3/3 `COPY missing.txt /missing.txt`" in text
    assert "missing.txt" in text
    loc = info.value.location
    assert loc is not None and loc.file == str(folder / "Dockerfile.amd64") and loc.line == 4
    assert "    COPY missing.txt /missing.txt" in text  # the offending Dockerfile line is shown


def test_failing_run_step_names_the_step(tmp_path: Path, engine: Engine) -> None:
    """A RUN step that fails (exit 3; where the sandbox forbids running containers it fails to start, which
    must be reported the same way: the step and its Dockerfile line)."""
    folder = write_module(
        tmp_path,
        "badrun",
        repository="localhost:5000/badrun",
        dockerfile="FROM scratch\nCOPY rootfs/ /\nRUN exit 3\n",
        files={"hello.txt": "x"},
    )
    rootfs = folder / "rootfs"
    for src in ("/bin/dash", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        if not Path(src).exists():
            pytest.skip(f"{src} is needed to make a shell image without pulling one")
        dest = rootfs / src.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    os.rename(rootfs / "bin" / "dash", rootfs / "bin" / "sh")
    with pytest.raises(ImageError) as info:
        build_image(engine, load_module_json(folder), "amd64")
    assert "step 3/3 `RUN exit 3`" in info.value.message
    assert info.value.location is not None and info.value.location.line == 3


def test_no_engine_is_a_clear_error_with_the_how_to(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    with pytest.raises(ImageError) as info:
        Engine.connect({"DOCKER_HOST": f"unix://{dead}"})
    assert "no container engine is reachable" in info.value.message
    assert str(dead) in info.value.message
    assert "podman system service -t 0 unix:///run/podman/podman.sock" in (info.value.hint or "")
    assert "DOCKER_HOST" in (info.value.hint or "")
    with closed_port() as port, pytest.raises(ImageError) as tcp:
        Engine.connect({"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert "connection refused" in tcp.value.message.lower()
