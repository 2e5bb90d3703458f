"""Push one built image to its registry with the credentials from ``.env``; per-layer progress; the digest.

Passwords never appear in an event or an error (every text goes through the :class:`Masker`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from edgegen.images.engine import Engine
from edgegen.images.errors import ImageError
from edgegen.images.registries import Masker, Registry, find_registry, image_registry

__all__ = ["PushEvent", "PushResult", "PushStep", "push_image", "read_push_event", "split_reference"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class PushEvent:
    tag: str
    status: str
    layer: str | None = None  # layer id when the engine reports per-layer progress (Docker does, podman 4 doesn't)
    current: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class PushResult:
    tag: str
    registry: str
    digest: str | None  # sha256:… of the pushed manifest
    seconds: float
    authenticated: bool

    @property
    def pinned(self) -> str | None:
        """``repository@sha256:…`` — the reference ``genconfig --pin-digests`` writes."""
        return f"{split_reference(self.tag)[0]}@{self.digest}" if self.digest else None


@dataclass(frozen=True)
class PushStep:
    """What one decoded engine event means: progress to show, a digest, or an error text."""

    event: PushEvent | None = None
    digest: str | None = None
    error: str | None = None


def read_push_event(tag: str, event: dict[str, Any]) -> PushStep:
    """Sans-I/O reading of one push event in Docker's format (podman's compat API uses the same shapes):
    ``{"status", "id", "progressDetail": {"current", "total"}}``, ``{"aux": {"Tag", "Digest", "Size"}}``,
    ``{"status": "<tag>: digest: sha256:… size: N"}``, ``{"error", "errorDetail": {"message"}}``.
    """
    if "error" in event or "errorDetail" in event:
        detail = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown error"
        return PushStep(error=str(detail).strip())
    digest = None
    aux = event.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("Digest"), str) and _DIGEST.fullmatch(aux["Digest"]):
        digest = aux["Digest"]
    status = str(event.get("status") or "").strip()
    if "digest:" in status:
        m = _DIGEST.search(status)
        digest = m.group(0) if m else digest
    if not status:
        return PushStep(digest=digest)
    detail = event.get("progressDetail")
    detail = detail if isinstance(detail, dict) else {}
    layer = event.get("id") if isinstance(event.get("id"), str) else None
    current = detail.get("current") if isinstance(detail.get("current"), int) else None
    total = detail.get("total") if isinstance(detail.get("total"), int) else None
    return PushStep(PushEvent(tag, status, layer, current, total), digest)


def split_reference(ref: str) -> tuple[str, str]:
    """``host:5000/name:tag`` → (``host:5000/name``, ``tag``); tag 'latest' when absent."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def push_image(
    engine: Engine,
    tag: str,
    registries: Iterable[Registry],
    *,
    on_event: Callable[[PushEvent], None] | None = None,
    masker: Masker | None = None,
) -> PushResult:
    regs = list(registries)
    mask = masker or Masker.for_registries(regs)
    emit = on_event or (lambda _e: None)
    if engine.image(tag) is None:
        raise ImageError(
            f"there is no local image {tag} to push",
            hint="build it first: `edgegen build --push` or `edgegen push` (without --no-build)",
        )
    reg = find_registry(tag, regs)
    host = image_registry(tag)
    auth = reg.auth_config() if reg else None
    repository, ref_tag = split_reference(tag)
    start = time.monotonic()
    who = f" as {reg.username}" if auth and reg else " anonymously"
    emit(PushEvent(tag, mask(f"pushing {tag} to {host}{who}")))
    digest: str | None = None
    for event in engine.push(repository, ref_tag, auth):
        step = read_push_event(tag, event)
        if step.error is not None:
            raise _classify(tag, host, reg, mask(step.error))
        digest = step.digest or digest
        if step.event is not None:
            e = step.event
            emit(PushEvent(e.tag, mask(e.status), e.layer, e.current, e.total))
    seconds = time.monotonic() - start
    emit(PushEvent(tag, f"pushed {tag}" + (f" ({digest})" if digest else "") + f" in {seconds:.1f}s"))
    return PushResult(tag, host, digest, seconds, auth is not None)


def _classify(tag: str, host: str, reg: Registry | None, detail: str) -> ImageError:
    low = detail.lower()
    if any(s in low for s in ("unauthorized", "authentication required", "denied", "401", "incorrect username")):
        if reg and reg.has_credentials:
            _, user_var, pass_var = reg.env_names
            hint = f"check {user_var} (now {reg.username!r}) and {pass_var} in .env for {reg.server}"
        else:
            hint = (
                f"no credentials for {host} in .env: set CONTAINER_REGISTRY_SERVER[_N]={host}, "
                "CONTAINER_REGISTRY_USERNAME[_N] and CONTAINER_REGISTRY_PASSWORD[_N]"
            )
        return ImageError(f"registry {host} refused the push of {tag}: authentication failed ({detail})", hint=hint)
    if "x509" in low or "certificate" in low or "tls:" in low:
        return ImageError(
            f"registry {host} is not trusted by the engine ({detail})",
            hint=f"give the engine the registry's CA: /etc/containers/certs.d/{host}/ca.crt (podman) "
            f"or /etc/docker/certs.d/{host}/ca.crt (Docker)",
        )
    if any(
        s in low
        for s in ("connection refused", "no such host", "i/o timeout", "dial tcp", "network is unreachable", "pinging")
    ):
        return ImageError(
            f"registry {host} is unreachable while pushing {tag} ({detail})",
            hint=f"is a registry running at {host}? check CONTAINER_REGISTRY_SERVER[_N] and module.json's repository",
        )
    return ImageError(f"pushing {tag} to {host} failed: {detail}")
