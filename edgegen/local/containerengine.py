"""Container operations on a Docker-API engine (Docker, or podman's service), for the container runtime.

Extends :class:`edgegen.images.engine.Engine` (connection: ``DOCKER_HOST`` or the well-known sockets) with what
an edge agent needs: pull, create, start, wait, stop, remove, logs, list by label. Blocking calls (run them in a
thread); the Docker SDK stays inside this module, callers get plain values, and engine failures become
:class:`EngineFailure` carrying the engine's own words.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from edgegen.images.engine import Engine
from edgegen.local.errors import DeviceError

__all__ = ["ContainerEngine", "EngineFailure"]


class EngineFailure(DeviceError):
    pass


def _explain(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(str(text).split())[:500]


class ContainerEngine(Engine):
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import docker
        import requests

        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError as exc:
            raise EngineFailure(f"{what}: {_explain(exc)}") from None
        except (requests.exceptions.RequestException, OSError) as exc:
            raise EngineFailure(f"{what}: lost the container engine at {self.base_url}: {_explain(exc)}") from None

    def pull(self, image: str, auth: Mapping[str, str] | None) -> None:
        """Pull ``image`` (with ``auth`` for its registry); raises EngineFailure with the engine's reason."""
        import docker

        repo, tag = docker.utils.parse_repository_tag(image)
        events = self._call(f"pulling {image}", self._api.pull, repo, tag=tag or "latest",
                            auth_config=dict(auth) if auth else None, stream=True, decode=True)
        try:
            for event in events:
                if isinstance(event, dict) and ("error" in event or "errorDetail" in event):
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error")
                    raise EngineFailure(f"pulling {image}: {' '.join(str(detail).split())[:500]}")
        except docker.errors.APIError as exc:
            raise EngineFailure(f"pulling {image}: {_explain(exc)}") from None
        if self.image(image) is None:
            raise EngineFailure(f"pulling {image}: the engine reported no image afterwards")

    def create(self, name: str, body: Mapping[str, Any]) -> str:
        created = self._call(f"creating container {name}", self._api.create_container_from_config, dict(body), name)
        return str(created["Id"])

    def start(self, container: str) -> None:
        self._call(f"starting container {container[:12]}", self._api.start, container)

    def wait(self, container: str) -> int:
        """Until the container exits; its exit code."""
        import requests

        while True:
            try:
                result = self._call(f"waiting for container {container[:12]}", self._api.wait, container)
                return int(result.get("StatusCode", -1))
            except EngineFailure as exc:
                if isinstance(exc.__context__, requests.exceptions.ReadTimeout):
                    continue
                raise

    def stop(self, container: str, timeout: float) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self._api.stop(container, timeout=max(int(timeout), 0))

    def remove(self, container: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self._call(f"removing container {container[:12]}", self._api.remove_container, container, force=True,
                       v=True)

    def inspect(self, container: str) -> dict[str, Any] | None:
        import docker

        try:
            return dict(self._api.inspect_container(container))
        except docker.errors.NotFound:
            return None

    def logs(self, container: str) -> bytes:
        import docker

        try:
            return bytes(self._api.logs(container, stdout=True, stderr=True, stream=False))
        except docker.errors.NotFound:
            return b""

    def containers(self, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) with ``label`` (``key`` or ``key=value``)."""
        found = self._call("listing containers", self._api.containers, all=True, filters={"label": label})
        return [dict(c) for c in found]
