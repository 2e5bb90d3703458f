"""The container engine: a Docker Engine API endpoint (Docker, or ``podman system service``) via the Docker SDK.

``DOCKER_HOST`` (and ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH``) are respected. Without ``DOCKER_HOST`` the
usual sockets are tried: Docker's, then root and rootless podman's. The SDK stays inside this module: callers get
plain dicts and iterators of decoded JSON events.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from edgegen.images.errors import ImageError

__all__ = ["API_VERSION", "START_HINT", "Engine", "candidate_hosts"]

API_VERSION = "1.41"  # podman 4 and every Docker since 20.10 serve it
_TIMEOUT = 900  # seconds of silence tolerated while a build step runs

START_HINT = (
    "start an engine that serves the Docker API, e.g. as root: "
    "`podman system service -t 0 unix:///run/podman/podman.sock &` then "
    "`export DOCKER_HOST=unix:///run/podman/podman.sock` (rootless: unix://$XDG_RUNTIME_DIR/podman/podman.sock), "
    "or start Docker (`sudo systemctl start docker`)"
)


def candidate_hosts(env: Mapping[str, str]) -> list[str]:
    """The engine addresses to try: ``DOCKER_HOST`` alone when set, else the well-known sockets."""
    if env.get("DOCKER_HOST"):
        return [env["DOCKER_HOST"]]
    hosts = ["unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"]
    if env.get("XDG_RUNTIME_DIR"):
        hosts.append(f"unix://{env['XDG_RUNTIME_DIR']}/podman/podman.sock")
    return hosts


class Engine:
    """A connected engine. Use ``with Engine.connect() as engine:``."""

    def __init__(self, api: Any, base_url: str) -> None:
        self._api = api
        self.base_url = base_url

    @classmethod
    def connect(cls, env: Mapping[str, str] | None = None) -> Engine:
        import docker
        import requests

        env = dict(os.environ if env is None else env)
        hosts = candidate_hosts(env)
        failures: list[str] = []
        for host in hosts:
            if host.startswith("unix://") and not env.get("DOCKER_HOST") and not Path(host[7:]).exists():
                failures.append(f"{host}: no such socket")
                continue
            try:
                kwargs = docker.utils.kwargs_from_env(environment={**env, "DOCKER_HOST": host})
                api = docker.APIClient(version=API_VERSION, timeout=_TIMEOUT, **kwargs)
                api.ping()
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                failures.append(f"{host}: {_reason(exc)}")
                continue
            return cls(api, host)
        raise ImageError(
            "no container engine is reachable (" + "; ".join(failures) + ")",
            hint=START_HINT,
        )

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    def version(self) -> dict[str, Any]:
        return dict(self._api.version())

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Decoded build events (``stream``, ``status``, ``aux``, ``error``/``errorDetail``)."""
        return self._events(lambda: self._api.build(decode=True, **kwargs))

    def push(self, repository: str, tag: str, auth_config: dict[str, str] | None) -> Iterator[dict[str, Any]]:
        return self._events(
            lambda: self._api.push(repository, tag=tag, auth_config=auth_config, stream=True, decode=True)
        )

    def image(self, ref: str) -> dict[str, Any] | None:
        """``docker image inspect`` as a dict, or None when the engine has no such image."""
        import docker

        try:
            return dict(self._api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
            return None

    def remove_image(self, ref: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self._api.remove_image(ref, force=True)

    def read_tree(self, image: str, path: str) -> Iterator[tuple[str, bytes]]:
        """(path inside ``path``, content) of every regular file under ``path`` in ``image``, read from a created
        (never started) container's filesystem archive."""
        import tarfile
        import tempfile

        import docker

        container = self._api.create_container(image, command=["true"])["Id"]
        try:
            stream, _stat = self._api.get_archive(container, path)
            with tempfile.TemporaryFile() as buf:
                for chunk in stream:
                    buf.write(chunk)
                buf.seek(0)
                with tarfile.open(fileobj=buf) as tar:
                    top = path.rstrip("/").rsplit("/", 1)[-1]
                    for member in tar:
                        if member.isfile():
                            name = member.name[len(top) + 1:] if member.name.startswith(top + "/") else member.name
                            handle = tar.extractfile(member)
                            yield name, handle.read() if handle else b""
        except docker.errors.NotFound:
            return
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self._api.remove_container(container, force=True)

    def _events(self, start: Any) -> Iterator[dict[str, Any]]:
        import docker
        import requests

        try:
            yield from start()
        except docker.errors.APIError as exc:
            yield {"error": str(exc.explanation or exc), "errorDetail": {"message": str(exc.explanation or exc)}}
        except (requests.exceptions.RequestException, OSError) as exc:
            raise ImageError(f"lost the container engine at {self.base_url}: {_reason(exc)}", hint=START_HINT) from None


def _reason(exc: BaseException) -> str:
    """The innermost useful reason of a connection error, without the SDK's noise."""
    seen = exc
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    text = str(seen) or type(seen).__name__
    if isinstance(seen, FileNotFoundError):
        return "no such socket"
    if isinstance(seen, ConnectionRefusedError) or "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:200]
